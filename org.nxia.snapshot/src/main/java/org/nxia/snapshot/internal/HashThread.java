package org.nxia.snapshot.internal;

import java.io.InterruptedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.concurrent.ArrayBlockingQueue;

/**
 * SHA-256 on a second thread, in order, at most two pieces behind the caller: a save hashes
 * guest RAM while it writes it, instead of one after the other (each is about as fast as the
 * other on one core). Pieces are views of memory the caller does not change until they are
 * hashed ({@link #awaitHashed}, {@link #digest()}).
 */
public final class HashThread implements AutoCloseable {

    private static final ByteBuffer END = ByteBuffer.allocate(0);

    private final ArrayBlockingQueue<ByteBuffer> pieces = new ArrayBlockingQueue<>(2);
    private final MessageDigest sha = Format.sha256();
    private final Thread thread = Thread.ofPlatform().daemon().name("snapshot-sha256").unstarted(this::run);
    private volatile RuntimeException failure;
    /** Pieces hashed so far; guarded by {@code this}. */
    private long hashed;

    /** Whether the hashing thread may read {@code segment} (not if it is confined to the caller's thread). */
    public boolean canRead(MemorySegment segment) {
        return segment.isAccessibleBy(thread);
    }

    public boolean canRead(RamView ram) {
        return ram.readableBy(thread);
    }

    public HashThread start() {
        thread.start();
        return this;
    }

    private void run() {
        try {
            for (ByteBuffer piece = pieces.take(); piece != END; piece = pieces.take()) {
                sha.update(piece);
                synchronized (this) {
                    hashed++;
                    notifyAll();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            failure = e;
            pieces.clear();
            synchronized (this) {
                notifyAll();
            }
        }
    }

    /** Queues a piece; waits while two are queued. */
    public void update(ByteBuffer piece) throws InterruptedIOException {
        try {
            while (!pieces.offer(piece, 100, java.util.concurrent.TimeUnit.MILLISECONDS)) {
                checkFailure();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while hashing guest RAM");
        }
        checkFailure();
    }

    /** Waits until the first {@code count} pieces are hashed, so that the memory of those may be reused. */
    public void awaitHashed(long count) throws InterruptedIOException {
        try {
            synchronized (this) {
                while (hashed < count) {
                    checkFailure();
                    wait(100);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while hashing guest RAM");
        }
    }

    private void checkFailure() {
        if (failure != null) {
            throw new IllegalStateException("hashing guest RAM failed", failure);
        }
    }

    /** Waits for the queued pieces and returns their SHA-256. */
    public byte[] digest() throws InterruptedIOException {
        update(END);
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while hashing guest RAM");
        }
        checkFailure();
        return sha.digest();
    }

    /** Stops the thread if {@link #digest()} was not reached (a failed save). */
    @Override
    public void close() {
        if (thread.isAlive()) {
            thread.interrupt();
        }
    }
}
