package org.nxia.device.vmbus.internal;

import static org.nxia.device.vmbus.internal.Vmbus.*;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;

import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.Synic;
import org.nxia.vmm.spi.SynicHost;
import org.nxia.vmm.spi.SyntheticInterrupt;

/**
 * What a Linux guest does to a VMBus server, over heap memory: its message page, its input page,
 * its posts; and a SynIC whose SINTs count signals and take acks from the test. No KVM needed.
 */
final class GuestSide implements DeviceContext {

    static final long RAM = 1 << 20;
    static final long SIMP = 0x10000;
    static final long INPUT = 0x20000;
    static final long SIEFP = 0x30000;
    static final long RINGS = 0x40000;
    /** 8-byte aligned, as guest RAM is: the event flags are set with an atomic OR. */
    final GuestMemory memory;
    final int vcpus;
    final boolean hyperV;
    /** Made by the server on a vCPU thread, its ack thread or its timer, read by the test: a concurrent list. */
    final List<Sint> sints = new java.util.concurrent.CopyOnWriteArrayList<>();
    RuntimeException interruptFailure;
    String failure;
    SynicHost host;

    GuestSide(int vcpus, boolean hyperV) {
        this(vcpus, hyperV, GuestMemory.of(0, MemorySegment.ofArray(new long[(int) RAM / 8])));
    }

    /** Over {@code memory} (a fuzzer's, cleared between its cases). */
    GuestSide(int vcpus, boolean hyperV, GuestMemory memory) {
        this.vcpus = vcpus;
        this.hyperV = hyperV;
        this.memory = memory;
    }

    /** The guest turns its message and event pages on at {@link #SIMP} and {@link #SIEFP}, on every VP (one page each). */
    void enableMessagePages() {
        for (int vp = 0; vp < vcpus; vp++) {
            host.synicChanged(vp, 1, (SIEFP + vp * PAGE) | 1, (SIMP + vp * PAGE) | 1);
        }
    }

