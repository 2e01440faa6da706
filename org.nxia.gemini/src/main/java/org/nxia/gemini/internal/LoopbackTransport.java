package org.nxia.gemini.internal;

import java.util.Arrays;
import java.util.concurrent.LinkedBlockingQueue;


/** An in-process transport: two queues. {@link #pair} gives both ends. */
final class LoopbackTransport extends QueuedTransport {
    static final int MAX_FRAME = 1 << 21;

    private final LinkedBlockingQueue<byte[]> out;
    private volatile boolean closed;
    private volatile String gone;
    private LoopbackTransport(LinkedBlockingQueue<byte[]> in, LinkedBlockingQueue<byte[]> out) {
        super(in);
        this.out = out;
    }

    static LoopbackTransport[] pair() {
        LinkedBlockingQueue<byte[]> a = new LinkedBlockingQueue<>(256);
        LinkedBlockingQueue<byte[]> b = new LinkedBlockingQueue<>(256);
        LoopbackTransport x = new LoopbackTransport(a, b);
        LoopbackTransport y = new LoopbackTransport(b, a);
        return new LoopbackTransport[] {x, y};
    }

    /** Makes this end see its peer as dead, as when a VM stops. */
    void peerDied(String why) {
        gone = why;
    }

    /** Puts raw bytes on the wire, for malformed-frame tests. */
    void inject(byte[] frame) {
        out.add(frame.clone());
    }

    @Override
    public boolean send(byte[] frame, int length) {
        return !closed && out.offer(Arrays.copyOf(frame, length));
    }

    @Override
    public int maxFrame() {
        return MAX_FRAME;
    }

    @Override
    public String peerGone() {
        return gone;
    }

    @Override
    public void close() {
        closed = true;
    }
}
