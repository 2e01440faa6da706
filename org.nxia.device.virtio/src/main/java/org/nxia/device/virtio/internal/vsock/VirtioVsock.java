package org.nxia.device.virtio.internal.vsock;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.Pipe;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.nxia.device.virtio.internal.mmio.VirtioBackend;
import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.device.virtio.internal.queue.DescriptorChain;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.VirtqueueException;
import org.nxia.device.virtio.vsock.VsockEndpoint;
import org.nxia.device.virtio.vsock.VsockListener;
import org.nxia.device.virtio.vsock.VsockStream;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.device.SavedStateCodec;

/**
 * virtio-vsock (device ID 19, virtio 1.2 section 5.10), stream sockets only.
 * The host is CID 2. A guest connection to host port P goes to a Java
 * listener on P, else to the Unix socket {@code <uds>_P}; clients of the Unix
 * socket {@code <uds>} open connections to the guest with {@code CONNECT <port>\n}
 * (Firecracker's convention, docs/vsock.md).
 *
 * <p>Threads: the vCPU thread serves notifications (transmitq packets, new
 * receive buffers); one I/O thread per device waits on the host sockets and
 * pushes what they bring into the receive queue, which the guest polls. Both
 * run under the transport's lock, and neither blocks on a host socket: every
 * channel is non-blocking, and guest bytes the host does not take at once wait
 * in the connection's outbox, which the guest's credit bounds.
 *
 * <p>The guest is hostile: a packet with a bad header (short, wrong source
 * CID, wrong type or op, a length its buffers do not hold) is dropped or
 * answered with RST; a connection that sends past its credit is reset; a
 * receive buffer too small for a header is a driver error (DEVICE_NEEDS_RESET).
 */
final class VirtioVsock implements VirtioBackend {

    static final int DEVICE_ID = 19;
    static final long F_STREAM = 1L;
    static final int RX = 0;
    static final int TX = 1;
    static final int EVENT = 2;
    /** struct virtio_vsock_event { le32 id; }: VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (spec 5.10.6.6). */
    static final int EVENT_BYTES = 4;
    static final int EVENT_TRANSPORT_RESET = 0;
    /** The longest a host connection waits for the driver to hand the reset event's buffer back. */
    static final long RESET_HOLD_NANOS = TimeUnit.SECONDS.toNanos(2);
    static final long HOST_CID = 2;

    // struct virtio_vsock_hdr, little-endian, packed.
    static final int HDR = 44;
    static final int SRC_CID = 0;
    static final int DST_CID = 8;
    static final int SRC_PORT = 16;
    static final int DST_PORT = 20;
    static final int LEN = 24;
    static final int TYPE = 28;
    static final int OP = 30;
    static final int FLAGS = 32;
    static final int BUF_ALLOC_OFF = 36;
    static final int FWD_CNT = 40;

    static final int TYPE_STREAM = 1;
    static final int OP_REQUEST = 1;
    static final int OP_RESPONSE = 2;
    static final int OP_RST = 3;
    static final int OP_SHUTDOWN = 4;
    static final int OP_RW = 5;
    static final int OP_CREDIT_UPDATE = 6;
    static final int OP_CREDIT_REQUEST = 7;
    static final int SHUTDOWN_RCV = 1;
    static final int SHUTDOWN_SEND = 2;

    /** Largest payload accepted in one packet (Linux sends at most 64 KiB). */
    static final int MAX_PAYLOAD = 64 * 1024;
    /** The host's receive buffer per connection: the credit it gives the guest. */
    static final int BUF_ALLOC = 256 * 1024;
    /** Host bytes read ahead per connection, waiting for receive buffers. */
    static final int INBOX = 64 * 1024;
    static final int MAX_CONNECTIONS = 32;
    /**
     * Slots the guest cannot take: a guest that opens connections until every slot is full would
     * otherwise lock out the host's own (the control agent's session among them).
     */
    static final int HOST_RESERVED = 4;
    /**
     * Unix-socket clients that have not yet sent their {@code CONNECT} line; a new one
     * past this pushes out the oldest. WHY: silent clients can then hold at most these
     * slots, never the ones the host's own connections need.
     */
    static final int MAX_HANDSHAKES = 8;
    /** Default time a connection has to open: a client's CONNECT line, the guest's answer, a host socket's connect. */
    static final long CONNECT_MILLIS = 30_000;
    private static final int STRAY_RSTS = 64;
    private static final int FIRST_HOST_PORT = 1 << 30;
    static final String SAVED_KIND = "virtio-vsock";

    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    private final long base;
    private final MemorySegment ram;
    private final long cid;
    private final Path uds;
    private final long connectNanos;
    /** The packet being read from the transmitq, and the one being written to the receiveq. */
    private final MemorySegment in = MemorySegment.ofArray(new byte[HDR]);
    private final MemorySegment out = MemorySegment.ofArray(new byte[HDR]);
    private final Connection[] connections = new Connection[MAX_CONNECTIONS];
    /**
     * Released connections whose channels the selector still holds: NIO closes a registered
     * channel's fd only when the I/O thread's next select drops its key. WHY: while these are
     * all taken new connections are refused, so a guest resetting connections faster than
     * that thread runs cannot pile up fds.
     */
    private final Connection[] closing = new Connection[MAX_CONNECTIONS];
    /** RSTs for ports with no connection: (host port << 32) | guest port; the oldest is dropped when full. */
    private final long[] strayRsts = new long[STRAY_RSTS];
    private final Map<Integer, JavaListener> listeners = new HashMap<>();
    private final ByteBuffer oneByte = ByteBuffer.allocate(1);
    private final Runnable onReady = this::serviceReady;

