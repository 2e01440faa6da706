package org.nxia.vmm.internal.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds ELF64 files byte by byte for tests. Defaults describe a valid
 * micro-VM image; every header field can be overridden to make it invalid.
 * Segment file bytes follow the program header table in the order added,
 * unless a segment's {@code offset} is set explicitly.
 */
public final class ElfBuilder {

    public static final int PT_LOAD = 1;
    public static final int PT_NOTE = 4;
    public static final int PF_X = 1;
    public static final int PF_W = 2;
    public static final int PF_R = 4;

    /** One program header; fields left null are filled in by {@link #build}. */
    public static final class Phdr {
        public int type = PT_LOAD;
        public int flags = PF_R | PF_X;
        public Long offset;
        public long vaddr;
        public Long paddr;
        public Long filesz;
        public long memsz;
        public byte[] data = new byte[0];
    }

    public byte elfClass = 2;
    public byte dataEncoding = 1;
    public int type = 2;
    public int machine = 62;
    public long entry = 0x100000;
    public Long phoff;
    public int phentsize = 56;
    public Integer phnum;
    public final List<Phdr> segments = new ArrayList<>();
    /** Extra bytes appended at the end of the file. */
    public int trailing;

    /** A valid image: one executable segment at 0x100000 holding {@code hlt}, entry at its start. */
    public static ElfBuilder minimal() {
        ElfBuilder b = new ElfBuilder();
        b.load(0x100000, new byte[] {(byte) 0xf4}, 0x1000, PF_R | PF_X);
        return b;
    }

    public Phdr load(long vaddr, byte[] data, long memsz, int flags) {
        Phdr p = new Phdr();
        p.vaddr = vaddr;
        p.data = data;
        p.memsz = memsz;
        p.flags = flags;
        segments.add(p);
        return p;
    }

    public Phdr segment(int index) {
        return segments.get(index);
    }

    public ElfBuilder entry(long value) {
        entry = value;
        return this;
    }

    public byte[] build() {
        int n = segments.size();
        long table = phoff != null ? phoff : 64;
        int headersEnd = (int) (64 + 56L * n);
        int size = headersEnd;
        for (Phdr p : segments) {
            size += p.data.length;
        }
        size += trailing;
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, (byte) 0x7f).put(1, (byte) 'E').put(2, (byte) 'L').put(3, (byte) 'F');
        b.put(4, elfClass).put(5, dataEncoding).put(6, (byte) 1);
        b.putShort(16, (short) type);
        b.putShort(18, (short) machine);
        b.putInt(20, 1);
        b.putLong(24, entry);
        b.putLong(32, table);
        b.putShort(52, (short) 64);
        b.putShort(54, (short) phentsize);
        b.putShort(56, (short) (phnum != null ? phnum : n));
        int data = headersEnd;
        for (int i = 0; i < n; i++) {
            Phdr p = segments.get(i);
            int at = 64 + 56 * i;
            b.put(data, p.data);
            b.putInt(at, p.type);
            b.putInt(at + 4, p.flags);
            b.putLong(at + 8, p.offset != null ? p.offset : data);
            b.putLong(at + 16, p.vaddr);
            b.putLong(at + 24, p.paddr != null ? p.paddr : p.vaddr);
            b.putLong(at + 32, p.filesz != null ? p.filesz : p.data.length);
            b.putLong(at + 40, p.memsz);
            b.putLong(at + 48, 0x1000);
            data += p.data.length;
        }
        return b.array();
    }
}
