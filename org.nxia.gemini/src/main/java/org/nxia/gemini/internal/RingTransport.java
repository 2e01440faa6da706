package org.nxia.gemini.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.Transport;
import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.Ring;

/**
 * Gemini over a pair of Portal SPSC rings in shared memory
 * (docs/gemini-protocol.md, "Transports"): this side consumes {@code rx} and
 * produces {@code tx}; {@code ctl} holds the sleeping flag the peer reads
 * before ringing the doorbell.
 *
 * <p>The memory may be a guest's RAM, which is released when the VM is
 * destroyed: every access holds the lock and checks {@link #kill}, so once
 * {@code kill} returns nothing touches the memory again.
 */
final class RingTransport implements Transport {
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();

    private final Ring rx;
    private final Ring tx;
    private final MemorySegment ctl;
    private final Supplier<String> peerState;
    private final int maxFrame;
    private final Runnable doorbell;
    private byte[] lastBuffer;
    private MemorySegment lastSegment;
    private boolean dead;
    private volatile String killed;

    /**
     * @param peerState why the peer cannot take part any more (its VM stopped), or null while it can
     */
    RingTransport(Ring rx, Ring tx, MemorySegment ctl, Supplier<String> peerState) {
        this(rx, tx, ctl, peerState, null);
    }

    /**
     * @param doorbell wakes a peer that can sleep (a System VM process: its region's interrupt),
     *                 run after a send while the peer's {@code guest_sleeping} word (control block
     *                 offset 4) is set; null for a peer that polls (a micro-VM)
     */
    RingTransport(Ring rx, Ring tx, MemorySegment ctl, Supplier<String> peerState, Runnable doorbell) {
        this.doorbell = doorbell;
        this.rx = rx;
        this.tx = tx;
        this.ctl = ctl;
        this.peerState = peerState;
        // A record never wraps: one of more than half the capacity can find neither the tail nor the
        // head free even in an empty ring, so a frame is at most half a ring (docs/gemini-protocol.md).
        // The guest sizes the rings; the host's receive buffer is one frame, so a cap keeps a guest
        // with huge rings from making the host hold that much heap (the guest learns it from WELCOME).
        this.maxFrame = (int) Math.min(Math.min(this.rx.capacity(), this.tx.capacity()) / 2 - 4, MAX_FRAME);
    }

    /** Control block offset of the peer's sleeping flag (its own to write), read only when there is a doorbell. */
    static final long GUEST_SLEEPING = 4;

    /** The largest frame on any ring pair: a 64 MiB argument by copy and its call header fit. */
    static final int MAX_FRAME = (64 << 20) + (64 << 10);

    /** Lets go of the memory for good; waits for an access in progress. */
    synchronized void kill(String why) {
        dead = true;
        killed = why;
    }

    @Override
    public synchronized boolean send(byte[] frame, int length) {
        if (dead) {
            return false;
        }
        try {
            if (!tx.offer(MemorySegment.ofArray(frame).asSlice(0, length))) {
                return false;
            }
            if (doorbell != null) {
                VarHandle.fullFence(); // pairs with the peer's fence between setting guest_sleeping and its last look at the ring
                if ((int) INT.getVolatile(ctl, GUEST_SLEEPING) != 0) {
                    doorbell.run();
                }
            }
            return true;
        } catch (PortalException e) {
            throw new GeminiException(ErrorCode.BAD_FRAME, "the peer corrupted its ring: " + e.getMessage());
        }
    }

    @Override
    public synchronized int receive(byte[] buffer) {
        if (dead) {
            return -1;
        }
        if (buffer != lastBuffer) {
            lastBuffer = buffer;
            lastSegment = MemorySegment.ofArray(buffer);
        }
        try {
            return rx.poll(lastSegment);
        } catch (PortalException e) {
            throw new GeminiException(ErrorCode.BAD_FRAME, "the peer corrupted its ring: " + e.getMessage());
        }
    }

    @Override
    public int maxFrame() {
        return maxFrame;
    }

    @Override
    public void await(long nanos) {
        synchronized (this) {
            if (dead) {
                return;
            }
            INT.setVolatile(ctl, 0L, 1);
            VarHandle.fullFence(); // pairs with the peer's fence between publishing and reading host_sleeping
            if (!rx.isEmpty()) {
                INT.setVolatile(ctl, 0L, 0);
                return;
            }
        }
        LockSupport.parkNanos(nanos);
        synchronized (this) {
            if (!dead) {
                INT.setVolatile(ctl, 0L, 0);
            }
        }
    }

    @Override
    public String peerGone() {
        String k = killed;
        return k != null ? k : peerState.get();
    }

    @Override
    public void close() {
        kill("the transport was closed");
    }
}
