package org.nxia.snapshot.internal;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/** {@code lseek(SEEK_DATA/SEEK_HOLE)} through FFM: the data ranges of a sparse file such as a memfd. */
public final class SeekData {

    private static final int SEEK_DATA = 3;
    private static final int SEEK_HOLE = 4;
    private static final int ENXIO = 6;
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle LSEEK;

    static {
        Linker linker = Linker.nativeLinker();
        LSEEK = linker.downcallHandle(linker.defaultLookup().find("lseek").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT),
            Linker.Option.captureCallState("errno"));
    }

    private SeekData() {
    }

    /** Receives each data range, page-aligned outwards and clipped to the size. */
    public interface RangeSink {
        void range(long offset, long end);
    }

    /** Reports the data ranges of {@code fd} below {@code size}, rounded out to whole pages, ascending and disjoint. */
    public static void dataRanges(int fd, long size, RangeSink sink) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            long at = 0;
            while (at < size) {
                long data = lseek(state, fd, at, SEEK_DATA);
                if (data < 0) {
                    break;   // ENXIO: no data at or after this offset
                }
                if (data >= size) {
                    break;
                }
                long hole = lseek(state, fd, data, SEEK_HOLE);
                if (hole < 0) {
                    hole = size;
                }
                long start = Math.max(data & -Format.PAGE, at);   // ascending and disjoint, whatever the file system's granularity
                long end = Math.min(size, Format.align(Math.min(hole, size), Format.PAGE));
                if (start < end) {
                    sink.range(start, end);
                }
                at = Math.max(end, data + 1);
            }
        }
    }

    /** lseek; -1 only at ENXIO (past the last data), any other failure is an IOException. */
    private static long lseek(MemorySegment state, int fd, long offset, int whence) throws IOException {
        long r;
        try {
            r = (long) LSEEK.invokeExact(state, fd, offset, whence);
        } catch (Throwable t) {
            throw new IllegalStateException("lseek could not be called", t);
        }
        if (r < 0) {
            int errno = (int) ERRNO.get(state, 0L);
            if (errno == ENXIO) {
                return -1;
            }
            throw new IOException("lseek(" + fd + ", " + offset + ", " + (whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE")
                + ") failed: errno " + errno);
        }
        return r;
    }
}
