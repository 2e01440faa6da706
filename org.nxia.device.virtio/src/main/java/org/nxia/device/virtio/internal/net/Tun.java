package org.nxia.device.virtio.internal.net;

import static java.lang.foreign.ValueLayout.ADDRESS;
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
 * A TAP interface through {@code /dev/net/tun} (Linux, CAP_NET_ADMIN or an
 * interface made for this user): every libc call this bundle makes, with
 * errno turned into an {@link IOException} that names the call. One frame per
 * {@link #read}/{@link #write}, no packet-info header ({@code IFF_NO_PI}),
 * non-blocking; {@link #poll} waits with a deadline.
 */
@SuppressWarnings("restricted")
final class Tun implements AutoCloseable {

    static final short POLLIN = 1;
    static final short POLLOUT = 4;
    private static final int O_RDWR = 2;
    private static final int O_NONBLOCK = 0x800;
    private static final int O_CLOEXEC = 0x80000;
    /** _IOW('T', 202, int). */
    private static final long TUNSETIFF = 0x4004_54caL;
    private static final short IFF_TAP = 0x0002;
    private static final short IFF_NO_PI = 0x1000;
    private static final int EAGAIN = 11;
    private static final int EINTR = 4;
    /** struct ifreq: the name (IFNAMSIZ 16), then a union whose first member is ifr_flags. */
    private static final int IFREQ_BYTES = 40;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle OPEN = handle("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), false);
    private static final MethodHandle IOCTL = handle("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), true);
    private static final MethodHandle READ = handle("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), false);
    private static final MethodHandle WRITE = handle("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), false);
    private static final MethodHandle POLL = handle("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), false);
    private static final MethodHandle CLOSE = handle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT), false);

    private static MethodHandle handle(String name, FunctionDescriptor descriptor, boolean variadicThird) {
        MemorySegment symbol = LINKER.defaultLookup().find(name).orElseThrow(() -> new IllegalStateException("libc has no " + name));
        return variadicThird
                ? LINKER.downcallHandle(symbol, descriptor, Linker.Option.captureCallState("errno"), Linker.Option.firstVariadicArg(2))
                : LINKER.downcallHandle(symbol, descriptor, Linker.Option.captureCallState("errno"));
    }

    private final Arena arena = Arena.ofShared();
    private final MemorySegment errno = arena.allocate(CAPTURE);
    private final MemorySegment pollfd = arena.allocate(8, 4);
    private final String name;
    private int fd = -1;

    /** Attaches to TAP interface {@code name} (made if it does not exist and the caller may). */
    Tun(String name) throws IOException {
        this.name = name;
        byte[] n = name.getBytes(StandardCharsets.US_ASCII);
        if (n.length == 0 || n.length > 15) {
            close();
            throw new IOException("TAP interface name '" + name + "' is not 1..15 characters");
        }
        try {
            fd = (int) OPEN.invokeExact(errno, arena.allocateFrom("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0) {
                throw failure("open(/dev/net/tun)");
            }
            MemorySegment ifreq = arena.allocate(IFREQ_BYTES);
            MemorySegment.copy(n, 0, ifreq, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, n.length);
            ifreq.set(JAVA_SHORT, 16, (short) (IFF_TAP | IFF_NO_PI));
            if ((int) IOCTL.invokeExact(errno, fd, TUNSETIFF, ifreq) < 0) {
                throw failure("ioctl(TUNSETIFF, " + name + ")");
            }
        } catch (IOException e) {
            close();
            throw e;
        } catch (Throwable t) {
            close();
            throw new IllegalStateException(t);
        }
    }

    String name() {
        return name;
    }

    /** Waits up to {@code millis} for {@code events}; returns the events that came (0 on timeout). */
    int poll(short events, int millis) throws IOException {
        pollfd.set(JAVA_INT, 0, fd);
        pollfd.set(JAVA_SHORT, 4, events);
        pollfd.set(JAVA_SHORT, 6, (short) 0);
        try {
            int n = (int) POLL.invokeExact(errno, pollfd, 1L, millis);
            if (n < 0) {
                if (errnoValue() == EINTR) {
                    return 0;
                }
                throw failure("poll(" + name + ")");
            }
            return n == 0 ? 0 : pollfd.get(JAVA_SHORT, 6);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** One frame into {@code to}; its length, or 0 when none waits. */
    int read(MemorySegment to) throws IOException {
        try {
            long n = (long) READ.invokeExact(errno, fd, to, to.byteSize());
            if (n < 0) {
                if (errnoValue() == EAGAIN || errnoValue() == EINTR) {
                    return 0;
                }
                throw failure("read(" + name + ")");
            }
            return (int) n;
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** One frame from {@code from}; false when the interface cannot take it now. */
    boolean write(MemorySegment from) throws IOException {
        try {
            long n = (long) WRITE.invokeExact(errno, fd, from, from.byteSize());
            if (n < 0) {
                if (errnoValue() == EAGAIN || errnoValue() == EINTR) {
                    return false;
                }
                throw failure("write(" + name + ", " + from.byteSize() + " bytes)");
            }
            return true;
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private int errnoValue() {
        return (int) ERRNO.get(errno, 0L);
    }

    private IOException failure(String call) {
        int e = errnoValue();
        return new IOException(call + " failed: errno " + e + (e == 1 ? " (EPERM: needs CAP_NET_ADMIN, or an interface made for this user)" : ""));
    }

    @Override
    public void close() {
        if (fd >= 0) {
            try {
                int ignored = (int) CLOSE.invokeExact(errno, fd);
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
            fd = -1;
        }
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
