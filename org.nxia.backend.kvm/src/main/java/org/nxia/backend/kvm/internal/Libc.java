package org.nxia.backend.kvm.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * Every libc function the KVM backend calls, as downcall handles, in one
 * place. Each wrapper throws {@link KvmException} naming the call and errno.
 *
 * <p>Native access is restricted: this class is where it happens, on purpose.
 */
@SuppressWarnings("restricted")
final class Libc {

    static final int O_RDWR = 0x2;
    static final int O_CLOEXEC = 0x80000;
    static final int PROT_READ = 0x1;
    static final int PROT_WRITE = 0x2;
    static final int MAP_SHARED = 0x1;
    static final int MFD_CLOEXEC = 0x1;
    static final int MFD_HUGETLB = 0x4;
    static final int MAP_PRIVATE = 0x2;
    static final int MAP_ANONYMOUS = 0x20;
    static final int MAP_FIXED = 0x10;
    static final int MAP_NORESERVE = 0x4000;
    static final int O_RDONLY = 0x0;
    static final int MADV_HUGEPAGE = 14;
    static final int MADV_POPULATE_WRITE = 23;
    /** Affinity masks of 4096 bits: every CPU index a placement may name (HostPlacement.MAX_CPU). */
    static final int CPU_SET_BYTES = 512;

    static final int EINTR = 4;
    static final int EAGAIN = 11;
    static final int E2BIG = 7;
    static final int ENOENT = 2;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option ERRNO_CAPTURE = Linker.Option.captureCallState("errno");

