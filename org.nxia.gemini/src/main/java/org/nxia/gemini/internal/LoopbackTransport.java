package org.nxia.gemini.internal;

import java.util.Arrays;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.nxia.gemini.api.Transport;

/** An in-process transport: two queues. {@link #pair} gives both ends. */
final class LoopbackTransport implements Transport {
    static final int MAX_FRAME = 1 << 21;

    private final LinkedBlockingQueue<byte[]> in;
    private final LinkedBlockingQueue<byte[]> out;
    private volatile boolean closed;
    private volatile String gone;
    /** A frame {@link #await} took off the queue; the receiving thread alone touches it. */
    private byte[] held;

    private LoopbackTransport(LinkedBlockingQueue<byte[]> in, LinkedBlockingQueue<byte[]> out) {
        this.in = in;
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
    public int receive(byte[] buffer) {
        byte[] f = held != null ? held : in.poll();
        held = null;
        if (f == null) {
            return -1;
        }
        System.arraycopy(f, 0, buffer, 0, f.length);
        return f.length;
    }

    @Override
    public int maxFrame() {
        return MAX_FRAME;
    }

    @Override
    public void await(long nanos) {
        try {
            if (held == null) {
                held = in.poll(nanos, TimeUnit.NANOSECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
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
