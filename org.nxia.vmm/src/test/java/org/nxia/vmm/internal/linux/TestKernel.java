package org.nxia.vmm.internal.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** A synthetic bzImage: a setup header as boot.rst lays it out, then a payload of {@code payload} bytes. */
public final class TestKernel {

    static final int SETUP_SECTS = 4;
    static final long PREF = 0x100_0000;
    static final long INIT_SIZE = 0x80_0000;
    static final long INITRD_MAX = 0x7fff_ffff;

    private TestKernel() {
    }

    static byte[] image(int version, int xloadflags, int payload) {
        byte[] f = new byte[(SETUP_SECTS + 1) * 512 + payload];
        ByteBuffer b = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0x1f1, (byte) SETUP_SECTS);
        b.putShort(0x1fe, (short) 0xaa55);
        b.put(0x200, (byte) 0xeb);           // jmp short
        b.put(0x201, (byte) 0x6a);           // header ends at 0x202 + 0x6a = 0x26c
        b.putInt(0x202, 0x5372_6448);        // "HdrS"
        b.putShort(0x206, (short) version);
        b.put(0x211, (byte) 0x01);           // LOADED_HIGH
        b.putInt(0x214, 0x100000);
        b.putInt(0x22c, (int) INITRD_MAX);
        b.putInt(0x230, 0x20_0000);
        b.put(0x234, (byte) 1);
        b.putShort(0x236, (short) xloadflags);
        b.putInt(0x238, 2047);
        b.putLong(0x258, PREF);
        b.putInt(0x260, (int) INIT_SIZE);
        for (int i = (SETUP_SECTS + 1) * 512; i < f.length; i++) {
            f[i] = (byte) i;
        }
        return f;
    }

    public static byte[] image() {
        return image(0x020f, 0x7f, 4096);
    }

    static BzImage parsed() {
        return BzImage.parse(image(), "test");
    }
}
