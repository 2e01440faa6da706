package org.nxia.device.virtio.internal.vhost;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;

import org.nxia.device.virtio.internal.sys.Sys;

/**
 * The front-end (VMM) side of a vhost-user connection: the device's virtqueues
 * are served by another process (a back-end such as virtiofsd) that maps guest
 * RAM from the fds sent with {@code SET_MEM_TABLE}, takes kicks on one eventfd
 * per queue and signals used buffers on another. The back-end is a peer, so
 * untrusted: every reply is checked (its request, flags and size) and every wait
 * for one has a deadline; a bad or late reply fails the call and the connection.
 * One thread at a time (the device's).
 */
public final class VhostUserFrontend implements AutoCloseable {

    // requests (vhost-user spec, "Front-end message types")
    static final int GET_FEATURES = 1, SET_FEATURES = 2, SET_OWNER = 3, SET_MEM_TABLE = 5, SET_VRING_NUM = 8,
            SET_VRING_ADDR = 9, SET_VRING_BASE = 10, GET_VRING_BASE = 11, SET_VRING_KICK = 12, SET_VRING_CALL = 13,
            GET_PROTOCOL_FEATURES = 15, SET_PROTOCOL_FEATURES = 16, SET_VRING_ENABLE = 18;
    static final int VERSION = 0x1, FLAG_REPLY = 0x4, FLAG_NEED_REPLY = 0x8;
    static final int HEADER = 12;
    /** VHOST_USER_F_PROTOCOL_FEATURES, in the feature bits. */
    public static final long F_PROTOCOL_FEATURES = 1L << 30;
    /** VHOST_USER_PROTOCOL_F_REPLY_ACK: SET_* requests are answered when asked. */
    public static final long PROTOCOL_F_REPLY_ACK = 1L << 3;
    public static final int MAX_REGIONS = Sys.MAX_FDS;
    /** The most queues a front-end addresses (a u8 in the kick and call payloads). */
    public static final int MAX_QUEUES = 256;

    /**
     * One region of guest RAM the back-end maps.
     *
     * @param guestAddress where the guest sees it
     * @param size         its length in bytes
     * @param userAddress  where this process has it mapped (vring addresses are given in these)
     * @param fd           a file descriptor of it, which the back-end maps
     * @param fdOffset     where in the fd it starts
     */
    public record Region(long guestAddress, long size, long userAddress, int fd, long fdOffset) {
        public Region {
            if (size <= 0 || fd < 0 || fdOffset < 0 || guestAddress < 0 || guestAddress > Long.MAX_VALUE - size) {
                throw new IllegalArgumentException("vhost-user region at 0x%x of %d bytes, fd %d at %d".formatted(guestAddress, size, fd, fdOffset));
            }
        }
    }

    private final int socket;
    private final Duration replyTimeout;
    private boolean replyAck;
    private boolean broken;

    private VhostUserFrontend(int socket, Duration replyTimeout) {
        this.socket = socket;
        this.replyTimeout = replyTimeout;
    }

    /**
     * Connects to the back-end's socket, trying again while it is not there yet (a back-end just
     * started makes it) until {@code timeout}; each reply is awaited at most {@code replyTimeout}.
     */
    public static VhostUserFrontend connect(Path socket, Duration timeout, Duration replyTimeout) throws IOException, InterruptedException {
        return connect(socket, timeout, replyTimeout, () -> true);
    }

