package org.nxia.device.virtio.internal.net;

import java.nio.ByteBuffer;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Frames the guest sent, on their way to the backend's writer thread: at most
 * {@code capacity} buffers exist, made once and reused, so the TX path (a vCPU
 * exit or the notify thread) allocates nothing once warm and a backend that
 * stops reading holds at most {@code capacity} frames. Each buffer holds the
 * stream protocol's 4-byte big-endian length and then the Ethernet frame.
 */
final class TxFrames {

    /** The largest buffer: the length word and the largest frame. */
    static final int BUFFER_BYTES = 4 + VirtioNet.MAX_FRAME;

    private final int capacity;
    private final ArrayBlockingQueue<ByteBuffer> free;
    private final ArrayBlockingQueue<ByteBuffer> queued;
    private int made;

    TxFrames(int capacity) {
        this.capacity = capacity;
        this.free = new ArrayBlockingQueue<>(capacity);
        this.queued = new ArrayBlockingQueue<>(capacity);
    }

    /** A cleared buffer, or null when all {@code capacity} are queued or being written. Called under the transport's lock. */
    ByteBuffer acquire() {
        ByteBuffer b = free.poll();
        if (b == null && made < capacity) {
            made++;
            b = ByteBuffer.allocateDirect(BUFFER_BYTES);
        }
        return b == null ? null : b.clear();
    }

    /** Queues a filled buffer (flipped) for the writer. */
    void submit(ByteBuffer filled) {
        if (!queued.offer(filled)) {
            throw new IllegalStateException("more frames submitted than buffers exist");   // a device bug
        }
    }

    /** Gives back a buffer that will not be sent. */
    void discard(ByteBuffer b) {
        free.offer(b);
    }

    /** The writer: the next frame, or null after {@code millis} with none. */
    ByteBuffer take(long millis) throws InterruptedException {
        return queued.poll(millis, TimeUnit.MILLISECONDS);
    }

    /** The writer: a frame was written (or dropped); its buffer is free again. */
    void release(ByteBuffer b) {
        free.offer(b);
    }

    /** Drops every queued frame (the backend went away). */
    void clear() {
        ByteBuffer b;
        while ((b = queued.poll()) != null) {
            free.offer(b);
        }
    }

    int queued() {
        return queued.size();
    }
}
