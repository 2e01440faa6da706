package org.nxia.vmm.internal.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * A checked x86-64 ELF executable for a micro-VM (see docs/guest-abi.md,
 * "Image"). Parsing is defensive: the file is untrusted, every offset and
 * size is checked, with overflow, before use.
 *
 * @param entry    the entry point
 * @param segments the PT_LOAD segments, sorted by address, non-overlapping
 * @param bytes    the file
 */
public record ElfImage(long entry, List<LoadSegment> segments, byte[] bytes) {

    /** Images are linked here; below it lie the boot block, GDT and console buffer. */
    public static final long LOAD_BASE = 0x100000;
    public static final int MAX_FILE_SIZE = 256 << 20;
    static final int MAX_PROGRAM_HEADERS = 64;

    private static final int EHDR_SIZE = 64;
    private static final int PHDR_SIZE = 56;
    private static final int PT_LOAD = 1;
    private static final int PF_X = 1;
    private static final int ET_EXEC = 2;
    private static final int ET_DYN = 3;
    private static final int EM_X86_64 = 62;

    /**
     * One PT_LOAD: {@code fileSize} bytes from {@code fileOffset} go to
     * {@code address}; the rest of {@code memorySize} is zero.
     */
    public record LoadSegment(long address, long fileOffset, long fileSize, long memorySize, boolean executable) {
        public long end() {
            return address + memorySize;
        }
    }

    public ElfImage {
        segments = List.copyOf(segments);
    }

    /** The first address past the last segment. */
    public long end() {
        return segments.getLast().end();
    }

    /**
     * Parses and checks {@code file}. {@code name} is used in messages.
     *
     * @throws GuestImageException naming the first problem found
     */
    public static ElfImage parse(byte[] file, String name) {
        if (file.length > MAX_FILE_SIZE) {
            throw new GuestImageException(name + ": " + file.length + " bytes is larger than the 256 MiB a guest image may be");
        }
        if (file.length < 4 || file[0] != 0x7f || file[1] != 'E' || file[2] != 'L' || file[3] != 'F') {
            throw new GuestImageException(name + ": not an ELF file (no \\x7fELF magic); give a guest built with the guest kit (guest/)");
        }
        if (file.length < EHDR_SIZE) {
            throw new GuestImageException(name + ": truncated ELF header (" + file.length + " bytes, need 64)");
        }
        if (file[4] != 2) {
            throw new GuestImageException(name + ": a 32-bit ELF file; micro-VM guests are 64-bit x86-64 executables");
        }
        if (file[5] != 1) {
            throw new GuestImageException(name + ": a big-endian ELF file; micro-VM guests are little-endian x86-64 executables");
        }
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        int type = Short.toUnsignedInt(b.getShort(16));
        int machine = Short.toUnsignedInt(b.getShort(18));
        if (machine != EM_X86_64) {
            throw new GuestImageException(name + ": built for " + machineName(machine)
                    + ", not x86-64; rebuild it for x86-64 with the guest kit");
        }
        if (type == ET_DYN) {
            throw new GuestImageException(name + ": a position-independent executable or shared object; link with -static -no-pie at 0x100000");
        }
        if (type != ET_EXEC) {
            throw new GuestImageException(name + ": ELF type " + type + " is not an executable (ET_EXEC)");
        }
        long entry = b.getLong(24);
        long phoff = b.getLong(32);
        int phentsize = Short.toUnsignedInt(b.getShort(54));
        int phnum = Short.toUnsignedInt(b.getShort(56));
        if (phnum == 0) {
            throw new GuestImageException(name + ": no program headers, so nothing to load");
        }
        if (phnum > MAX_PROGRAM_HEADERS) {
            throw new GuestImageException(name + ": " + phnum + " program headers; at most " + MAX_PROGRAM_HEADERS + " are accepted");
        }
        if (phentsize != PHDR_SIZE) {
            throw new GuestImageException(name + ": program header size " + phentsize + " is not the ELF64 size 56");
        }
        if (phoff < 0 || phoff > file.length || (long) phnum * PHDR_SIZE > file.length - phoff) {
            throw new GuestImageException(name + ": program header table [" + phoff + ", +" + (long) phnum * PHDR_SIZE
                    + ") lies outside the " + file.length + "-byte file (truncated or corrupt)");
        }
        List<LoadSegment> loads = new ArrayList<>();
        for (int i = 0; i < phnum; i++) {
            int at = (int) (phoff + (long) i * PHDR_SIZE);
            if (b.getInt(at) != PT_LOAD) {
                continue;
            }
            int flags = b.getInt(at + 4);
            long offset = b.getLong(at + 8);
            long vaddr = b.getLong(at + 16);
            long paddr = b.getLong(at + 24);
            long filesz = b.getLong(at + 32);
            long memsz = b.getLong(at + 40);
            String seg = name + ": segment " + i + " (PT_LOAD at 0x" + Long.toHexString(vaddr) + ")";
            if (vaddr != paddr) {
                throw new GuestImageException(seg + " has physical address 0x" + Long.toHexString(paddr)
                        + "; micro-VM images are identity-mapped (p_vaddr == p_paddr)");
            }
            if (offset < 0 || filesz < 0 || offset > file.length || filesz > file.length - offset) {
                throw new GuestImageException(seg + ": its file bytes [" + offset + ", +" + filesz
                        + ") lie outside the " + file.length + "-byte file (truncated or corrupt)");
            }
            if (memsz < 0 || filesz > memsz) {
                throw new GuestImageException(seg + ": file size " + filesz + " exceeds memory size " + memsz);
            }
            if (vaddr < LOAD_BASE) {
                throw new GuestImageException(seg + " lies below 0x100000, where the VMM keeps the boot block and page tables; link at 0x100000");
            }
            if (vaddr > Long.MAX_VALUE - memsz) {
                throw new GuestImageException(seg + ": address + size overflows");
            }
            if (memsz == 0) {
                continue;
            }
            loads.add(new LoadSegment(vaddr, offset, filesz, memsz, (flags & PF_X) != 0));
        }
        if (loads.isEmpty()) {
            throw new GuestImageException(name + ": no loadable (PT_LOAD) segment");
        }
        loads.sort(Comparator.comparingLong(LoadSegment::address));
        for (int i = 1; i < loads.size(); i++) {
            if (loads.get(i).address() < loads.get(i - 1).end()) {
                throw new GuestImageException(name + ": segments at 0x" + Long.toHexString(loads.get(i - 1).address())
                        + " and 0x" + Long.toHexString(loads.get(i).address()) + " overlap");
            }
        }
        boolean entryOk = loads.stream().anyMatch(s -> s.executable() && entry >= s.address() && entry < s.end());
        if (!entryOk) {
            throw new GuestImageException(name + ": entry point 0x" + Long.toHexString(entry) + " is not inside an executable segment");
        }
        return new ElfImage(entry, loads, file);
    }

    private static String machineName(int machine) {
        return switch (machine) {
            case 3 -> "x86 (32-bit, EM_386)";
            case 40 -> "ARM (EM_ARM)";
            case 183 -> "AArch64 (EM_AARCH64)";
            case 243 -> "RISC-V (EM_RISCV)";
            default -> "machine " + machine;
        };
    }
}
