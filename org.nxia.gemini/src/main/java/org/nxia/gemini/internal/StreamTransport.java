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
 */
final class StreamTransport extends QueuedTransport {
    /** The guest kit's default frame buffers (half a 64 KiB ring, as on the ring transport). */
    static final int MAX_FRAME = 32 * 1024 - 4;
    private static final int QUEUED = 64;

    private final ByteChannel stream;
    private final ByteBuffer length = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
    private final Thread reader;
    private volatile String gone;
    private volatile String corrupt;
    StreamTransport(ByteChannel stream, String name) {
        super(new LinkedBlockingQueue<>(QUEUED));
        this.stream = stream;
        this.reader = Thread.ofPlatform().daemon().name("gemini-stream-" + name).start(this::readLoop);
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

    @Override
    public boolean send(byte[] frame, int len) {
        if (gone != null || !stream.isOpen()) {
            return false;
        }
        synchronized (length) {
            try {
                length.clear();
                length.putInt(0, len);
                while (length.hasRemaining()) {
                    stream.write(length);
                }
                ByteBuffer body = ByteBuffer.wrap(frame, 0, len);
                while (body.hasRemaining()) {
                    stream.write(body);
                }
                return true;
            } catch (IOException e) {
                gone = "the stream failed: " + e.getMessage();
                return false;
            }
        }
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

    @Override
    public void close() {
        try {
            stream.close();
        } catch (IOException e) {
            // closing is best effort: the reader ends either way
        }
        reader.interrupt();
    }
}
