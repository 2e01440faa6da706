package org.nxia.gemini.api;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Moves Gemini frames (docs/gemini-protocol.md) between two sides. One
 * thread receives; senders are serialized by the session.
 */
@ConsumerType
public interface Transport {

    /** Queues one frame; {@code false} if there is no room now. */
    boolean send(byte[] frame, int length);

    /**
     * Copies the next frame into {@code buffer}.
     *
     * @return its length, or -1 if none is waiting
     * @throws GeminiException {@link ErrorCode#BAD_FRAME} if the transport is corrupt (the session closes)
     */
    int receive(byte[] buffer);

    /** The largest frame either side may send. */
    int maxFrame();

    /**
     * Waits up to {@code nanos} for the peer to send, after the receiver
     * found nothing; the peer's next send wakes it.
     */
    void await(long nanos);

    /** Why the peer can no longer take part (its VM stopped), or null. */
    String peerGone();

    /** Releases the transport; nothing is sent or received afterwards. */
    void close();
}