    private Selector selector;
    private ServerSocketChannel server;
    private Thread ioThread;
    private volatile boolean closed;
    private boolean wakeup;
    private VirtioMmioTransport transport;

    private SplitQueue[] queues;
    private boolean failed;
    /** Restored from a snapshot, the driver's connections are gone: the reset event waits for an event buffer. */
    private boolean resetEventPending;
    /**
     * The reset event is in the driver's hands and it has not posted an event buffer since: it may
     * not have dropped the saved moment's connections yet. WHY: Linux drops every connected socket
     * when it handles the event, in a work item that can run after the one taking a REQUEST that
     * came in the same interrupt, so a new host connection is held until then or the guest would
     * drop it silently, never answering. Linux posts the buffer again right after handling the
     * event and is asked to notify then; a driver that does not is waited for {@link #RESET_HOLD_NANOS}.
     */
    private boolean resetUnheard;
    private long resetHeldUntil;
    private int strayHead;
    private int strayCount;
    private int nextHostPort = FIRST_HOST_PORT;
    /** The earliest deadline of a connection still opening, or 0; the I/O thread's select waits no longer. */
    private long nextDeadline;

    private long packetsFromGuest;
    private long packetsToGuest;
    private long bytesToHost;
    private long bytesToGuest;
    private long resets;
    private long dropped;
    private String lastError = "";

    VirtioVsock(GuestMemory memory, long cid, Path uds, Duration connectLimit) {
        this.base = memory.base();
        this.ram = memory.slice(memory.base(), memory.size());
        this.cid = cid;
        this.uds = uds;
        this.connectNanos = connectLimit.toNanos();
    }

    /** Opens the selector and, with {@code uds}, binds the listening socket. */
    void open() throws IOException {
        selector = Selector.open();
        if (uds != null) {
            // A socket file left by an earlier run would make bind fail; anything else there is not ours to delete.
            if (Files.exists(uds) && !Files.isRegularFile(uds) && !Files.isDirectory(uds)) {
                Files.delete(uds);
            }
            server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            server.bind(UnixDomainSocketAddress.of(uds));
            server.configureBlocking(false);
            server.register(selector, SelectionKey.OP_ACCEPT);
        }
    }

    /** Starts the I/O thread, serving under {@code lock}'s lock. */
    void start(VirtioMmioTransport lock) {
        this.transport = lock;
        ioThread = Thread.ofPlatform().daemon().name("nxia-vsock-io").start(this::ioLoop);
    }

    // ------------------------------------------------------------- VirtioBackend

    @Override
    public int deviceId() {
        return DEVICE_ID;
    }

    @Override
    public long features() {
        return F_STREAM;
    }

    @Override
    public int queueCount() {
        return 3;   // rx, tx, event (used only for the transport reset event after a restore)
    }

    @Override
    public long readConfig(int offset, int size) {
        // guest_cid, a le64 at offset 0; the rest of the space reads as zero.
        if (offset < 0 || offset >= 8 || size <= 0 || size > 8) {
            return 0;
        }
        long v = cid >>> (8 * offset);
        return size == 8 ? v : v & ((1L << (8 * size)) - 1);
    }

    @Override
    public void activate(long features, SplitQueue[] active) {
        // Nothing is pushed yet: the driver's first receiveq notify (or host I/O) starts delivery.
        queues = active;
        failed = false;
    }

    @Override
    public void process(int index) {
        if (queues == null || failed) {
            return;
        }
        try {
            if (index == TX) {
                transmit();
            } else if (index == EVENT) {
                resetUnheard = false;   // the driver handled the event before it gave the buffer back
                sendResetEvent();
            }
            pump();
        } catch (VirtqueueException e) {
            failed = true;
            throw e;
        } finally {
            flushWakeup();
        }
    }

    /**
     * Saved: the next host port a connection from the host takes. A restored guest still holds
     * the connections of the saved moment until it has handled the transport reset (and its
     * programs closed them); a new connection from the same host port would meet one of them
     * and be refused.
     */
    @Override
    public byte[] saveState() {
        int[] next = new int[1];
        transport.locked(() -> next[0] = nextHostPort);
        return SavedStateCodec.writer(SAVED_KIND, 1).i32(next[0]).toBytes();
    }

    /** Any port is good; a state saved before the port was (empty) leaves the fresh device's. */
    @Override
    public Runnable checkState(byte[] saved) {
        if (saved.length == 0) {
            return () -> { };
        }
        SavedStateCodec.Reader in = SavedStateCodec.reader(saved, SAVED_KIND, 1);
        int next = in.i32();
        in.end();
        return () -> transport.locked(() -> nextHostPort = next);
    }

    /**
     * Connections are host resources and are never saved: a restored device
     * has none, so it tells the driver with VIRTIO_VSOCK_EVENT_TRANSPORT_RESET,
     * on which the driver drops its connections and rereads the CID (spec
     * 5.10.6.6). Sent now if the driver posted an event buffer, else when it posts one.
     */
    @Override
    public boolean restored() {
        resetEventPending = true;
        sendResetEvent();
        return false;
    }

