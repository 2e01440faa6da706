package org.nxia.vmm.internal.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The zero page (struct boot_params, 4 KiB) the 64-bit entry point reads
 * through %rsi: the kernel's own setup header with the loader's fields
 * filled in, the e820 map, the command line and initramfs pointers, and
 * where the ACPI RSDP is when the VM has ACPI tables.
 */
public final class BootParams {

    public static final int SIZE = 4096;
    /** u64 acpi_rsdp_addr: where the RSDP is; 0 lets the kernel scan for it. */
    public static final int ACPI_RSDP_ADDR = 0x070;
    public static final int EXT_RAMDISK_IMAGE = 0x0c0;
    public static final int EXT_RAMDISK_SIZE = 0x0c4;
    public static final int EXT_CMD_LINE_PTR = 0x0c8;
    public static final int E820_ENTRIES = 0x1e8;
    public static final int E820_TABLE = 0x2d0;
    /** type_of_loader 0xff: a loader with no assigned id. */
    public static final int LOADER_UNDEFINED = 0xff;

    private BootParams() {
    }

    /**
     * The zero page for {@code kernel} with {@code cmdline} at
     * {@link LinuxLayout#CMDLINE} and the initramfs where {@code layout} puts it.
     *
     * @throws IllegalArgumentException when the command line is longer than the kernel accepts
     */
    public static byte[] build(BzImage kernel, LinuxLayout layout, String cmdline, List<E820.Entry> e820) {
        return build(kernel, layout, cmdline, e820, 0);
    }

    /**
     * The zero page as {@link #build(BzImage, LinuxLayout, String, List)} writes it, with
     * {@code acpiRsdpAddress} (0: none) in acpi_rsdp_addr.
     */
    public static byte[] build(BzImage kernel, LinuxLayout layout, String cmdline, List<E820.Entry> e820, long acpiRsdpAddress) {
        byte[] text = cmdline.getBytes(StandardCharsets.US_ASCII);
        long limit = Math.min(kernel.cmdlineSize(), LinuxLayout.CMDLINE_MAX - 1);
        if (text.length > limit) {
            throw new IllegalArgumentException("the kernel command line is %d bytes; this kernel accepts at most %d"
                    .formatted(text.length, limit));
        }
        if (e820.size() > E820.MAX_ENTRIES) {
            throw new IllegalArgumentException("an e820 map of " + e820.size() + " entries does not fit the zero page");
        }
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.put(BzImage.SETUP_SECTS, kernel.setupHeader());
        b.put(BzImage.TYPE_OF_LOADER, (byte) LOADER_UNDEFINED);
        b.putInt(BzImage.CODE32_START, (int) layout.kernelAddress());
        b.putInt(BzImage.CMD_LINE_PTR, (int) LinuxLayout.CMDLINE);
        b.putInt(EXT_CMD_LINE_PTR, 0);
        b.putInt(BzImage.RAMDISK_IMAGE, (int) layout.initrdAddress());
        b.putInt(BzImage.RAMDISK_SIZE, (int) layout.initrdSize());
        b.putInt(EXT_RAMDISK_IMAGE, 0);
        b.putInt(EXT_RAMDISK_SIZE, 0);
        b.putLong(ACPI_RSDP_ADDR, acpiRsdpAddress);
        b.put(E820_ENTRIES, (byte) e820.size());
        int at = E820_TABLE;
        for (E820.Entry e : e820) {
            b.putLong(at, e.address());
            b.putLong(at + 8, e.size());
            b.putInt(at + 16, e.type());
            at += E820.ENTRY_SIZE;
        }
        return b.array();
    }

    /** The command line as the kernel reads it: ASCII, NUL-terminated. */
    public static byte[] cmdlineBytes(String cmdline) {
        byte[] text = cmdline.getBytes(StandardCharsets.US_ASCII);
        byte[] out = new byte[text.length + 1];
        System.arraycopy(text, 0, out, 0, text.length);
        return out;
    }
}
