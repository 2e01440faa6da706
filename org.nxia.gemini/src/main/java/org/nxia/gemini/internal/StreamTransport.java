package org.nxia.gemini.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ByteChannel;
import java.util.concurrent.LinkedBlockingQueue;


/**
 * Gemini over a byte stream (docs/gemini-protocol.md, "Transports"): a
 * virtio-vsock connection, the portable path. Each frame travels as a u32
 * little-endian length and its bytes. A reader thread takes whole frames off
 * the stream, so the session's poller never blocks in a read; a length over
 * {@link #MAX_FRAME} means the peer broke the framing, which ends the session.
 * A writer thread puts frames on it, so no sender blocks in a write: a peer
 * that stops reading fills the {@value #QUEUED}-frame queue, and then
 * {@link #send} says "no room" and the session's send deadline applies.
 */
final class StreamTransport extends QueuedTransport {
    /** The guest kit's default frame buffers (half a 64 KiB ring, as on the ring transport). */
    static final int MAX_FRAME = 32 * 1024 - 4;
    static final int QUEUED = 64;
    /** How long {@link #close} lets the writer put out what was sent before it (the CLOSE frame), at most. */
    static final long CLOSE_GRACE_MILLIS = 100;
    /** Queued by close: the writer stops after the frames before it. */
    private static final byte[] END = new byte[0];

    private final ByteChannel stream;
    private final LinkedBlockingQueue<byte[]> out = new LinkedBlockingQueue<>(QUEUED);
    private final Thread reader;
    private final Thread writer;
    private volatile boolean closed;
    private volatile String gone;
    private volatile String corrupt;

    StreamTransport(ByteChannel stream, String name) {
        super(new LinkedBlockingQueue<>(QUEUED));
        this.stream = stream;
        this.reader = Thread.ofPlatform().daemon().name("gemini-stream-" + name).start(this::readLoop);
        this.writer = Thread.ofPlatform().daemon().name("gemini-stream-" + name + "-writer").start(this::writeLoop);
    }

    private void writeLoop() {
        try {
            for (byte[] f = out.take(); f != END; f = out.take()) {
                ByteBuffer b = ByteBuffer.wrap(f);
                while (b.hasRemaining()) {
                    stream.write(b); // blocks while the peer does not read; close() cuts it
                }
            }
        } catch (IOException e) {
            gone = "the stream failed: " + e.getMessage();
        } catch (InterruptedException e) {
            gone = "the transport was closed";
        }
    }

    private void readLoop() {
        ByteBuffer header = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        try {
            while (true) {
                header.clear();
                if (!readFully(header)) {
                    gone = "the peer closed the stream";
                    return;
                }
                int n = header.getInt(0);
                if (n < 0 || n > MAX_FRAME) {
                    corrupt = "a frame length of " + Integer.toUnsignedString(n) + " bytes (at most " + MAX_FRAME + ")";
                    return;
                }
                ByteBuffer frame = ByteBuffer.allocate(n);
                if (!readFully(frame)) {
                    gone = "the peer closed the stream in the middle of a frame";
                    return;
                }
                in.put(frame.array()); // a full queue holds the reader: the stream's flow control reaches the peer
            }
        } catch (IOException e) {
            gone = "the stream failed: " + e.getMessage();
        } catch (InterruptedException e) {
            gone = "the transport was closed";
        }
    }

    private boolean readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (stream.read(b) < 0) {
                return false;
            }
        }
        return true;
    }

    /** Queues the frame for the writer; false when the queue is full (the peer is not reading) or the stream is done. */
    @Override
    public boolean send(byte[] frame, int len) {
        if (closed || gone != null || !stream.isOpen()) {
            return false;
        }
        byte[] f = new byte[4 + len];
        ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).putInt(len).put(frame, 0, len);
        return out.offer(f);
    }

    @Override
    protected String brokenFraming() {
        return corrupt;
    }

    @Override
    public int maxFrame() {
        return MAX_FRAME;
    }

    @Override
    public String peerGone() {
        return framesWaiting() ? null : gone; // frames already read are served first
    }

    /** Lets the writer flush for up to {@value #CLOSE_GRACE_MILLIS} ms, then cuts the stream: never waits longer on the peer. */
    @Override
    public void close() {
        closed = true;
        try {
            if (out.offer(END)) {
                writer.join(CLOSE_GRACE_MILLIS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            stream.close(); // wakes a reader or writer blocked on the stream
        } catch (IOException e) {
            // closing is best effort: the threads end either way
        }
        reader.interrupt();
        writer.interrupt();
    }
}