    private void sendResetEvent() {
        SplitQueue q = queues[EVENT];
        if (!resetEventPending || !q.isActive() || q.isBroken()) {
            return;
        }
        DescriptorChain chain = q.next();
        if (chain == null) {
            return;
        }
        if (chain.writableBytes() < EVENT_BYTES) {
            throw new VirtqueueException("an event queue buffer of " + chain.writableBytes() + " bytes cannot hold a 4-byte event");
        }
        out.set(U32, 0, EVENT_TRANSPORT_RESET);
        scatter(chain, out, 0, EVENT_BYTES);
        q.pushUsed(chain.head(), EVENT_BYTES);
        q.notifyOnNextAvailable();
        resetEventPending = false;
        resetUnheard = true;
        resetHeldUntil = System.nanoTime() + RESET_HOLD_NANOS;
    }

    @Override
    public void reset() {
        queues = null;
        failed = false;
        resetEventPending = false;
        resetUnheard = false;
        strayCount = 0;
        for (int i = 0; i < connections.length; i++) {
            if (connections[i] != null) {
                release(connections[i]);
            }
        }
    }

    /** Saved state: the device's identity and counters; open connections are host resources and are not saved. */
    record State(long guestCid, String uds, int connections, long packetsFromGuest, long packetsToGuest,
                 long bytesToHost, long bytesToGuest, long resets, long dropped, String lastError) {
    }

    @Override
    public Record state() {
        int open = 0;
        for (Connection c : connections) {
            if (c != null) {
                open++;
            }
        }
        return new State(cid, uds == null ? "" : uds.toString(), open, packetsFromGuest, packetsToGuest,
                bytesToHost, bytesToGuest, resets, dropped, lastError);
    }

    // ------------------------------------------------------------- transmitq: guest to host

    private void transmit() {
        SplitQueue q = queues[TX];
        if (q == null || !q.isActive()) {
            return;
        }
        DescriptorChain chain;
        while ((chain = q.next()) != null) {
            int head = chain.head();
            packetsFromGuest++;
            receivePacket(chain);
            q.pushUsed(head, 0);
        }
    }

    private void receivePacket(DescriptorChain chain) {
        long readable = chain.readableBytes();
        if (readable < HDR) {
            drop("a transmitq packet of " + readable + " bytes is shorter than the 44-byte header");
            return;
        }
        gather(chain, 0, in, 0, HDR);
        long srcCid = in.get(U64, SRC_CID);
        long dstCid = in.get(U64, DST_CID);
        int guestPort = in.get(U32, SRC_PORT);
        int hostPort = in.get(U32, DST_PORT);
        long len = Integer.toUnsignedLong(in.get(U32, LEN));
        int type = Short.toUnsignedInt(in.get(U16, TYPE));
        int op = Short.toUnsignedInt(in.get(U16, OP));
        int flags = in.get(U32, FLAGS);
        if (srcCid != cid) {
            // WHY no RST: the guest claims to be someone else; answering would address that someone.
            drop("a packet from CID " + srcCid + " on a device whose guest is CID " + cid);
            return;
        }
        Connection c = find(hostPort, guestPort);
        String bad = dstCid != HOST_CID ? "destination CID " + dstCid + " is not the host (2)"
                : type != TYPE_STREAM ? "socket type " + type + " is not stream (1)"
                : op < OP_REQUEST || op > OP_CREDIT_REQUEST ? "op " + op + " is unknown"
                : len > readable - HDR ? "length " + len + " is more than the " + (readable - HDR) + " payload bytes its buffers hold"
                : len > MAX_PAYLOAD ? "length " + len + " is over " + MAX_PAYLOAD
                : op != OP_RW && len != 0 ? "op " + op + " carries " + len + " payload bytes"
                : null;
        if (bad != null) {
            lastError = "guest port " + Integer.toUnsignedString(guestPort) + ": " + bad;
            dropped++;
            if (c != null) {
                reset(c, lastError);
            } else if (op != OP_RST) {
                strayRst(hostPort, guestPort);
            }
            return;
        }
        if (c != null) {
            c.peerBufAlloc = in.get(U32, BUF_ALLOC_OFF);
            c.peerFwdCnt = in.get(U32, FWD_CNT);
            if (c.credit() > 0) {
                c.creditRequested = false;
            }
        }
        switch (op) {
            case OP_REQUEST -> guestConnects(c, hostPort, guestPort);
            case OP_RESPONSE -> guestAccepts(c, hostPort, guestPort);
            case OP_RST -> {
                if (c != null) {
                    closeAfterDrain(c, false);
                }
            }
            case OP_SHUTDOWN -> {
                if (c == null) {
                    strayRst(hostPort, guestPort);
                } else {
                    guestShutsDown(c, flags);
                }
            }
            case OP_RW -> {
                if (c == null) {
                    strayRst(hostPort, guestPort);
                } else {
                    guestWrites(c, chain, (int) len);
                }
            }
            case OP_CREDIT_REQUEST -> {
                if (c == null) {
                    strayRst(hostPort, guestPort);
                } else {
                    c.pending |= Connection.P_CREDIT_UPDATE;
                }
            }
            default -> {
                // OP_CREDIT_UPDATE: the header already updated the credit
                if (c == null) {
                    strayRst(hostPort, guestPort);
                }
            }
        }
    }

