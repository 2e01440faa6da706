package org.nxia.backend.kvm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestRange;

/** Guest RAM is a memfd: the pages ever written are its data extents, the rest are holes (no /dev/kvm needed). */
class MemfdExtentsTest {

    @Test
    void onlyTouchedPagesAreData() {
        long size = 64 * 4096;
        int fd = Libc.memfdCreate("extents-test");
        MemorySegment ram = null;
        try {
            Libc.ftruncate(fd, size);
            ram = Libc.mmap(size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, "test RAM");
            assertEquals(List.of(), KvmPartition.dataExtents(fd, size), "untouched: all hole");
            ram.set(ValueLayout.JAVA_BYTE, 5, (byte) 1);
            ram.set(ValueLayout.JAVA_BYTE, 3 * 4096 + 7, (byte) 1);
            ram.set(ValueLayout.JAVA_BYTE, 4 * 4096, (byte) 1);
            ram.set(ValueLayout.JAVA_BYTE, size - 1, (byte) 1);
            assertEquals(List.of(new GuestRange(0, 4096), new GuestRange(3 * 4096, 2 * 4096), new GuestRange(size - 4096, 4096)),
                    KvmPartition.dataExtents(fd, size));
        } finally {
            if (ram != null) {
                Libc.munmap(ram);
            }
            Libc.close(fd);
        }
    }
}
