package org.nxia.device.virtio.internal.vsock;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.Pipe;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SelectableChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.util.concurrent.CompletableFuture;

import org.nxia.device.virtio.vsock.VsockStream;

/**
 * One stream connection between a guest port and a host port, with its host
 * side: a Unix socket, or two pipes whose other ends a {@link PipeStream} holds.
 * Guarded by the transport's lock.
 */
final class Connection {

    /** A Unix-socket client that has not yet sent its {@code CONNECT <port>} line. */
    static final int HANDSHAKE = 0;
    /** The guest asked; the host's Unix socket is still connecting. */
    static final int CONNECTING = 1;
    /** The host asked (REQUEST sent or queued); waiting for the guest's RESPONSE. */
    static final int REQUESTED = 2;
    static final int ESTABLISHED = 3;
    /** Gone for the guest; only the bytes it sent before are still being written to the host. */
    static final int DRAINING = 4;

    // Control packets waiting for a receive buffer, in the order they go out.
    static final int P_REQUEST = 1;
    static final int P_RESPONSE = 2;
    static final int P_CREDIT_UPDATE = 4;

    int state;
    /** System.nanoTime() by which a connection still opening (HANDSHAKE, CONNECTING, REQUESTED) must be open. */
    long deadline;
    int hostPort;
    int guestPort;
    int pending;

    final SocketChannel socket;
    final ReadableByteChannel reader;
    final WritableByteChannel writer;
    SelectionKey readKey;
    SelectionKey writeKey;

    /** Host to guest bytes read from the host, not yet in a receive buffer. */
    final ByteBuffer inbox;
    final MemorySegment inboxSegment;
    /** Guest to host bytes not yet taken by the host; at most BUF_ALLOC, which the guest's credit guarantees. */
    final ByteBuffer outbox;
    final MemorySegment outboxSegment;

    // Credit (virtio 1.2, 5.10.6.3), counts mod 2^32: the guest's buffer and what it has consumed...
    int peerBufAlloc;
    int peerFwdCnt;
    /** ... against the payload bytes sent to the guest. */
    int txCnt;
    /** Payload bytes from the guest, and those handed to the host (our fwd_cnt). */
    int rxCnt;
    int fwdCnt;
    /** The fwd_cnt the guest last saw in a header. */
    int advertisedFwdCnt;
    boolean creditRequested;

    boolean hostEof;
    boolean shutdownSent;
    boolean guestShutSend;
    boolean guestShutRecv;
    boolean hostOutputShut;

    /** The guest asked for it (REQUEST from the guest): counts against the guest's share of slots. */
    boolean guestInitiated;
    /** Host-initiated over the Unix socket: the client waits for {@code OK <port>}. */
    boolean udsClient;
    final byte[] line = new byte[32];
    int lineLength;

    /** Host-initiated through the Java API: completed on RESPONSE, failed on RST. */
    CompletableFuture<VsockStream> opened;
    /** The Java API's end of the pipes. */
    PipeStream stream;
    /** The Java listener whose accept queue holds {@link #stream} until the host takes it. */
    JavaListener listener;

    private Connection(SocketChannel socket, ReadableByteChannel reader, WritableByteChannel writer) {
        this.socket = socket;
        this.reader = reader;
        this.writer = writer;
        byte[] in = new byte[VirtioVsock.INBOX];
        byte[] out = new byte[VirtioVsock.BUF_ALLOC];
        this.inbox = ByteBuffer.wrap(in);
        this.inboxSegment = MemorySegment.ofArray(in);
        this.outbox = ByteBuffer.wrap(out);
        this.outboxSegment = MemorySegment.ofArray(out);
    }

    static Connection overSocket(SocketChannel socket) {
        return new Connection(socket, socket, socket);
    }

    /** A connection whose host side is the Java API: {@code toGuest} carries what the host writes, {@code fromGuest} what it reads. */
    static Connection overPipes(Pipe toGuest, Pipe fromGuest) throws IOException {
        toGuest.source().configureBlocking(false);
        fromGuest.sink().configureBlocking(false);
        Connection c = new Connection(null, toGuest.source(), fromGuest.sink());
        c.stream = new PipeStream(toGuest.sink(), fromGuest.source());
        return c;
    }

    SelectableChannel readChannel() {
        return socket != null ? socket : (SelectableChannel) reader;
    }

    SelectableChannel writeChannel() {
        return socket != null ? socket : (SelectableChannel) writer;
    }

    /** Whether a selector still holds one of its channels (whose fd then stays open until it lets go). */
    boolean registered() {
        return readKey != null && readChannel().isRegistered() || writeKey != null && writeChannel().isRegistered();
    }

    /** Bytes the guest can still take: its buffer minus what is in flight, clamped to what it could mean. */
    long credit() {
        long inFlight = Integer.toUnsignedLong(txCnt - peerFwdCnt);
        long alloc = Integer.toUnsignedLong(peerBufAlloc);
        return inFlight >= alloc ? 0 : alloc - inFlight;
    }

    /**
     * Takes the stream back from its listener's accept queue and closes it, when
     * the host has not accepted it yet (nobody else ever would); returns whether it did.
     */
    boolean unclaim() {
        if (listener == null || !listener.accepted.remove(stream)) {
            return false;
        }
        closeQuietly(stream);
        return true;
    }

    /** Closes the host side; the Java API's ends see end-of-stream or a broken pipe, an unaccepted stream is closed. */
    void closeHost() {
        unclaim();
        closeQuietly(reader);
        closeQuietly(writer);
        if (opened != null && !opened.isDone()) {
            opened.completeExceptionally(new java.net.ConnectException("vsock: the guest refused port " + guestPort));
        }
    }

    void shutHostOutput() {
        if (hostOutputShut) {
            return;
        }
        hostOutputShut = true;
        try {
            if (socket != null) {
                socket.shutdownOutput();
            } else {
                writer.close();
            }
        } catch (IOException ignored) {
            // the host side is gone; its read end already sees the end
        }
    }

    private static void closeQuietly(java.nio.channels.Channel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing: nothing left to save
        }
    }
}