    private void guestConnects(Connection existing, int hostPort, int guestPort) {
        if (existing != null) {
            reset(existing, "a second REQUEST for an open connection");
            return;
        }
        if (freeSlot() < 0 || closingSlot() < 0) {
            lastError = "guest port " + Integer.toUnsignedString(guestPort) + ": refused, " + MAX_CONNECTIONS + " connections are open or closing";
            strayRst(hostPort, guestPort);
            return;
        }
        if (guestConnections() >= MAX_CONNECTIONS - HOST_RESERVED) {
            lastError = "guest port " + Integer.toUnsignedString(guestPort) + ": refused, the guest has "
                    + (MAX_CONNECTIONS - HOST_RESERVED) + " connections open (" + HOST_RESERVED + " slots are the host's)";
            strayRst(hostPort, guestPort);
            return;
        }
        Connection c;
        try {
            JavaListener listener = listeners.get(hostPort);
            if (listener != null) {
                if (listener.accepted.remainingCapacity() == 0) {
                    lastError = "guest port " + Integer.toUnsignedString(guestPort) + ": refused, " + JavaListener.BACKLOG
                            + " connections wait for host port " + Integer.toUnsignedString(hostPort) + "'s listener";
                    strayRst(hostPort, guestPort);
                    return;
                }
                c = Connection.overPipes(Pipe.open(), Pipe.open());
                c.state = Connection.ESTABLISHED;
                c.stream.ports(hostPort, guestPort);
                c.listener = listener;
                listener.accepted.add(c.stream);
            } else if (uds != null) {
                SocketChannel s = SocketChannel.open(StandardProtocolFamily.UNIX);
                try {
                    s.configureBlocking(false);
                    Path target = Path.of(uds + "_" + Integer.toUnsignedString(hostPort));
                    c = Connection.overSocket(s);
                    c.state = s.connect(UnixDomainSocketAddress.of(target)) ? Connection.ESTABLISHED : Connection.CONNECTING;
                } catch (IOException | RuntimeException e) {
                    s.close();
                    throw e;
                }
            } else {
                strayRst(hostPort, guestPort);
                return;
            }
        } catch (IOException | RuntimeException e) {
            // Nothing listens on the host port (or its path is not usable): the guest sees a refused connection.
            strayRst(hostPort, guestPort);
            return;
        }
        c.hostPort = hostPort;
        c.guestPort = guestPort;
        c.guestInitiated = true;
        c.peerBufAlloc = in.get(U32, BUF_ALLOC_OFF);
        c.peerFwdCnt = in.get(U32, FWD_CNT);
        if (c.state == Connection.ESTABLISHED) {
            c.pending |= Connection.P_RESPONSE;
        }
        add(c);
    }

    private void guestAccepts(Connection c, int hostPort, int guestPort) {
        if (c == null || c.state != Connection.REQUESTED) {
            if (c != null) {
                reset(c, "RESPONSE to a connection that was not requested");
            } else {
                strayRst(hostPort, guestPort);
            }
            return;
        }
        c.state = Connection.ESTABLISHED;
        if (c.udsClient) {
            byte[] ok = ("OK " + Integer.toUnsignedString(c.hostPort) + "\n").getBytes(StandardCharsets.US_ASCII);
            try {
                // A fresh socket's send buffer takes these few bytes at once; if not, the client is not usable.
                if (c.socket.write(ByteBuffer.wrap(ok)) != ok.length) {
                    throw new IOException("short write of the OK line");
                }
            } catch (IOException e) {
                reset(c, "host client: " + e.getMessage());
                return;
            }
        }
        if (c.opened != null) {
            c.opened.complete(c.stream);
        }
        interest(c);
    }

    private void guestShutsDown(Connection c, int flags) {
        if (c.state != Connection.ESTABLISHED) {
            reset(c, "SHUTDOWN on a connection that is not established");
            return;
        }
        c.guestShutSend |= (flags & SHUTDOWN_SEND) != 0;
        c.guestShutRecv |= (flags & SHUTDOWN_RCV) != 0;
        if (c.guestShutRecv) {
            c.inbox.clear();
        }
        if (c.guestShutSend && c.guestShutRecv || c.guestShutSend && c.shutdownSent) {
            // Both directions are done: RST ends it for the guest, as Linux does.
            closeAfterDrain(c, true);
            return;
        }
        if (c.guestShutSend && c.outbox.position() == 0) {
            endHostInput(c);
        }
        interest(c);
    }

    private void guestWrites(Connection c, DescriptorChain chain, int len) {
        if (c.state != Connection.ESTABLISHED || c.guestShutSend) {
            reset(c, "data on a connection that is not open for it");
            return;
        }
        // WHY: the guest may have at most BUF_ALLOC bytes unforwarded; more is a guest ignoring its credit.
        if (c.outbox.position() + len > BUF_ALLOC) {
            reset(c, "the guest sent past its credit (" + (c.outbox.position() + len) + " bytes unforwarded, buf_alloc " + BUF_ALLOC + ")");
            return;
        }
        gather(chain, HDR, c.outboxSegment, c.outbox.position(), len);
        c.outbox.position(c.outbox.position() + len);
        c.rxCnt += len;
        flush(c);
    }

    /** Writes the outbox to the host, without blocking; the rest waits for OP_WRITE. */
    private void flush(Connection c) {
        if (c.outbox.position() > 0 && !c.hostOutputShut) {
            c.outbox.flip();
            int n;
            try {
                n = c.writer.write(c.outbox);
            } catch (IOException e) {
                c.outbox.clear();
                reset(c, "host side: " + e.getMessage());
                return;
            }
            c.outbox.compact();
            c.fwdCnt += n;
            bytesToHost += n;
            if (c.state == Connection.ESTABLISHED && Integer.toUnsignedLong(c.fwdCnt - c.advertisedFwdCnt) >= BUF_ALLOC / 2) {
                c.pending |= Connection.P_CREDIT_UPDATE;
            }
        }
        if (c.outbox.position() == 0) {
            if (c.state == Connection.DRAINING) {
                release(c);
                return;
            }
            if (c.guestShutSend) {
                endHostInput(c);
            }
        }
        interest(c);
    }