    /**
     * As {@link #connect(Path, Duration, Duration)}, giving up at once when {@code backEndAlive}
     * says the back-end's process has gone: its socket will never appear.
     */
    public static VhostUserFrontend connect(Path socket, Duration timeout, Duration replyTimeout, BooleanSupplier backEndAlive)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (;;) {
            try {
                return new VhostUserFrontend(Sys.connectUnix(socket.toString()), replyTimeout);
            } catch (IOException e) {
                if (!backEndAlive.getAsBoolean()) {
                    throw new IOException("vhost-user back-end exited before its socket " + socket + " took a connection: "
                            + e.getMessage(), e);
                }
                if (System.nanoTime() > deadline) {
                    throw new IOException("vhost-user back-end at " + socket + " not reachable within " + timeout.toMillis() + " ms: "
                            + e.getMessage(), e);
                }
                Thread.sleep(20);
            }
        }
    }

    public long getFeatures() throws IOException {
        return request(GET_FEATURES, new byte[0]);
    }

    public void setFeatures(long features) throws IOException {
        // no REPLY_ACK here: it is negotiated after this (as QEMU does, features come first)
        send(SET_FEATURES, u64(features), false);
    }

    public long getProtocolFeatures() throws IOException {
        return request(GET_PROTOCOL_FEATURES, new byte[0]);
    }

    /** Sets the protocol features; those this front-end uses are kept from {@code features}. */
    public void setProtocolFeatures(long features) throws IOException {
        long used = features & PROTOCOL_F_REPLY_ACK;
        send(SET_PROTOCOL_FEATURES, u64(used), false);
        replyAck = (used & PROTOCOL_F_REPLY_ACK) != 0;
    }

    public void setOwner() throws IOException {
        command(SET_OWNER, new byte[0]);
    }

    public void setMemTable(List<Region> regions) throws IOException {
        if (regions.isEmpty() || regions.size() > MAX_REGIONS) {
            throw new IllegalArgumentException(regions.size() + " memory regions: 1.." + MAX_REGIONS);
        }
        ByteBuffer b = le(8 + 32 * regions.size());
        b.putInt(regions.size()).putInt(0);
        int[] fds = new int[regions.size()];
        for (int i = 0; i < regions.size(); i++) {
            Region r = regions.get(i);
            b.putLong(r.guestAddress()).putLong(r.size()).putLong(r.userAddress()).putLong(r.fdOffset());
            fds[i] = r.fd();
        }
        command(SET_MEM_TABLE, b.array(), fds);
    }

    public void setVringNum(int queue, int size) throws IOException {
        command(SET_VRING_NUM, vringState(queue, size));
    }

    public void setVringBase(int queue, int base) throws IOException {
        command(SET_VRING_BASE, vringState(queue, base & 0xffff));
    }

    /** Stops the queue; the index of the next available entry the back-end would have taken. */
    public int getVringBase(int queue) throws IOException {
        return (int) (request(GET_VRING_BASE, vringState(queue, 0)) >>> 32) & 0xffff;
    }

    /** The rings' addresses, in this process's mapping of guest RAM. */
    public void setVringAddr(int queue, long descriptors, long used, long available) throws IOException {
        ByteBuffer b = le(40);
        b.putInt(queue(queue)).putInt(0).putLong(descriptors).putLong(used).putLong(available).putLong(0);
        command(SET_VRING_ADDR, b.array());
    }

    public void setVringKick(int queue, int eventFd) throws IOException {
        command(SET_VRING_KICK, u64(queue(queue)), eventFd);
    }

    public void setVringCall(int queue, int eventFd) throws IOException {
        command(SET_VRING_CALL, u64(queue(queue)), eventFd);
    }

    public void setVringEnable(int queue, boolean enabled) throws IOException {
        command(SET_VRING_ENABLE, vringState(queue, enabled ? 1 : 0));
    }

    @Override
    public void close() {
        broken = true;
        Sys.close(socket);
    }

    // ---- messages ----------------------------------------------------------

    private static int queue(int queue) {
        if (queue < 0 || queue >= MAX_QUEUES) {
            throw new IllegalArgumentException("queue " + queue + ": 0.." + (MAX_QUEUES - 1));
        }
        return queue;
    }

    private static byte[] vringState(int queue, int num) {
        return le(8).putInt(queue(queue)).putInt(num).array();
    }

    private static byte[] u64(long value) {
        return le(8).putLong(value).array();
    }

    private static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A SET_* request; with REPLY_ACK negotiated, the back-end's answer is awaited and a failure thrown. */
    private void command(int request, byte[] payload, int... fds) throws IOException {
        send(request, payload, replyAck, fds);
        if (replyAck) {
            long status = reply(request, 8);
            if (status != 0) {
                throw new IOException("vhost-user back-end refused request " + request + " (status " + status + ")");
            }
        }
    }

    /** A request answered with a u64 or a vring state (index, then number), as a little-endian u64. */
    private long request(int request, byte[] payload) throws IOException {
        send(request, payload, false);
        return reply(request, 8);
    }

    private void send(int request, byte[] payload, boolean needReply, int... fds) throws IOException {
        if (broken) {
            throw new IOException("the vhost-user connection is closed or broke earlier");
        }
        ByteBuffer m = le(HEADER + payload.length);
        m.putInt(request).putInt(VERSION | (needReply ? FLAG_NEED_REPLY : 0)).putInt(payload.length).put(payload);
        try {
            Sys.send(socket, m.array(), fds);
        } catch (IOException e) {
            broken = true;
            throw new IOException("vhost-user back-end: sending request " + request + ": " + e.getMessage(), e);
        }
    }

    /** Reads the reply to {@code request}, a payload of exactly {@code size} bytes, as a little-endian u64. */
    private long reply(int request, int size) throws IOException {
        byte[] header = readFully(HEADER, request);
        ByteBuffer h = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
        int got = h.getInt(), flags = h.getInt(), length = h.getInt();
        if (got != request || (flags & FLAG_REPLY) == 0 || (flags & 0x3) != VERSION || length != size) {
            broken = true;
            throw new IOException("vhost-user back-end answered request %d with request %d, flags 0x%x, %d bytes (wanted a reply of %d)"
                    .formatted(request, got, flags, length, size));
        }
        return ByteBuffer.wrap(readFully(size, request)).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    private byte[] readFully(int n, int request) throws IOException {
        byte[] b = new byte[n];
        long deadline = System.nanoTime() + replyTimeout.toNanos();
        for (int at = 0; at < n; ) {
            long left = (deadline - System.nanoTime()) / 1_000_000;
            if (left <= 0 || !Sys.awaitReadable(socket, left)) {
                broken = true;
                throw new IOException("vhost-user back-end did not answer request " + request + " within " + replyTimeout.toMillis() + " ms");
            }
            int r;
            try {
                r = Sys.read(socket, b, at, n - at);
            } catch (IOException e) {   // ECONNRESET: it went away with our request unread
                broken = true;
                throw new IOException("vhost-user back-end: reading the answer to request " + request + ": " + e.getMessage(), e);
            }
            if (r == 0) {
                broken = true;
                throw new IOException("vhost-user back-end closed the connection (answering request " + request + ")");
            }
            at += r;
        }
        return b;
    }
}
