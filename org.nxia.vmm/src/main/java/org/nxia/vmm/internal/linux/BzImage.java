package org.nxia.vmm.internal.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * An x86 bzImage, checked against the boot protocol
 * (Documentation/arch/x86/boot.rst): the real-mode setup (whose header is
 * copied into the zero page) and the protected-mode kernel, which is loaded
 * at {@link #prefAddress} and entered at its 64-bit entry point.
 *
 * @param setupHeader   the setup header, file offsets 0x1f1 up to its end (copied into boot_params)
 * @param kernelOffset  where the protected-mode kernel starts in the file: (setup_sects + 1) * 512
 * @param version       the boot protocol version, e.g. 0x020f for 2.15
 * @param initrdAddrMax the highest address the initramfs's last byte may have
 * @param kernelAlignment the alignment a relocatable kernel needs
 * @param relocatable   whether the kernel may load elsewhere than {@link #prefAddress}
 * @param xloadflags    XLF_* flags
 * @param cmdlineSize   the longest command line, without its terminating NUL
 * @param prefAddress   where the kernel prefers to load
 * @param initSize      bytes from the load address the kernel needs before it sets up its own memory
 */
public record BzImage(byte[] setupHeader, int kernelOffset, int version, long initrdAddrMax, long kernelAlignment,
                      boolean relocatable, int xloadflags, long cmdlineSize, long prefAddress, long initSize) {

    // Offsets in the file (and in boot_params, which starts with the same 0x1f1 bytes of layout).
    public static final int SETUP_SECTS = 0x1f1;
    public static final int BOOT_FLAG = 0x1fe;
    public static final int JUMP = 0x200;
    public static final int HEADER = 0x202;
    public static final int VERSION = 0x206;
    public static final int TYPE_OF_LOADER = 0x210;
    public static final int LOADFLAGS = 0x211;
    public static final int CODE32_START = 0x214;
    public static final int RAMDISK_IMAGE = 0x218;
    public static final int RAMDISK_SIZE = 0x21c;
    public static final int HEAP_END_PTR = 0x224;
    public static final int CMD_LINE_PTR = 0x228;
    public static final int INITRD_ADDR_MAX = 0x22c;
    public static final int KERNEL_ALIGNMENT = 0x230;
    public static final int RELOCATABLE_KERNEL = 0x234;
    public static final int XLOADFLAGS = 0x236;
    public static final int CMDLINE_SIZE = 0x238;
    public static final int PREF_ADDRESS = 0x258;
    public static final int INIT_SIZE = 0x260;

    public static final int MAGIC = 0x5372_6448;      // "HdrS"
    public static final int BOOT_FLAG_VALUE = 0xaa55;
    public static final int MIN_VERSION = 0x020c;     // 2.12: xloadflags
    public static final int XLF_KERNEL_64 = 1;
    public static final int LOADED_HIGH = 0x01;
    /** The 64-bit entry point's offset from the load address. */
    public static final long ENTRY_64 = 0x200;
    static final long ONE_MIB = 1L << 20;

    /**
     * Checks and parses {@code file}.
     *
     * @throws IllegalArgumentException naming {@code name} and what is wrong, for anything that is not a usable 64-bit bzImage
     */
    public static BzImage parse(byte[] file, String name) {
        if (file.length < INIT_SIZE + 4) {
            throw bad(name, "is " + file.length + " bytes, too short to hold a setup header (truncated, or not a bzImage)");
        }
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt(HEADER) != MAGIC) {
            throw bad(name, "has no \"HdrS\" magic at 0x202: not a bzImage (a vmlinux ELF or a compressed file?)");
        }
        if (Short.toUnsignedInt(b.getShort(BOOT_FLAG)) != BOOT_FLAG_VALUE) {
            throw bad(name, "has no 0xAA55 boot flag at 0x1fe");
        }
        int version = Short.toUnsignedInt(b.getShort(VERSION));
        if (version < MIN_VERSION) {
            throw bad(name, "speaks boot protocol %d.%02d; 2.12 or later is needed (Linux 3.8+)"
                    .formatted(version >> 8, version & 0xff));
        }
        int xloadflags = Short.toUnsignedInt(b.getShort(XLOADFLAGS));
        if ((xloadflags & XLF_KERNEL_64) == 0) {
            throw bad(name, "has no 64-bit entry point (XLF_KERNEL_64 is clear): a 32-bit kernel");
        }
        if ((file[LOADFLAGS] & LOADED_HIGH) == 0) {
            throw bad(name, "is a zImage that loads at 0x10000; only bzImages (LOADED_HIGH) are supported");
        }
        int setupSects = Byte.toUnsignedInt(file[SETUP_SECTS]);
        int kernelOffset = ((setupSects == 0 ? 4 : setupSects) + 1) * 512;
        int headerEnd = HEADER + Byte.toUnsignedInt(file[JUMP + 1]);
        if (headerEnd < INIT_SIZE + 4 || headerEnd > kernelOffset) {   // the header holds init_size, its last field read
            throw bad(name, "has a setup header ending at 0x%x, outside the setup code (0x%x bytes)".formatted(headerEnd, kernelOffset));
        }
        if (kernelOffset >= file.length) {
            throw bad(name, "is truncated: the protected-mode kernel should start at 0x%x but the file has %d bytes"
                    .formatted(kernelOffset, file.length));
        }
        long initrdAddrMax = Integer.toUnsignedLong(b.getInt(INITRD_ADDR_MAX));
        long alignment = Integer.toUnsignedLong(b.getInt(KERNEL_ALIGNMENT));
        boolean relocatable = file[RELOCATABLE_KERNEL] != 0;
        long cmdlineSize = Integer.toUnsignedLong(b.getInt(CMDLINE_SIZE));
        long pref = b.getLong(PREF_ADDRESS);
        long initSize = Integer.toUnsignedLong(b.getInt(INIT_SIZE));
        long payload = file.length - kernelOffset;
        if (pref < ONE_MIB || pref > 1L << 32 || (relocatable && alignment != 0 && pref % alignment != 0)) {
            throw bad(name, "prefers to load at 0x%x, which is below 1 MiB, above 4 GiB or not aligned to 0x%x"
                    .formatted(pref, alignment));
        }
        if (initSize < payload) {
            throw bad(name, "says init_size is %d bytes, less than its %d-byte payload".formatted(initSize, payload));
        }
        byte[] header = new byte[headerEnd - SETUP_SECTS];
        System.arraycopy(file, SETUP_SECTS, header, 0, header.length);
        return new BzImage(header, kernelOffset, version, initrdAddrMax, alignment, relocatable, xloadflags,
                cmdlineSize, pref, initSize);
    }

    private static IllegalArgumentException bad(String name, String what) {
        return new IllegalArgumentException("kernel " + name + " " + what);
    }

    /** The protocol version as people write it, e.g. {@code 2.15}. */
    public String versionText() {
        return "%d.%02d".formatted(version >> 8, version & 0xff);
    }
}