    /**
     * The guest sends no more and the host has all it sent: the host's reads end.
     * WHY the wake-up: closing a pipe end the selector holds only cancels its key; the
     * fd is closed, and the host's read sees the end, when the I/O thread next selects.
     * Off the I/O thread (a SHUTDOWN on the vCPU thread) that may be never, with no other
     * event on the device, so the host's read would block; woken, the select lets go at once.
     */
    private void endHostInput(Connection c) {
        if (!c.hostOutputShut) {
            c.shutHostOutput();
            wakeup = true;
        }
    }

    // ------------------------------------------------------------- receiveq: host to guest

    /**
     * Fills the guest's receive buffers with control packets and data, as far as
     * buffers and credit go. WHY the notification dance: every receiveq notify is
     * an exit, and the device only needs one when it has something waiting for a
     * buffer; otherwise the I/O thread finds the buffers the guest posts by itself.
     */
    private void pump() {
        if (queues == null || failed || queues[RX] == null) {
            return;
        }
        SplitQueue rx = queues[RX];
        if (!rx.isActive() || rx.isBroken()) {
            return;
        }
        while (fill(rx)) {
            // out of buffers with packets waiting: ask for a notify, unless buffers came meanwhile
            if (!rx.enableNotification()) {
                return;
            }
        }
        rx.disableNotification();
    }

    /** Returns whether packets are still waiting because the guest posted no more receive buffers. */
    private boolean fill(SplitQueue rx) {
        while (strayCount > 0) {
            DescriptorChain chain = rx.next();
            if (chain == null) {
                return true;
            }
            long ports = strayRsts[strayHead];
            strayHead = (strayHead + 1) % STRAY_RSTS;
            strayCount--;
            header((int) (ports >>> 32), (int) ports, OP_RST, 0, 0, 0, 0);
            send(rx, chain, null, 0);
        }
        boolean progress = true;
        while (progress) {
            progress = false;
            for (Connection c : connections) {
                if (c == null || c.state == Connection.DRAINING || c.state == Connection.HANDSHAKE || c.state == Connection.CONNECTING) {
                    continue;
                }
                int op = nextPacket(c);
                if (op == 0) {
                    continue;
                }
                DescriptorChain chain = rx.next();
                if (chain == null) {
                    if (op == OP_CREDIT_REQUEST) {
                        c.creditRequested = false;   // not sent after all
                    }
                    return true;
                }
                progress = true;
                writePacket(rx, chain, c, op);
            }
        }
        return false;
    }

    /** The op of the next packet {@code c} has for the guest, or 0. */
    private int nextPacket(Connection c) {
        if ((c.pending & Connection.P_REQUEST) != 0) {
            return resetUnheard ? 0 : OP_REQUEST;
        }
        if (c.state != Connection.ESTABLISHED) {
            return 0;
        }
        if ((c.pending & Connection.P_RESPONSE) != 0) {
            return OP_RESPONSE;
        }
        if ((c.pending & Connection.P_CREDIT_UPDATE) != 0) {
            return OP_CREDIT_UPDATE;
        }
        if (c.inbox.position() > 0 && !c.guestShutRecv) {
            if (c.credit() > 0) {
                return OP_RW;
            }
            if (!c.creditRequested) {
                c.creditRequested = true;
                return OP_CREDIT_REQUEST;
            }
            return 0;
        }
        if (c.hostEof && !c.shutdownSent && c.inbox.position() == 0) {
            return OP_SHUTDOWN;
        }
        return 0;
    }

    private void writePacket(SplitQueue rx, DescriptorChain chain, Connection c, int op) {
        int len = 0;
        int flags = 0;
        switch (op) {
            case OP_REQUEST -> c.pending &= ~Connection.P_REQUEST;
            case OP_RESPONSE -> c.pending &= ~Connection.P_RESPONSE;
            case OP_CREDIT_UPDATE -> c.pending &= ~Connection.P_CREDIT_UPDATE;
            case OP_SHUTDOWN -> {
                c.shutdownSent = true;
                flags = SHUTDOWN_SEND;
            }
            case OP_RW -> {
                long room = chain.writableBytes() - HDR;
                if (room == 0) {
                    // WHY: a header-only buffer cannot carry data; answering it with an empty OP_RW would repeat
                    // for every such buffer the guest posts, forever. The connection ends instead, in this buffer.
                    lastError = "port " + Integer.toUnsignedString(c.guestPort) + ": a 44-byte receive buffer has no room for its data";
                    resets++;
                    header(c.hostPort, c.guestPort, OP_RST, 0, 0, 0, 0);
                    send(rx, chain, c, 0);
                    closeAfterDrain(c, false);
                    return;
                }
                len = (int) Math.min(Math.min(room, c.credit()), Math.min(c.inbox.position(), MAX_PAYLOAD));
            }
            default -> {
                // OP_CREDIT_REQUEST: the header says it all
            }
        }
        c.advertisedFwdCnt = c.fwdCnt;
        header(c.hostPort, c.guestPort, op, len, flags, BUF_ALLOC, c.fwdCnt);
        send(rx, chain, c, len);
        if (len > 0) {
            c.txCnt += len;
            bytesToGuest += len;
            c.inbox.flip();
            c.inbox.position(len);
            c.inbox.compact();
            interest(c);
        }
        if (op == OP_SHUTDOWN && c.guestShutSend) {
            closeAfterDrain(c, true);
        }
    }

