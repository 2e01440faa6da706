package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A vCPU's binary statistics ({@code KVM_GET_STATS_FD}): the descriptors are
 * read once, the values on each {@link #read()}. Used to tell whether a guest
 * really runs natively under PVM ({@code insn_emulation} stays near the number
 * of I/O exits) or is being emulated instruction by instruction.
 */
final class KvmStats implements AutoCloseable {

    // Field offsets, computed once: looking a layout path up by name on every call is slow.
    private static final long O_STATS_DESC_OFFSET = offset(KVM_STATS_DESC, "offset");
    private static final long O_STATS_DESC_SIZE = offset(KVM_STATS_DESC, "size");
    private static final long O_STATS_HEADER_DATA_OFFSET = offset(KVM_STATS_HEADER, "data_offset");
    private static final long O_STATS_HEADER_DESC_OFFSET = offset(KVM_STATS_HEADER, "desc_offset");
    private static final long O_STATS_HEADER_NAME_SIZE = offset(KVM_STATS_HEADER, "name_size");
    private static final long O_STATS_HEADER_NUM_DESC = offset(KVM_STATS_HEADER, "num_desc");

    private final int fd;
    private final String[] names;
    private final int[] valueOffsets;
    private final long dataOffset;
    private final long dataSize;

    private KvmStats(int fd, String[] names, int[] valueOffsets, long dataOffset, long dataSize) {
        this.fd = fd;
        this.names = names;
        this.valueOffsets = valueOffsets;
        this.dataOffset = dataOffset;
        this.dataSize = dataSize;
    }

    static KvmStats open(int vcpuFd) {
        int fd = Libc.ioctl(vcpuFd, KVM_GET_STATS_FD, 0L, "KVM_GET_STATS_FD");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment header = arena.allocate(KVM_STATS_HEADER);
            Libc.pread(fd, header, 0);
            int nameSize = header.get(ValueLayout.JAVA_INT, O_STATS_HEADER_NAME_SIZE);
            int count = header.get(ValueLayout.JAVA_INT, O_STATS_HEADER_NUM_DESC);
            long descOffset = Integer.toUnsignedLong(header.get(ValueLayout.JAVA_INT, O_STATS_HEADER_DESC_OFFSET));
            long dataOffset = Integer.toUnsignedLong(header.get(ValueLayout.JAVA_INT, O_STATS_HEADER_DATA_OFFSET));
            if (nameSize <= 0 || nameSize > 4096 || count < 0 || count > 4096) {
                throw new KvmException("KVM_GET_STATS_FD", 0, "implausible stats header: " + count + " descriptors");
            }
            long descSize = KVM_STATS_DESC.byteSize() + nameSize;
            MemorySegment descs = arena.allocate(descSize * count, 8);
            Libc.pread(fd, descs, descOffset);
            String[] names = new String[count];
            int[] offsets = new int[count];
            long maxEnd = 0;
            for (int i = 0; i < count; i++) {
                MemorySegment d = descs.asSlice(i * descSize, descSize);
                offsets[i] = d.get(ValueLayout.JAVA_INT, O_STATS_DESC_OFFSET);
                byte[] raw = d.asSlice(KVM_STATS_DESC.byteSize(), nameSize).toArray(ValueLayout.JAVA_BYTE);
                int len = 0;
                while (len < raw.length && raw[len] != 0) {
                    len++;
                }
                names[i] = new String(raw, 0, len, StandardCharsets.US_ASCII);
                int size = Short.toUnsignedInt(d.get(ValueLayout.JAVA_SHORT, O_STATS_DESC_SIZE));
                maxEnd = Math.max(maxEnd, Integer.toUnsignedLong(offsets[i]) + 8L * Math.max(1, size));
            }
            return new KvmStats(fd, names, offsets, dataOffset, maxEnd);
        } catch (RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    /** Current values: the first u64 of each statistic, by name. */
    Map<String, Long> read() {
        Map<String, Long> out = new LinkedHashMap<>();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(Math.max(8, dataSize), 8);
            long n = Libc.pread(fd, data, dataOffset);
            for (int i = 0; i < names.length; i++) {
                long at = Integer.toUnsignedLong(valueOffsets[i]);
                if (at + 8 <= n) {
                    out.put(names[i], data.get(ValueLayout.JAVA_LONG, at));
                }
            }
        }
        return out;
    }

    @Override
    public void close() {
        Libc.close(fd);
    }
}
