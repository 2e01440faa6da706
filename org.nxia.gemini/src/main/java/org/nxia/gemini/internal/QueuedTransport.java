package org.nxia.gemini.internal;

import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.Transport;

/**
 * The receiving half of a transport whose frames arrive whole on a queue
 * (filled by another thread): polling, waiting, and the one frame a wait took
 * off the queue before the receiver asked for it.
 */
abstract class QueuedTransport implements Transport {

    protected final LinkedBlockingQueue<byte[]> in;
    /** A frame {@link #await} took off the queue; the receiving thread alone touches it. */
    private byte[] held;

    QueuedTransport(LinkedBlockingQueue<byte[]> in) {
        this.in = in;
    }

    /** Why the incoming frames can no longer be trusted, or null. */
    protected String brokenFraming() {
        return null;
    }

    /** Whether frames are still waiting to be received. */
    protected final boolean framesWaiting() {
        return held != null || !in.isEmpty();
    }

    @Override
    public int receive(byte[] buffer) {
        byte[] f = held != null ? held : in.poll();
        held = null;
        if (f == null) {
            String broken = brokenFraming();
            if (broken != null) {
                throw new GeminiException(ErrorCode.BAD_FRAME, "the peer broke the stream's framing: " + broken);
            }
            return -1;
        }
        System.arraycopy(f, 0, buffer, 0, f.length);
        return f.length;
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
}