    private void header(int hostPort, int guestPort, int op, int len, int flags, int bufAlloc, int fwdCnt) {
        out.set(U64, SRC_CID, HOST_CID);
        out.set(U64, DST_CID, cid);
        out.set(U32, SRC_PORT, hostPort);
        out.set(U32, DST_PORT, guestPort);
        out.set(U32, LEN, len);
        out.set(U16, TYPE, (short) TYPE_STREAM);
        out.set(U16, OP, (short) op);
        out.set(U32, FLAGS, flags);
        out.set(U32, BUF_ALLOC_OFF, bufAlloc);
        out.set(U32, FWD_CNT, fwdCnt);
    }

    /** Writes the header in {@code out} and {@code len} bytes of {@code c}'s inbox into the chain, and returns it. */
    private void send(SplitQueue rx, DescriptorChain chain, Connection c, int len) {
        if (chain.writableBytes() < HDR) {
            // WHY a driver error: every receive buffer must hold a header (spec 5.10.6.3); a smaller one can never be used.
            failed = true;
            throw new VirtqueueException("a receiveq buffer of " + chain.writableBytes() + " bytes cannot hold the 44-byte header");
        }
        int head = chain.head();
        scatter(chain, out, 0, HDR);
        if (len > 0) {
            scatter(chain, c.inboxSegment, HDR, len);
        }
        rx.pushUsed(head, HDR + len);
        packetsToGuest++;
    }

    // ------------------------------------------------------------- host side

    private void ioLoop() {
        while (!closed) {
            try {
                long millis = nextDeadline == 0 ? 0 : TimeUnit.NANOSECONDS.toMillis(nextDeadline - System.nanoTime()) + 1;
                if (nextDeadline != 0 && millis <= 0) {
                    selector.selectNow();
                } else {
                    selector.select(millis);   // 0: until something is ready
                }
            } catch (IOException | ClosedSelectorException e) {
                return;
            }
            if (closed) {
                return;
            }
            transport.locked(onReady);
        }
    }

    /** On the I/O thread, under the lock: every ready channel, then the receive queue. */
    private void serviceReady() {
        if (closed) {
            return;
        }
        for (SelectionKey key : selector.selectedKeys()) {
            if (!key.isValid()) {
                continue;
            }
            if (key.attachment() == null) {
                acceptClients();
            } else {
                ready((Connection) key.attachment(), key);
            }
        }
        selector.selectedKeys().clear();
        expire();
        try {
            pump();
        } catch (VirtqueueException e) {
            failed = true;
            throw e;
        }
        wakeup = false;   // this is the I/O thread: the next select sees every change
    }

    private void acceptClients() {
        SocketChannel s;
        try {
            while ((s = server.accept()) != null) {
                Connection oldest = oldestHandshake();
                if (oldest != null && (handshakes() == MAX_HANDSHAKES || freeSlot() < 0)) {
                    lastError = "a client of " + uds + " was pushed out by a newer one before it sent 'CONNECT <port>'";
                    release(oldest);
                }
                if (freeSlot() < 0 || closingSlot() < 0) {
                    s.close();
                    continue;
                }
                s.configureBlocking(false);
                Connection c = Connection.overSocket(s);
                c.state = Connection.HANDSHAKE;
                c.udsClient = true;
                add(c);
            }
        } catch (IOException e) {
            lastError = "accepting on " + uds + ": " + e.getMessage();
        }
    }

    private int handshakes() {
        int n = 0;
        for (Connection c : connections) {
            if (c != null && c.state == Connection.HANDSHAKE) {
                n++;
            }
        }
        return n;
    }

    private Connection oldestHandshake() {
        Connection oldest = null;
        for (Connection c : connections) {
            if (c != null && c.state == Connection.HANDSHAKE && (oldest == null || c.deadline - oldest.deadline < 0)) {
                oldest = c;
            }
        }
        return oldest;
    }

    private static boolean opening(Connection c) {
        return c.state == Connection.HANDSHAKE || c.state == Connection.CONNECTING || c.state == Connection.REQUESTED;
    }

    /** Ends the connections past their deadline to open, and notes the next deadline for the I/O thread's select. */
    private void expire() {
        long now = System.nanoTime();
        nextDeadline = 0;
        if (resetUnheard) {
            if (now - resetHeldUntil >= 0) {
                resetUnheard = false;   // the driver never said it handled the reset: connections go anyway
            } else {
                nextDeadline = resetHeldUntil;
            }
        }
        for (Connection c : connections) {
            if (c == null || !opening(c)) {
                continue;
            }
            if (now - c.deadline >= 0) {
                String why = c.state == Connection.HANDSHAKE
                        ? "a client of " + uds + " sent no 'CONNECT <port>' line"
                        : "no answer to the connection to guest port " + Integer.toUnsignedString(c.guestPort);
                lastError = why + " within " + TimeUnit.NANOSECONDS.toMillis(connectNanos) + " ms";
                if (c.state == Connection.HANDSHAKE) {
                    release(c);
                } else {
                    reset(c, null);
                }
            } else if (nextDeadline == 0 || c.deadline - nextDeadline < 0) {
                nextDeadline = c.deadline;
            }
        }
    }

    private void ready(Connection c, SelectionKey key) {
        if (find(c) < 0) {
            return;
        }
        if (key.isConnectable()) {
            try {
                if (!c.socket.finishConnect()) {
                    return;
                }
                c.state = Connection.ESTABLISHED;
                c.pending |= Connection.P_RESPONSE;
            } catch (IOException e) {
                reset(c, null);
                return;
            }
        }
        if (key.isValid() && key.isWritable()) {
            flush(c);
            if (find(c) < 0) {
                return;
            }
        }
        if (key.isValid() && key.isReadable()) {
            if (c.state == Connection.HANDSHAKE) {
                readHandshake(c);
            } else {
                readHost(c);
            }
        }
        if (find(c) >= 0) {
            interest(c);
        }
    }