    private static final MethodHandle OPEN = downcall("open",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT),
            ERRNO_CAPTURE, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = downcall("close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    /** ioctl(fd, request, void *arg) */
    private static final MethodHandle IOCTL_PTR = downcall("ioctl",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS),
            ERRNO_CAPTURE, Linker.Option.firstVariadicArg(2));
    /** ioctl(fd, request, unsigned long arg) */
    private static final MethodHandle IOCTL_LONG = downcall("ioctl",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
            ERRNO_CAPTURE, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle MMAP = downcall("mmap",
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG),
            ERRNO_CAPTURE);
    private static final MethodHandle MUNMAP = downcall("munmap",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    private static final MethodHandle MEMFD_CREATE = downcall("memfd_create",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT),
            ERRNO_CAPTURE);
    private static final MethodHandle FTRUNCATE = downcall("ftruncate",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG),
            ERRNO_CAPTURE);
    private static final MethodHandle PREAD = downcall("pread",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
            ERRNO_CAPTURE);
    private static final MethodHandle LSEEK = downcall("lseek",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT),
            ERRNO_CAPTURE);
    private static final MethodHandle EVENTFD = downcall("eventfd",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
            ERRNO_CAPTURE);
    private static final MethodHandle WRITE = downcall("write",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG),
            ERRNO_CAPTURE);
    private static final MethodHandle READ = downcall("read",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG),
            ERRNO_CAPTURE);
    private static final MethodHandle PTHREAD_SELF = downcall("pthread_self",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG));
    private static final MethodHandle PTHREAD_KILL = downcall("pthread_kill",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    private static final MethodHandle SIGACTION = downcall("sigaction",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS),
            ERRNO_CAPTURE);
    private static final MethodHandle SIGRTMIN = downcall("__libc_current_sigrtmin",
            FunctionDescriptor.of(ValueLayout.JAVA_INT));
    private static final MethodHandle MADVISE = downcall("madvise",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT),
            ERRNO_CAPTURE);
    private static final MethodHandle GETTID = downcall("gettid", FunctionDescriptor.of(ValueLayout.JAVA_INT));
    private static final MethodHandle GETPID = downcall("getpid", FunctionDescriptor.of(ValueLayout.JAVA_INT));
    private static final MethodHandle SCHED_SETAFFINITY = downcall("sched_setaffinity",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS),
            ERRNO_CAPTURE);
    private static final MethodHandle SCHED_GETAFFINITY = downcall("sched_getaffinity",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS),
            ERRNO_CAPTURE);
    private static final MethodHandle STRERROR = downcall("strerror",
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT));

    /** glibc x86-64 struct sigaction: handler, 128-byte mask, flags, restorer. */
    private static final long SIGACTION_SIZE = 152;
    private static final long SA_FLAGS_OFFSET = 136;

    private Libc() {
    }

    private static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MemorySegment symbol = LIBC.find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
        return LINKER.downcallHandle(symbol, descriptor, options);
    }

    /** Per-thread scratch for errno; a vCPU keeps its own so the run loop allocates nothing. */
    static MemorySegment newCallState(Arena arena) {
        return arena.allocate(CALL_STATE);
    }

    static int errno(MemorySegment callState) {
        return (int) ERRNO.get(callState, 0L);
    }

    /** A libc call that reports failure as -1 with errno in {@code state}. */
    @FunctionalInterface
    private interface ErrnoCall {
        long invoke(Arena arena, MemorySegment state) throws Throwable;
    }

    /** Runs {@code body}; a negative result becomes a {@link KvmException} naming {@code call}. */
    private static long checked(String call, String context, ErrnoCall body) throws KvmException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = newCallState(arena);
            long rc = body.invoke(arena, state);
            if (rc < 0) {
                throw KvmException.of(call, errno(state), context);
            }
            return rc;
        } catch (KvmException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    static int open(String path, int flags) throws KvmException {
        return (int) checked("open(" + path + ")", "",
                (arena, state) -> (int) OPEN.invokeExact(state, arena.allocateFrom(path), flags));
    }

    static void close(int fd) {
        try {
            int rc = (int) CLOSE.invokeExact(fd);
            assert rc == 0 || rc == -1;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** ioctl with a pointer argument; returns the result or -1 with errno in {@code state}. No allocation. */
    static int ioctlRaw(MemorySegment state, int fd, long request, MemorySegment arg) {
        try {
            return (int) IOCTL_PTR.invokeExact(state, fd, request, arg);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** errno scratch per thread, for the ioctls that set up and inspect VMs: no arena per call. */
    private static final ThreadLocal<MemorySegment> CALL_STATES = ThreadLocal.withInitial(() -> newCallState(Arena.ofAuto()));

    /** ioctl with a pointer argument that throws on failure. */
    static int ioctl(int fd, long request, MemorySegment arg, String name) throws KvmException {
        MemorySegment state = CALL_STATES.get();
        int rc = ioctlRaw(state, fd, request, arg);
        if (rc < 0) {
            throw KvmException.of("ioctl(" + name + ")", errno(state), "fd " + fd);
        }
        return rc;
    }

    /** ioctl with an integer argument that throws on failure. */
    static int ioctl(int fd, long request, long arg, String name) throws KvmException {
        MemorySegment state = CALL_STATES.get();
        int rc;
        try {
            rc = (int) IOCTL_LONG.invokeExact(state, fd, request, arg);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
        if (rc < 0) {
            throw KvmException.of("ioctl(" + name + ")", errno(state), "fd " + fd + ", arg " + arg);
        }
        return rc;
    }

    /** mmap(NULL, size, prot, flags, fd, 0), as a segment of {@code size} bytes. */
    static MemorySegment mmap(long size, int prot, int flags, int fd, String what) throws KvmException {
        long address = checked("mmap(" + what + ")", size + " bytes, fd " + fd, (arena, state) ->
                ((MemorySegment) MMAP.invokeExact(state, MemorySegment.NULL, size, prot, flags, fd, 0L)).address());
        return MemorySegment.ofAddress(address).reinterpret(size);
    }

    /**
     * mmap(at, size, prot, flags | MAP_FIXED, fd, offset): replaces whatever is mapped at {@code at}
     * (the caller's own range) with the new mapping, in place.
     */
    static void mmapFixed(MemorySegment at, int prot, int flags, int fd, long offset, String what) throws KvmException {
        long size = at.byteSize();
        long address = checked("mmap(" + what + ")", size + " bytes at 0x" + Long.toHexString(at.address()) + ", fd " + fd
                + ", offset " + offset, (arena, state) ->
                ((MemorySegment) MMAP.invokeExact(state, at, size, prot, flags | MAP_FIXED, fd, offset)).address());
        if (address != at.address()) {   // MAP_FIXED maps exactly there or fails; anything else is a broken libc
            throw new AssertionError("mmap(MAP_FIXED) at 0x" + Long.toHexString(at.address()) + " mapped 0x" + Long.toHexString(address));
        }
    }

    static void munmap(MemorySegment segment) {
        try {
            int rc = (int) MUNMAP.invokeExact(segment, segment.byteSize());
            assert rc == 0;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    static int memfdCreate(String name) throws KvmException {
        return memfdCreate(name, MFD_CLOEXEC);
    }

    static int memfdCreate(String name, int flags) throws KvmException {
        return (int) checked("memfd_create(" + name + ")", "flags 0x" + Integer.toHexString(flags),
                (arena, state) -> (int) MEMFD_CREATE.invokeExact(state, arena.allocateFrom(name), flags));
    }

    /** madvise(segment, advice) over the whole segment. */
    static void madvise(MemorySegment segment, int advice, String what) throws KvmException {
        checked("madvise(" + what + ")", segment.byteSize() + " bytes at 0x" + Long.toHexString(segment.address()),
                (arena, state) -> (int) MADVISE.invokeExact(state, segment, segment.byteSize(), advice));
    }

    /** The calling thread's kernel id: what sched_setaffinity names. */
    static int gettid() {
        try {
            return (int) GETTID.invokeExact();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    static int getpid() {
        try {
            return (int) GETPID.invokeExact();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** sched_setaffinity(tid, mask of {@code cpus}). */
    static void schedSetaffinity(int tid, List<Integer> cpus) throws KvmException {
        checked("sched_setaffinity", "tid " + tid + ", CPUs " + cpus, (arena, state) -> {
            MemorySegment mask = arena.allocate(CPU_SET_BYTES, 8);
            for (int cpu : cpus) {
                long word = mask.getAtIndex(ValueLayout.JAVA_LONG, cpu / 64);
                mask.setAtIndex(ValueLayout.JAVA_LONG, cpu / 64, word | 1L << (cpu % 64));
            }
            return (int) SCHED_SETAFFINITY.invokeExact(state, tid, (long) CPU_SET_BYTES, mask);
        });
    }

    /** sched_getaffinity(tid): the CPUs it may run on, ascending. */
    static List<Integer> schedGetaffinity(int tid) throws KvmException {
        List<Integer> cpus = new ArrayList<>();
        checked("sched_getaffinity", "tid " + tid, (arena, state) -> {
            MemorySegment mask = arena.allocate(CPU_SET_BYTES, 8);
            int rc = (int) SCHED_GETAFFINITY.invokeExact(state, tid, (long) CPU_SET_BYTES, mask);
            for (int cpu = 0; rc >= 0 && cpu < CPU_SET_BYTES * 8; cpu++) {
                if ((mask.getAtIndex(ValueLayout.JAVA_LONG, cpu / 64) & 1L << (cpu % 64)) != 0) {
                    cpus.add(cpu);
                }
            }
            return rc;
        });
        return cpus;
    }

    static void ftruncate(int fd, long size) throws KvmException {
        checked("ftruncate", "fd " + fd + ", " + size + " bytes",
                (arena, state) -> (int) FTRUNCATE.invokeExact(state, fd, size));
    }

    /** pread into {@code buffer}; returns the bytes read. */
    static long pread(int fd, MemorySegment buffer, long offset) throws KvmException {
        return checked("pread", "fd " + fd + ", offset " + offset,
                (arena, state) -> (long) PREAD.invokeExact(state, fd, buffer, buffer.byteSize(), offset));
    }

    static final int SEEK_END = 2;
    static final int SEEK_DATA = 3;
    static final int SEEK_HOLE = 4;
    static final int ENXIO = 6;

    /**
     * lseek(fd, offset, whence) for SEEK_DATA/SEEK_HOLE on a memfd: where the
     * next populated (or unpopulated) byte is; -1 where SEEK_DATA finds no
     * more data (ENXIO).
     */
    static long seek(int fd, long offset, int whence) throws KvmException {
        MemorySegment state = CALL_STATES.get();
        long rc;
        try {
            rc = (long) LSEEK.invokeExact(state, fd, offset, whence);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
        if (rc < 0) {
            if (errno(state) == ENXIO) {
                return -1;
            }
            throw KvmException.of("lseek", errno(state), "fd " + fd + ", offset " + offset + ", whence " + whence);
        }
        return rc;
    }

    static final int EFD_CLOEXEC = 0x80000;

    /** eventfd(0, EFD_CLOEXEC). */
    static int eventfd() throws KvmException {
        return (int) checked("eventfd", "", (arena, state) -> (int) EVENTFD.invokeExact(state, 0, EFD_CLOEXEC));
    }

    /** write(fd, buffer, size) that throws on failure; no allocation unless it fails. */
    static long write(int fd, MemorySegment buffer, String what) throws KvmException {
        MemorySegment state = CALL_STATES.get();
        long rc;
        try {
            rc = (long) WRITE.invokeExact(state, fd, buffer, buffer.byteSize());
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
        if (rc < 0) {
            throw KvmException.of("write(" + what + ")", errno(state), "fd " + fd);
        }
        return rc;
    }

    /** read(fd, buffer, size), retried on EINTR; throws on failure. */
    static long read(int fd, MemorySegment buffer, String what) throws KvmException {
        MemorySegment state = CALL_STATES.get();
        while (true) {
            long rc;
            try {
                rc = (long) READ.invokeExact(state, fd, buffer, buffer.byteSize());
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
            if (rc >= 0) {
                return rc;
            }
            if (errno(state) != EINTR) {
                throw KvmException.of("read(" + what + ")", errno(state), "fd " + fd);
            }
        }
    }

    static long pthreadSelf() {
        try {
            return (long) PTHREAD_SELF.invokeExact();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Returns 0 or an error number (pthread functions do not set errno). */
    static int pthreadKill(long thread, int signal) {
        try {
            return (int) PTHREAD_KILL.invokeExact(thread, signal);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    static int sigrtmin() {
        try {
            return (int) SIGRTMIN.invokeExact();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /**
     * Installs a handler for {@code signal} whose only job is to exist: a
     * caught signal makes KVM_RUN return EINTR, which is how another thread
     * kicks a vCPU out of the guest. The handler is libc's {@code getpid}:
     * async-signal-safe, no side effects, and native, so no Java code ever runs
     * in signal context (an upcall stub there could find its thread in Java
     * state and crash the JVM).
     */
    static void installKickHandler(int signal) throws KvmException {
        MemorySegment handler = LIBC.find("getpid").orElseThrow();
        checked("sigaction(" + signal + ")", "", (arena, state) -> {
            MemorySegment action = arena.allocate(SIGACTION_SIZE, 8);
            action.set(ValueLayout.ADDRESS, 0, handler);
            action.set(ValueLayout.JAVA_INT, SA_FLAGS_OFFSET, 0);
            return (int) SIGACTION.invokeExact(state, signal, action, MemorySegment.NULL);
        });
    }

    static String strerror(int errno) {
        try {
            MemorySegment text = (MemorySegment) STRERROR.invokeExact(errno);
            return text.equals(MemorySegment.NULL) ? "errno " + errno : text.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    static String errnoName(int errno) {
        return switch (errno) {
            case 1 -> "EPERM";
            case 2 -> "ENOENT";
            case 4 -> "EINTR";
            case 5 -> "EIO";
            case 6 -> "ENXIO";
            case 7 -> "E2BIG";
            case 9 -> "EBADF";
            case 11 -> "EAGAIN";
            case 12 -> "ENOMEM";
            case 13 -> "EACCES";
            case 14 -> "EFAULT";
            case 16 -> "EBUSY";
            case 17 -> "EEXIST";
            case 19 -> "ENODEV";
            case 22 -> "EINVAL";
            case 24 -> "EMFILE";
            case 25 -> "ENOTTY";
            case 28 -> "ENOSPC";
            case 38 -> "ENOSYS";
            case 95 -> "EOPNOTSUPP";
            default -> "errno " + errno;
        };
    }
}
