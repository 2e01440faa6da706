package org.nxia.device.virtio.internal.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

/**
 * The libc calls of the vhost-user front-end (Linux, x86-64): a Unix stream
 * socket that carries file descriptors ({@code SCM_RIGHTS}), eventfds, poll
 * with a deadline, and memfds for guest-shared memory in tests. errno becomes
 * an {@link IOException} naming the call.
 */
@SuppressWarnings("restricted")
public final class Sys {

    public static final short POLLIN = 1;
    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int EFD_CLOEXEC = 0x80000;
    private static final int MFD_CLOEXEC = 1;
    private static final int PROT_READ_WRITE = 3;
    private static final int MAP_SHARED = 1;
    private static final int EINTR = 4;
    /** sockaddr_un: sun_family, then sun_path[108]. */
    private static final int SUN_PATH = 108;
    /** The most fds one message carries (vhost-user: 8 memory regions). */
    public static final int MAX_FDS = 8;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle SOCKET = handle("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle CONNECT = handle("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG = handle("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle READ = handle("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = handle("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle POLL = handle("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle CLOSE = handle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle EVENTFD = handle("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle MEMFD_CREATE = handle("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle FTRUNCATE = handle("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MMAP = handle("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MUNMAP = handle("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));

    private static MethodHandle handle(String name, FunctionDescriptor descriptor) {
        MemorySegment symbol = LINKER.defaultLookup().find(name).orElseThrow(() -> new IllegalStateException("libc has no " + name));
        return LINKER.downcallHandle(symbol, descriptor, Linker.Option.captureCallState("errno"));
    }

    private Sys() {
    }

    private static IOException failure(String call, MemorySegment errno) {
        int e = (int) ERRNO.get(errno, 0L);
        return new IOException(call + ": errno " + e + (e == 2 ? " (no such file)" : e == 111 ? " (connection refused)" : e == 32 ? " (broken pipe)" : ""));
    }

    /** A connected Unix stream socket (close-on-exec). */
    public static int connectUnix(String path) throws IOException {
        byte[] p = path.getBytes(StandardCharsets.UTF_8);
        if (p.length == 0 || p.length >= SUN_PATH) {
            throw new IOException("socket path '" + path + "' is not 1.." + (SUN_PATH - 1) + " bytes");
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment errno = a.allocate(CAPTURE);
            int fd = (int) SOCKET.invokeExact(errno, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                throw failure("socket(AF_UNIX)", errno);
            }
            MemorySegment addr = a.allocate(2 + SUN_PATH);
            addr.set(JAVA_SHORT, 0, (short) AF_UNIX);
            MemorySegment.copy(p, 0, addr, JAVA_BYTE, 2, p.length);
            if ((int) CONNECT.invokeExact(errno, fd, addr, 2 + p.length + 1) < 0) {
                IOException e = failure("connect(" + path + ")", errno);
                close(fd);
                throw e;
            }
            return fd;
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Sends all of {@code bytes} on {@code fd}, with {@code fds} (at most {@link #MAX_FDS}) attached to the first part. */
    public static void send(int fd, byte[] bytes, int... fds) throws IOException {
        if (fds.length > MAX_FDS) {
            throw new IllegalArgumentException(fds.length + " fds in one message, over " + MAX_FDS);
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment errno = a.allocate(CAPTURE);
            MemorySegment data = a.allocateFrom(JAVA_BYTE, bytes);
            MemorySegment iov = a.allocate(16, 8);
            MemorySegment msg = a.allocate(56, 8);
            long controlLength = fds.length == 0 ? 0 : 16 + ((fds.length * 4L + 7) & ~7L);
            MemorySegment control = fds.length == 0 ? MemorySegment.NULL : a.allocate(controlLength, 8);
            if (fds.length > 0) {
                control.set(JAVA_LONG, 0, 16 + fds.length * 4L);    // CMSG_LEN
                control.set(JAVA_INT, 8, SOL_SOCKET);
                control.set(JAVA_INT, 12, SCM_RIGHTS);
                for (int i = 0; i < fds.length; i++) {
                    control.set(JAVA_INT, 16 + 4L * i, fds[i]);
                }
            }
            long sent = 0;
            while (sent < bytes.length) {
                iov.set(ADDRESS, 0, data.asSlice(sent));
                iov.set(JAVA_LONG, 8, bytes.length - sent);
                msg.set(ADDRESS, 16, iov);
                msg.set(JAVA_LONG, 24, 1);
                msg.set(ADDRESS, 32, sent == 0 ? control : MemorySegment.NULL);   // the fds go once, with the first byte
                msg.set(JAVA_LONG, 40, sent == 0 ? controlLength : 0);
                long n = (long) SENDMSG.invokeExact(errno, fd, msg, MSG_NOSIGNAL);
                if (n < 0) {
                    if ((int) ERRNO.get(errno, 0L) == EINTR) {
                        continue;
                    }
                    throw failure("sendmsg", errno);
                }
                sent += n;
            }
        } catch (IOException | IllegalArgumentException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Reads at most {@code length} bytes into {@code into} at {@code offset}; 0 at end of stream. */
    public static int read(int fd, byte[] into, int offset, int length) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment errno = a.allocate(CAPTURE);
            MemorySegment buf = a.allocate(Math.max(1, length));
            for (;;) {
                long n = (long) READ.invokeExact(errno, fd, buf, (long) length);
                if (n >= 0) {
                    MemorySegment.copy(buf, JAVA_BYTE, 0, into, offset, (int) n);
                    return (int) n;
                }
                if ((int) ERRNO.get(errno, 0L) != EINTR) {
                    throw failure("read", errno);
                }
            }
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Waits until {@code fd} is readable (or hung up) or {@code millis} pass: whether it is. */
    public static boolean awaitReadable(int fd, long millis) throws IOException {
        long deadline = System.nanoTime() + millis * 1_000_000;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment errno = a.allocate(CAPTURE);
            MemorySegment pfd = a.allocate(8, 4);
            for (;;) {
                pfd.set(JAVA_INT, 0, fd);
                pfd.set(JAVA_SHORT, 4, POLLIN);
                pfd.set(JAVA_SHORT, 6, (short) 0);
                int left = (int) Math.max(0, Math.min(Integer.MAX_VALUE, (deadline - System.nanoTime()) / 1_000_000));
                int n = (int) POLL.invokeExact(errno, pfd, 1L, left);
                if (n > 0) {
                    return true;
                }
                if (n == 0) {
                    return false;
                }
                if ((int) ERRNO.get(errno, 0L) != EINTR) {
                    throw failure("poll", errno);
                }
            }
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** A new eventfd (counter 0, blocking, close-on-exec). */
    private static int eventfd() throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment errno = a.allocate(CAPTURE);
            int fd = (int) EVENTFD.invokeExact(errno, 0, EFD_CLOEXEC);
            if (fd < 0) {
                throw failure("eventfd", errno);
            }
            return fd;
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** A memfd of {@code size} bytes (close-on-exec). */
    public static int memfd(String name, long size) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment errno = a.allocate(CAPTURE);
            int fd = (int) MEMFD_CREATE.invokeExact(errno, a.allocateFrom(name), MFD_CLOEXEC);
            if (fd < 0) {
                throw failure("memfd_create", errno);
            }
            if ((int) FTRUNCATE.invokeExact(errno, fd, size) < 0) {
                IOException e = failure("ftruncate(memfd)", errno);
                close(fd);
                throw e;
            }
            return fd;
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Maps {@code size} bytes of {@code fd} shared, read-write; unmapped when {@code arena} closes. */
    public static MemorySegment mapShared(int fd, long size, Arena arena) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment errno = a.allocate(CAPTURE);
            MemorySegment p = (MemorySegment) MMAP.invokeExact(errno, MemorySegment.NULL, size, PROT_READ_WRITE, MAP_SHARED, fd, 0L);
            if (p.address() == -1L) {
                throw failure("mmap", errno);
            }
            return p.reinterpret(size, arena, s -> unmap(s.address(), size));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static void unmap(long address, long size) {
        try (Arena a = Arena.ofConfined()) {
            int r = (int) MUNMAP.invokeExact(a.allocate(CAPTURE), MemorySegment.ofAddress(address), size);
        } catch (Throwable t) {
            // nothing to do about it at unmap time
        }
    }

    /** Closes {@code fd}; -1 is ignored. */
    public static void close(int fd) {
        if (fd < 0) {
            return;
        }
        try (Arena a = Arena.ofConfined()) {
            int r = (int) CLOSE.invokeExact(a.allocate(CAPTURE), fd);
        } catch (Throwable t) {
            // close errors leave nothing to do
        }
    }

    /**
     * An eventfd with its call buffers made once, so that signalling a kick (on a vCPU's exit)
     * and waiting for a call allocate nothing. One thread at a time per direction.
     */
    public static final class EventFd implements AutoCloseable {

        private final int fd;
        private final Arena arena = Arena.ofShared();
        private final MemorySegment errno = arena.allocate(CAPTURE);
        private final MemorySegment one = arena.allocate(JAVA_LONG);
        private final MemorySegment count = arena.allocate(JAVA_LONG);
        private final MemorySegment pollfd = arena.allocate(8, 4);

        public EventFd() throws IOException {
            try {
                fd = eventfd();
            } catch (IOException e) {
                arena.close();
                throw e;
            }
            one.set(JAVA_LONG, 0, 1L);
        }

        public int fd() {
            return fd;
        }

        /** Adds one to the counter; false if the write failed (the fd is gone). */
        public boolean signal() {
            try {
                return (long) WRITE.invokeExact(errno, fd, one, 8L) == 8;
            } catch (Throwable t) {
                return false;
            }
        }

        /**
         * Waits up to {@code millis} for the counter to be non-zero and takes it.
         *
         * @return the counter taken, 0 when the wait timed out or was interrupted by a signal
         */
        public long await(int millis) throws IOException {
            try {
                pollfd.set(JAVA_INT, 0, fd);
                pollfd.set(JAVA_SHORT, 4, POLLIN);
                pollfd.set(JAVA_SHORT, 6, (short) 0);
                int n = (int) POLL.invokeExact(errno, pollfd, 1L, millis);
                if (n < 0 && (int) ERRNO.get(errno, 0L) != EINTR) {
                    throw failure("poll(eventfd)", errno);
                }
                if (n <= 0) {
                    return 0;
                }
                if ((long) READ.invokeExact(errno, fd, count, 8L) != 8) {
                    throw failure("read(eventfd)", errno);
                }
                return count.get(JAVA_LONG, 0);
            } catch (IOException e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }

        @Override
        public void close() {
            Sys.close(fd);
            arena.close();
        }
    }
}