    private void readHost(Connection c) {
        if (c.state != Connection.ESTABLISHED || c.hostEof || !c.inbox.hasRemaining()) {
            return;
        }
        try {
            if (c.reader.read(c.inbox) < 0) {
                c.hostEof = true;
            }
        } catch (IOException e) {
            reset(c, "host side: " + e.getMessage());
        }
    }

    /** Reads {@code CONNECT <port>\n} a byte at a time, so no stream byte after it is consumed. */
    private void readHandshake(Connection c) {
        try {
            while (true) {
                oneByte.clear();
                int n = c.socket.read(oneByte);
                if (n < 0) {
                    release(c);
                    return;
                }
                if (n == 0) {
                    return;
                }
                byte b = oneByte.get(0);
                if (b == '\n') {
                    break;
                }
                if (c.lineLength == c.line.length) {
                    release(c);
                    return;
                }
                c.line[c.lineLength++] = b;
            }
        } catch (IOException e) {
            release(c);
            return;
        }
        String line = new String(c.line, 0, c.lineLength, StandardCharsets.US_ASCII).strip();
        int port;
        try {
            if (!line.startsWith("CONNECT ")) {
                throw new NumberFormatException();
            }
            port = Integer.parseUnsignedInt(line.substring(8).strip());
        } catch (NumberFormatException e) {
            lastError = "a client of " + uds + " sent '" + line + "', not 'CONNECT <port>'";
            release(c);
            return;
        }
        c.guestPort = port;
        c.hostPort = allocateHostPort();
        c.state = Connection.REQUESTED;
        c.deadline = System.nanoTime() + connectNanos;
        c.pending |= Connection.P_REQUEST;
    }

    private int allocateHostPort() {
        while (true) {
            int port = nextHostPort;
            nextHostPort = nextHostPort == -1 ? FIRST_HOST_PORT : nextHostPort + 1;
            boolean used = false;
            for (Connection c : connections) {
                used |= c != null && c.hostPort == port;
            }
            if (!used) {
                return port;
            }
        }
    }

    /** Sets the channels' interest from the connection's state; a change made off the I/O thread wakes it. */
    private void interest(Connection c) {
        boolean read = c.state == Connection.HANDSHAKE
                || c.state == Connection.ESTABLISHED && !c.hostEof && !c.guestShutRecv && c.inbox.hasRemaining();
        boolean write = c.outbox.position() > 0 && !c.hostOutputShut;
        if (c.socket != null) {
            setOps(c.readKey, (read ? SelectionKey.OP_READ : 0) | (write ? SelectionKey.OP_WRITE : 0)
                    | (c.state == Connection.CONNECTING ? SelectionKey.OP_CONNECT : 0));
        } else {
            setOps(c.readKey, read ? SelectionKey.OP_READ : 0);
            setOps(c.writeKey, write ? SelectionKey.OP_WRITE : 0);
        }
    }

    private void setOps(SelectionKey key, int ops) {
        if (key != null && key.isValid() && key.interestOps() != ops) {
            key.interestOps(ops);
            wakeup = true;
        }
    }

    private void flushWakeup() {
        if (wakeup && Thread.currentThread() != ioThread && selector != null) {
            selector.wakeup();
        }
        wakeup = false;
    }

    // ------------------------------------------------------------- connections

    private void add(Connection c) {
        int slot = freeSlot();
        connections[slot] = c;
        c.deadline = System.nanoTime() + connectNanos;
        try {
            c.readKey = c.readChannel().register(selector, 0, c);
            c.writeKey = c.socket != null ? c.readKey : c.writeChannel().register(selector, 0, c);
        } catch (IOException e) {
            reset(c, "cannot watch the host side: " + e.getMessage());
            return;
        }
        interest(c);
        wakeup = true;
    }

    private int guestConnections() {
        int n = 0;
        for (Connection c : connections) {
            if (c != null && c.guestInitiated) {
                n++;
            }
        }
        return n;
    }

    private int freeSlot() {
        for (int i = 0; i < connections.length; i++) {
            if (connections[i] == null) {
                return i;
            }
        }
        return -1;
    }

    /** The live connection between these ports, or null. */
    private Connection find(int hostPort, int guestPort) {
        for (Connection c : connections) {
            if (c != null && c.state != Connection.DRAINING && c.state != Connection.HANDSHAKE
                    && c.hostPort == hostPort && c.guestPort == guestPort) {
                return c;
            }
        }
        return null;
    }

    private int find(Connection c) {
        for (int i = 0; i < connections.length; i++) {
            if (connections[i] == c) {
                return i;
            }
        }
        return -1;
    }

    /** Ends {@code c} with an RST to the guest; what the guest had sent is still delivered to the host. */
    private void reset(Connection c, String why) {
        if (why != null) {
            lastError = "port " + Integer.toUnsignedString(c.guestPort) + ": " + why;
        }
        closeAfterDrain(c, c.state != Connection.HANDSHAKE && c.state != Connection.DRAINING);
    }

    private void closeAfterDrain(Connection c, boolean rst) {
        if (rst) {
            resets++;
            strayRst(c.hostPort, c.guestPort);
        }
        c.pending = 0;
        c.inbox.clear();
        // A stream still in its listener's queue is closed here: nobody would ever read what a drain wrote.
        if (!c.unclaim() && c.outbox.position() > 0 && !c.hostOutputShut && c.writer.isOpen()) {
            c.state = Connection.DRAINING;
            interest(c);
            return;
        }
        release(c);
    }

