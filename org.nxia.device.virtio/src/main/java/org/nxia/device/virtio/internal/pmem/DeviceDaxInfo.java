package org.nxia.device.virtio.internal.pmem;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.UUID;

import org.nxia.portal.api.Portals;

/**
 * The info block that makes Linux show a pmem namespace as device DAX
 * ({@code /dev/daxN.0}) at boot, with no tool run in the guest: Linux's nd_pfn_sb
 * with the DAX signature, 4 KiB at offset 4 KiB of the namespace (the layout of
 * drivers/nvdimm/pfn.h, version 1.4; the kernel's nd_pfn_validate is the check
 * it must pass). A Linux process then maps the region in place: host stores are
 * seen at once, guest stores reach the region with no copy and no flush.
 *
 * <p>The struct pages live in guest RAM (mode "ram": 64 bytes a 4 KiB page), so
 * the data starts at the first 2 MiB boundary past the 8 KiB of label space and
 * info block: {@link #DATA_OFFSET}. The region's first 2 MiB are Linux's.
 */
final class DeviceDaxInfo {

    /** Where the block is in the namespace (SZ_4K) and its size (struct nd_pfn_sb). */
    static final int OFFSET = 4096;
    static final int BYTES = 4096;
    /** Where /dev/daxN.0 starts in the region: ALIGN(8 KiB, 2 MiB), Linux's memremap alignment on x86. */
    static final long DATA_OFFSET = Portals.LINUX_DAX_OFFSET;
    /** The mapping's alignment: PMD pages, which Linux's device DAX supports whenever THP is built in. */
    static final int ALIGN = 2 << 20;
    static final long PAGE = 4096;
    static final byte[] SIGNATURE = "NVDIMM_DAX_INFO\0".getBytes(StandardCharsets.US_ASCII);
    static final int MODE_RAM = 1;            // PFN_MODE_RAM: the memmap in system RAM
    static final int STRUCT_PAGE = 64;        // MAX_STRUCT_PAGE_SIZE
    static final int CHECKSUM_AT = 4088;

    private DeviceDaxInfo() {
    }

    /**
     * The block for a region of {@code size} bytes (a multiple of 2 MiB, at least
     * 4 MiB). The namespace's id is derived from the region's name, so a region
     * shown again (another VM, a reboot, a restored snapshot) gets the same bytes.
     */
    static byte[] block(String region, long size) {
        if (size < DATA_OFFSET + ALIGN || size % ALIGN != 0) {
            throw new IllegalArgumentException("a device-DAX region needs a multiple of 2 MiB and at least 4 MiB (its first 2 MiB"
                    + " hold Linux's info block); portal " + region + " has " + size + " bytes");
        }
        ByteBuffer b = ByteBuffer.allocate(BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.put(SIGNATURE);
        UUID id = UUID.nameUUIDFromBytes(("nxia-portal-dax:" + region).getBytes(StandardCharsets.UTF_8));
        b.order(ByteOrder.BIG_ENDIAN).putLong(id.getMostSignificantBits()).putLong(id.getLeastSignificantBits());
        b.order(ByteOrder.LITTLE_ENDIAN);
        b.position(48);                        // parent_uuid stays zero: a label-less namespace has the null uuid
        b.putInt(0);                           // flags
        b.putShort((short) 1).putShort((short) 4);
        b.putLong(DATA_OFFSET);
        b.putLong((size - DATA_OFFSET) / PAGE); // npfns
        b.putInt(MODE_RAM);
        b.putInt(0);                           // start_pad (deprecated)
        b.putInt(0);                           // end_trunc: the size is 2 MiB-aligned
        b.putInt(ALIGN);
        b.putInt((int) PAGE);
        b.putShort((short) STRUCT_PAGE);
        b.putLong(CHECKSUM_AT, fletcher64(b.array()));
        return b.array();
    }

    /** Linux's nd_fletcher64 over little-endian 32-bit words (the checksum field zero while summed). */
    static long fletcher64(byte[] block) {
        ByteBuffer b = ByteBuffer.wrap(block).order(ByteOrder.LITTLE_ENDIAN);
        int lo = 0;
        long hi = 0;
        for (int i = 0; i + 4 <= block.length; i += 4) {
            lo += i >= CHECKSUM_AT && i < CHECKSUM_AT + 8 ? 0 : b.getInt(i);
            hi += Integer.toUnsignedLong(lo);
        }
        return hi << 32 | Integer.toUnsignedLong(lo);
    }
}