    /** The next message on VP {@code vp}, waited for (the ack thread may deliver it), then freed as Linux frees it. */
    byte[] nextMessage(int vp) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        byte[] m;
        while ((m = message(vp)) == null) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no message on VP " + vp + " within 10 s");
            }
            Thread.onSpinWait();
        }
        endOfMessage(vp);
        return m;
    }

    /** Whether the channel's bit is set in VP {@code vp}'s SINT 2 event flags; clears it, as vmbus_isr does. */
    boolean takeEvent(int vp, int relid) {
        long at = SIEFP + vp * PAGE + (long) MESSAGE_SINT * EVENT_FLAGS_BYTES + relid / 8;
        byte b = memory.readByte(at);
        memory.writeByte(at, (byte) (b & ~(1 << relid % 8)));
        return (b & 1 << relid % 8) != 0;
    }

    /** The ring pages of channel {@code relid}: 8 pages, 4 each way, headers zeroed and pending-send size on, as Linux sets them up. */
    long[] ringPages(int relid) {
        long[] pages = new long[8];
        for (int i = 0; i < 8; i++) {
            pages[i] = RINGS + (relid * 8L + i) * PAGE;
        }
        memory.slice(pages[0], 8 * PAGE).fill((byte) 0);
        memory.writeInt(pages[0] + Ring.FEATURE_BITS, 1);
        memory.writeInt(pages[4] + Ring.FEATURE_BITS, 1);
        return pages;
    }

    static byte[] gpadlHeader(int relid, int gpadl, long[] pages) {
        byte[] m = new byte[GPADL_HEADER_PFNS + 8 * pages.length];
        putInt(m, 0, GPADL_HEADER);
        putInt(m, MESSAGE_RELID, relid);
        putInt(m, MESSAGE_GPADL, gpadl);
        m[16] = (byte) (8 + 8 * pages.length);
        m[GPADL_RANGE_COUNT] = 1;
        putInt(m, GPADL_BYTE_COUNT, (int) (pages.length * PAGE));
        for (int i = 0; i < pages.length; i++) {
            putLong(m, GPADL_HEADER_PFNS + 8 * i, pages[i] / PAGE);
        }
        return m;
    }

    static byte[] open(int relid, int gpadl, int vp, int downstream) {
        byte[] m = new byte[OPEN_BYTES + 120];
        putInt(m, 0, OPENCHANNEL);
        putInt(m, MESSAGE_RELID, relid);
        putInt(m, OPEN_ID, relid);
        putInt(m, OPEN_GPADL, gpadl);
        putInt(m, OPEN_TARGET_VP, vp);
        putInt(m, OPEN_DOWNSTREAM_OFFSET, downstream);
        return m;
    }

    static byte[] relidMessage(int type, int relid, int second) {
        byte[] m = new byte[16];
        putInt(m, 0, type);
        putInt(m, MESSAGE_RELID, relid);
        putInt(m, MESSAGE_GPADL, second);
        return m;
    }

    static void putLong(byte[] b, int offset, long v) {
        putInt(b, offset, (int) v);
        putInt(b, offset + 4, (int) (v >>> 32));
    }

    /** The guest's end of an open channel: it reads the host's ring and writes its own, then signals. */
    static final class GuestChannel {
        final GuestSide guest;
        final int relid;
        final Ring fromHost;
        final Ring toHost;
        final byte[] in = new byte[8192];
        final Ring.Packet packet = new Ring.Packet();

        GuestChannel(GuestSide guest, int relid, long[] pages) {
            this.guest = guest;
            this.relid = relid;
            this.toHost = new Ring(guest.memory, java.util.Arrays.copyOfRange(pages, 0, 4));
            this.fromHost = new Ring(guest.memory, java.util.Arrays.copyOfRange(pages, 4, 8));
        }

        /** Over the pages {@link #ringPages} gives channel {@code relid}, as they are now. */
        GuestChannel(GuestSide guest, int relid) {
            this(guest, relid, pagesOf(relid));
        }

        private static long[] pagesOf(int relid) {
            long[] pages = new long[8];
            for (int i = 0; i < 8; i++) {
                pages[i] = RINGS + (relid * 8L + i) * PAGE;
            }
            return pages;
        }

        /** The next packet's payload from the host, or null. */
        byte[] receive() {
            return fromHost.read(in, packet) ? java.util.Arrays.copyOf(in, packet.length) : null;
        }

        long send(byte[] payload, long transaction) {
            toHost.write(payload, payload.length, transaction);
            return guest.host.hypercall(0, SynicHost.HVCALL_SIGNAL_EVENT | FAST, Channel.CONNECTION_BASE + relid, 0);
        }

        /** Answers an IC request as Linux's hv_utils does: negotiation picks the versions offered; heartbeat adds one. */
        long answer(byte[] request, int status) {
            byte[] a = request.clone();
            a[IntegrationService.IC_FLAGS] = IntegrationService.FLAG_TRANSACTION | IntegrationService.FLAG_RESPONSE;
            putInt(a, IntegrationService.IC_STATUS, status);
            if (a[IntegrationService.IC_TYPE] == IntegrationService.NEGOTIATE) {
                a[IntegrationService.IC_SIZE] = 0x10;
            } else if (a[IntegrationService.IC_TYPE] == HeartbeatService.HEARTBEAT) {
                putLong(a, IntegrationService.IC_DATA, longAt(a, IntegrationService.IC_DATA) + 1);
            }
            return send(a, packet.transaction);
        }
    }

    long post(int connection, int type, byte[] payload) {
        memory.writeInt(INPUT + POST_CONNECTION_ID, connection);
        memory.writeInt(INPUT + POST_TYPE, type);
        memory.writeInt(INPUT + POST_SIZE, payload.length);
        memory.write(INPUT + POST_PAYLOAD, payload);
        return host.hypercall(0, SynicHost.HVCALL_POST_MESSAGE, INPUT, 0);
    }

    static byte[] contact(int version, int vp, int sint) {
        byte[] m = new byte[CONTACT_BYTES];
        putInt(m, 0, INITIATE_CONTACT);
        putInt(m, CONTACT_VERSION, version);
        putInt(m, CONTACT_TARGET_VP, vp);
        m[CONTACT_MESSAGE_SINT] = (byte) sint;
        return m;
    }

    static byte[] header(int type) {
        byte[] m = new byte[HEADER_BYTES];
        putInt(m, 0, type);
        return m;
    }

    long slot(int vp) {
        return SIMP + vp * PAGE + (long) MESSAGE_SINT * SLOT_BYTES;
    }

    /** The message in VP {@code vp}'s SINT 2 slot, or null if the slot is free. */
    byte[] message(int vp) {
        long slot = slot(vp);
        if (memory.readInt(slot + SLOT_TYPE) == HVMSG_NONE) {
            return null;
        }
        return memory.read(slot + SLOT_PAYLOAD, memory.readByte(slot + SLOT_PAYLOAD_SIZE) & 0xff);
    }

    boolean pendingFlag(int vp) {
        return (memory.readByte(slot(vp) + SLOT_FLAGS) & FLAG_PENDING) != 0;
    }

    /**
     * What Linux does after it read a message (vmbus_signal_eom): frees the slot, then, after a
     * barrier, writes EOM if the host flagged another. In that order: the host sets the flag and then
     * reads the type again, so one of the two always sees the other.
     */
    void endOfMessage(int vp) {
        memory.writeInt(slot(vp) + SLOT_TYPE, HVMSG_NONE);
        java.lang.invoke.VarHandle.fullFence();
        boolean flagged = pendingFlag(vp);
        if (flagged) {
            // a slot the host never signalled (the fuzzer moved the page onto it) has no SINT to ack
            sints.stream().filter(s -> s.vcpu == vp).findFirst().ifPresent(s -> s.acks.release());
        }
    }

    Sint sint(int vp) {
        return sints.stream().filter(s -> s.vcpu == vp).findFirst().orElseThrow();
    }

    @Override
    public Optional<Synic> claimSynic(SynicHost h) {
        if (!hyperV) {
            return Optional.empty();
        }
        host = h;
        return Optional.of(new Synic() {
            @Override
            public int vcpus() {
                return vcpus;
            }

            @Override
            public SyntheticInterrupt interrupt(int vcpu, int sint) {
                if (interruptFailure != null) {
                    throw interruptFailure;
                }
                Sint s = new Sint(vcpu, sint);
                sints.add(s);
                return s;
            }
        });
    }

    static final class Sint implements SyntheticInterrupt {
        final int vcpu;
        final int sint;
        final AtomicInteger signals = new AtomicInteger();
        final Semaphore acks = new Semaphore(0);
        volatile boolean closed;

        Sint(int vcpu, int sint) {
            this.vcpu = vcpu;
            this.sint = sint;
        }

        @Override
        public int vcpu() {
            return vcpu;
        }

        @Override
        public int sint() {
            return sint;
        }

        @Override
        public void signal() {
            signals.incrementAndGet();
        }

        @Override
        public long awaitAck() {
            acks.acquireUninterruptibly();
            return closed ? 0 : 1;
        }

        @Override
        public void close() {
            closed = true;
            acks.release();
        }
    }

    @Override
    public String vmId() {
        return "vm-test";
    }

    @Override
    public GuestMemory memory() {
        return memory;
    }

    @Override
    public void claimPorts(int first, int count, PortDevice device) {
        throw new UnsupportedOperationException();
    }

    @Override
    public long claimMmio(long size, MmioDevice device) {
        throw new UnsupportedOperationException();
    }

    final ByteArrayOutputStream console = new ByteArrayOutputStream();

    @Override
    public void console(byte[] bytes, int offset, int length) {
        console.write(bytes, offset, length);
    }

    @Override
    public void exit(int status) {
        throw new UnsupportedOperationException();
    }

    @Override
    public void reset(String how) {
        throw new UnsupportedOperationException();
    }

    @Override
    public void fail(String reason) {
        failure = reason;
    }
}