    private void release(Connection c) {
        int slot = find(c);
        if (slot >= 0) {
            connections[slot] = null;
        }
        c.closeHost();
        int free = closingSlot();
        if (free >= 0 && c.registered()) {
            closing[free] = c;
        }
        wakeup = true;
    }

    /** A free entry of {@link #closing}, after dropping those the selector has let go of; -1 when all are taken. */
    private int closingSlot() {
        int free = -1;
        for (int i = 0; i < closing.length; i++) {
            if (closing[i] != null && !closing[i].registered()) {
                closing[i] = null;
            }
            if (closing[i] == null && free < 0) {
                free = i;
            }
        }
        return free;
    }

    private void strayRst(int hostPort, int guestPort) {
        if (strayCount == STRAY_RSTS) {
            strayHead = (strayHead + 1) % STRAY_RSTS;
            strayCount--;
        }
        strayRsts[(strayHead + strayCount) % STRAY_RSTS] = ((long) hostPort << 32) | Integer.toUnsignedLong(guestPort);
        strayCount++;
    }

    private void drop(String why) {
        dropped++;
        lastError = why;
    }

    // ------------------------------------------------------------- Java API

    VsockStream connect(int guestPort, Duration timeout) throws IOException {
        Connection c = Connection.overPipes(Pipe.open(), Pipe.open());
        CompletableFuture<VsockStream> opened = new CompletableFuture<>();
        c.opened = opened;
        IOException[] refused = new IOException[1];
        transport.locked(() -> {
            if (freeSlot() < 0 || closingSlot() < 0) {
                refused[0] = new IOException("vsock: " + MAX_CONNECTIONS + " connections are open or closing");
                return;
            }
            c.guestPort = guestPort;
            c.hostPort = allocateHostPort();
            c.stream.ports(c.hostPort, guestPort);
            c.state = Connection.REQUESTED;
            c.pending = Connection.P_REQUEST;
            add(c);
            pump();
            flushWakeup();
        });
        if (refused[0] != null) {
            c.closeHost();
            c.stream.close();
            throw refused[0];
        }
        try {
            return opened.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            c.stream.close();
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        } catch (TimeoutException e) {
            transport.locked(() -> {
                if (find(c) >= 0) {
                    reset(c, "the guest did not answer a connection to port " + Integer.toUnsignedString(guestPort));
                }
                flushWakeup();
            });
            c.stream.close();
            throw new ConnectException("vsock: the guest did not accept port " + Integer.toUnsignedString(guestPort) + " within " + timeout);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            c.stream.close();
            throw new java.io.InterruptedIOException("vsock connect interrupted");
        }
    }

    VsockListener listen(int hostPort) {
        JavaListener listener = new JavaListener(this, hostPort);
        boolean[] taken = new boolean[1];
        transport.locked(() -> taken[0] = listeners.putIfAbsent(hostPort, listener) != null);
        if (taken[0]) {
            throw new IllegalStateException("vsock host port " + Integer.toUnsignedString(hostPort) + " already has a listener");
        }
        return listener;
    }

    /** Removes the listener; the guest connections still in its queue are reset and their pipes closed. */
    void unlisten(JavaListener listener) {
        transport.locked(() -> {
            listeners.remove(listener.port(), listener);
            for (Connection c : connections) {
                if (c != null && c.listener == listener && listener.accepted.contains(c.stream)) {
                    reset(c, "host port " + Integer.toUnsignedString(listener.port()) + "'s listener closed before accepting it");
                }
            }
            flushWakeup();
        });
    }

    long guestCid() {
        return cid;
    }

    /** The VM is going away: stop the I/O thread, close every host channel and the listening socket. */
    void close() {
        closed = true;
        if (transport != null) {
            transport.locked(() -> {
                for (Connection c : connections) {
                    if (c != null) {
                        release(c);
                    }
                }
            });
        }
        try {
            if (selector != null) {
                selector.close();
            }
            if (server != null) {
                server.close();
                Files.deleteIfExists(uds);
            }
        } catch (IOException ignored) {
            // closing: the socket file may already be gone
        }
        if (ioThread != null) {
            try {
                ioThread.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    // ------------------------------------------------------------- guest memory

    /** Copies {@code n} readable bytes of the chain, from byte {@code offset} of its readable part, to {@code dst}. */
    private void gather(DescriptorChain chain, long offset, MemorySegment dst, long dstOffset, long n) {
        for (int i = 0; i < chain.readableCount() && n > 0; i++) {
            long length = chain.length(i);
            if (offset >= length) {
                offset -= length;
                continue;
            }
            long k = Math.min(length - offset, n);
            MemorySegment.copy(ram, chain.address(i) - base + offset, dst, dstOffset, k);
            dstOffset += k;
            n -= k;
            offset = 0;
        }
    }

    /** Copies {@code n} bytes of {@code src} into the chain's writable part from byte {@code offset} (the header ends at 44). */
    private void scatter(DescriptorChain chain, MemorySegment src, long offset, long n) {
        long srcOffset = 0;
        for (int i = chain.readableCount(); i < chain.count() && n > 0; i++) {
            long length = chain.length(i);
            if (offset >= length) {
                offset -= length;
                continue;
            }
            long k = Math.min(length - offset, n);
            MemorySegment.copy(src, srcOffset, ram, chain.address(i) - base + offset, k);
            srcOffset += k;
            n -= k;
            offset = 0;
        }
    }
}
