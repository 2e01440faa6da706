package org.nxia.device.vmbus.internal;

import static org.nxia.device.vmbus.internal.Vmbus.*;

import java.lang.invoke.VarHandle;
import java.util.UUID;

import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.GracefulShutdown;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.Synic;
import org.nxia.vmm.spi.SynicHost;
import org.nxia.vmm.spi.SyntheticInterrupt;

/**
 * The host side of a Hyper-V partition's VMBus. The guest posts channel messages with
 * {@code HvPostMessage}; the server answers INITIATE_CONTACT with VERSION_RESPONSE (versions 5.0 to
 * 5.3), REQUESTOFFERS with an OFFERCHANNEL per channel and ALLOFFERS_DELIVERED, GPADL_HEADER and
 * its bodies with GPADL_CREATED, OPENCHANNEL with OPENCHANNEL_RESULT, GPADL_TEARDOWN with
 * GPADL_TORNDOWN, MODIFYCHANNEL with its response, UNLOAD with UNLOAD_RESPONSE. An answer goes
 * into SINT 2's slot of the target VP's message page, then the SINT is raised. A slot still holding
 * an answer gets the pending flag; the guest's end-of-message wakes the ack thread, which delivers
 * the rest. An open channel's packets go through its two rings; the guest signals with
 * {@code HvSignalEvent} on the channel's connection id, the host by setting the channel's bit in the
 * VP's event flags and raising SINT 2.
 *
 * <p>The guest is hostile: the input page must be aligned, inside one page and in RAM; the
 * connection id, message type and payload size are checked; a malformed or unexpected channel
 * message is dropped and counted, a GPADL or open that breaks the rules is refused with a status,
 * and a broken ring closes its channel. Answers wait in a fixed outbox of {@value #MAX_PENDING}: a
 * guest that never frees its slot gets {@code HV_STATUS_INSUFFICIENT_BUFFERS} (it retries), not an
 * unbounded queue. Called on vCPU threads; the buffers are made with the device.
 */
final class VmbusServer implements Device, SynicHost, GracefulShutdown {

    /** Answers that wait for the guest's slot. A post is taken only while there is room for all its answers. */
    static final int MAX_PENDING = 16;
    /** GPADLs made or in the making at once. */
    static final int MAX_GPADLS = 16;
    /** Pages of one GPADL: 1 MiB. */
    static final int MAX_GPADL_PAGES = 256;
    /** Packets taken from a channel per signal. */
    static final int DRAIN_LIMIT = 64;
    /** How often the heartbeat service asks. */
    static final java.time.Duration HEARTBEAT_PERIOD = java.time.Duration.ofSeconds(2);

    /** A GPADL: its channel, its pages (guest-physical), how many have arrived. */
    private record Gpadl(int id, int relid, long[] pages, int[] filled) {
        boolean complete() {
            return filled[0] == pages.length;
        }
    }

    /** Counters and the connection, as {@code device:list} and {@code vm:info} show them. */
    record State(String version, int messageVp, long posted, long delivered, long dropped, long refusedBusy, int pending, long acks,
                 java.util.List<String> channels) {
    }

    private final DeviceContext context;
    private final GuestMemory memory;
    /** Set once the SynIC is claimed, before any vCPU runs. */
    private Synic synic;
    // guarded by this
    private long[] messagePages = new long[0];
    private SyntheticInterrupt[] sints = new SyntheticInterrupt[0];
    private final byte[] in = new byte[MAX_PAYLOAD];
    private final byte[][] outbox = new byte[MAX_PENDING][MAX_PAYLOAD];
    private final int[] outboxBytes = new int[MAX_PENDING];
    private final int[] outboxVp = new int[MAX_PENDING];
    private int head;
    private int pending;
    private int version;
    private int messageVp;
    private long posted;
    private long delivered;
    private long dropped;
    private long refusedBusy;
    private long acks;
    private boolean closed;
    private String failure;
    private long[] eventPages = new long[0];
    private final java.util.List<Channel> channels = new java.util.ArrayList<>();
    private final java.util.Map<Integer, Gpadl> gpadls = new java.util.HashMap<>();
    final ShutdownService shutdown = new ShutdownService();
    final HeartbeatService heartbeat = new HeartbeatService();
    final TimeSyncService timeSync = new TimeSyncService(java.time.Clock.systemUTC());
    private java.util.concurrent.ScheduledFuture<?> beating;

    private VmbusServer(DeviceContext context) {
        this.context = context;
        this.memory = context.memory();
    }

    /**
     * Serves {@code context}'s VM's SynIC.
     *
     * @throws IllegalArgumentException if the VM is not a Hyper-V partition
     */
    static VmbusServer serve(DeviceContext context, java.util.concurrent.ScheduledExecutorService timer) {
        VmbusServer server = new VmbusServer(context);
        Synic synic = context.claimSynic(server).orElseThrow(() -> new IllegalArgumentException(
                "device vmbus serves a Hyper-V partition's VMBus, and VM " + context.vmId() + " is not one (a Linux profile's hyperv=true)"));
        synchronized (server) {
            server.synic = synic;
            server.messagePages = new long[synic.vcpus()];
            server.eventPages = new long[synic.vcpus()];
            server.sints = new SyntheticInterrupt[synic.vcpus()];
            for (ChannelDevice d : new ChannelDevice[] {server.shutdown, server.heartbeat, server.timeSync}) {
                int relid = server.channels.size() + 1;
                UUID instance = UUID.nameUUIDFromBytes((context.vmId() + "/vmbus/" + relid).getBytes(java.nio.charset.StandardCharsets.UTF_8));
                server.channels.add(new Channel(server, relid, instance, d));
            }
        }
        server.beating = timer.scheduleAtFixedRate(server::beat, HEARTBEAT_PERIOD.toMillis(), HEARTBEAT_PERIOD.toMillis(),
                java.util.concurrent.TimeUnit.MILLISECONDS);
        return server;
    }

    @Override
    public String type() {
        return VmbusFactory.TYPE;
    }

    @Override
    public synchronized Record state() {
        return new State(version(version), messageVp, posted, delivered, dropped, refusedBusy, pending, acks, channels.stream()
                .map(c -> c.relid + " " + (c.open() ? "open" : c.broken != null ? "closed (" + c.broken + ")" : "offered") + ", "
                        + c.device.state()).toList());
    }

    @Override
    public synchronized void synicChanged(int vcpu, long control, long eventPage, long messagePage) {
        if (vcpu >= 0 && vcpu < messagePages.length) {
            messagePages[vcpu] = messagePage;
            eventPages[vcpu] = eventPage;
            flush();
        }
    }

    /** Asks the guest to power off through the shutdown channel; false if it is not open and negotiated. */
    @Override
    public synchronized boolean requestShutdown() {
        return !closed && shutdown.requestPowerOff();
    }

    private synchronized void beat() {
        if (!closed) {
            heartbeat.beat();
        }
    }

    @Override
    public long hypercall(int vcpu, long control, long input, long output) {
        int code = (int) (control & 0xffff);
        if (code == HVCALL_POST_MESSAGE) {
            return (control & FAST) != 0 ? HV_STATUS_INVALID_HYPERCALL_INPUT : postMessage(input);
        }
        if (code == HVCALL_SIGNAL_EVENT) {
            return signalEvent(input);
        }
        return HV_STATUS_INVALID_HYPERCALL_CODE;
    }

    /**
     * HvSignalEvent: the guest wrote packets to a channel (its connection id in the low 24 bits of
     * the input, the flag number above must be 0). Linux uses the fast form; for the other KVM has
     * already read the input from the guest.
     */
    synchronized long signalEvent(long input) {
        int relid = ((int) input & CONNECTION_ID_MASK) - Channel.CONNECTION_BASE;
        Channel c = channel(relid);
        if (closed || input >>> 32 != 0 || c == null || !c.open()) {
            return HV_STATUS_INVALID_CONNECTION_ID;
        }
        c.drain(DRAIN_LIMIT);
        return HV_STATUS_SUCCESS;
    }

    /** HvPostMessage: the input at {@code gpa} checked, its payload copied out, then handled. */
    synchronized long postMessage(long gpa) {
        if (closed) {
            return HV_STATUS_INVALID_CONNECTION_ID;
        }
        if ((gpa & 7) != 0 || (gpa & (PAGE - 1)) + POST_BYTES > PAGE) {
            return HV_STATUS_INVALID_ALIGNMENT;
        }
        if (!memory.contains(gpa, POST_PAYLOAD)) {
            return HV_STATUS_INVALID_PARAMETER;
        }
        int connection = memory.readInt(gpa + POST_CONNECTION_ID) & CONNECTION_ID_MASK;
        int messageType = memory.readInt(gpa + POST_TYPE);
        int size = memory.readInt(gpa + POST_SIZE);
        if (connection != MESSAGE_CONNECTION_ID && connection != CONTACT_CONNECTION_ID) {
            return HV_STATUS_INVALID_CONNECTION_ID;
        }
        // a type is 1 to 0x7fffffff (the high half is the hypervisor's); a payload 0 to 240 bytes
        if (messageType <= 0 || size < 0 || size > MAX_PAYLOAD || !memory.contains(gpa + POST_PAYLOAD, size)) {
            return HV_STATUS_INVALID_PARAMETER;
        }
        if (pending + channels.size() + 1 > MAX_PENDING) {   // REQUESTOFFERS has the most answers
            refusedBusy++;
            return HV_STATUS_INSUFFICIENT_BUFFERS;
        }
        java.lang.foreign.MemorySegment.copy(memory.slice(gpa + POST_PAYLOAD, size), java.lang.foreign.ValueLayout.JAVA_BYTE, 0, in, 0, size);
        posted++;
        handle(size);
        flush();
        return HV_STATUS_SUCCESS;
    }

    private void handle(int size) {
        if (size < HEADER_BYTES) {
            dropped++;
            return;
        }
        int type = intAt(in, 0);
        if (type == INITIATE_CONTACT) {
            initiateContact(size);
            return;
        }
        if (version == 0) {
            dropped++;   // nothing but a contact before the bus is connected
            return;
        }
        switch (type) {
            case REQUESTOFFERS -> {
                for (Channel c : channels) {
                    byte[] offer = answer(messageVp, OFFERCHANNEL, OFFER_BYTES);
                    putGuid(offer, OFFER_TYPE, c.device.type());
                    putGuid(offer, OFFER_INSTANCE, c.instance);
                    putInt(offer, OFFER_RELID, c.relid);
                    offer[OFFER_DEDICATED_INTERRUPT] = 1;   // no monitor pages: the guest signals with HvSignalEvent
                    putInt(offer, OFFER_CONNECTION_ID, c.connectionId());
                }
                answer(messageVp, ALLOFFERS_DELIVERED, HEADER_BYTES);
            }
            case GPADL_HEADER -> gpadlHeader(size);
            case GPADL_BODY -> gpadlBody(size);
            case OPENCHANNEL -> openChannel(size);
            case CLOSECHANNEL -> {
                Channel c = size < MESSAGE_RELID + 4 ? null : channel(intAt(in, MESSAGE_RELID));
                if (c == null || !c.open()) {
                    dropped++;
                } else {
                    closeChannel(c, null);
                }
            }
            case GPADL_TEARDOWN -> {
                Gpadl g = size < MESSAGE_GPADL + 4 ? null : gpadls.get(intAt(in, MESSAGE_GPADL));
                if (g == null) {
                    dropped++;
                    return;
                }
                Channel c = channel(g.relid());
                if (c != null && c.open() && c.gpadl == g.id()) {
                    closeChannel(c, null);   // a guest that tears down a ring in use ends its channel first
                }
                gpadls.remove(g.id());
                putInt(answer(messageVp, GPADL_TORNDOWN, GPADL_TORNDOWN_BYTES), GPADL_TORNDOWN_GPADL, g.id());
            }
            case MODIFYCHANNEL -> {
                Channel c = size < MODIFY_TARGET_VP + 4 ? null : channel(intAt(in, MESSAGE_RELID));
                if (c == null) {
                    dropped++;
                    return;
                }
                int vp = intAt(in, MODIFY_TARGET_VP);
                boolean ok = vp >= 0 && vp < messagePages.length;
                if (ok) {
                    c.vp = vp;
                }
                byte[] response = answer(messageVp, MODIFYCHANNEL_RESPONSE, MODIFY_RESPONSE_BYTES);
                putInt(response, MESSAGE_RELID, c.relid);
                putInt(response, MODIFY_RESPONSE_STATUS, ok ? 0 : STATUS_REFUSED);
            }
            case RELID_RELEASED -> {
                // after a rescind, which this server does not send: nothing to release
            }
            case UNLOAD -> {
                disconnect();
                answer(messageVp, UNLOAD_RESPONSE, HEADER_BYTES);
            }
            default -> dropped++;
        }
    }

    private Channel channel(int relid) {
        return relid >= 1 && relid <= channels.size() ? channels.get(relid - 1) : null;
    }

    /** Closes every channel and forgets every GPADL: the guest unloads or starts over. */
    private void disconnect() {
        for (Channel c : channels) {
            if (c.open()) {
                closeChannel(c, null);
            }
        }
        gpadls.clear();
        version = 0;
    }

    /**
     * A GPADL's first message: one range, from offset 0, of whole pages (2 to {@value #MAX_GPADL_PAGES}),
     * for an offered channel, with an id not in use; the rest of its page numbers follow in bodies.
     * A header that breaks a rule is refused at once with GPADL_CREATED and a nonzero status.
     */
    private void gpadlHeader(int size) {
        if (size < GPADL_HEADER_PFNS) {
            dropped++;
            return;
        }
        int relid = intAt(in, MESSAGE_RELID);
        int id = intAt(in, MESSAGE_GPADL);
        int ranges = (in[GPADL_RANGE_COUNT] & 0xff) | (in[GPADL_RANGE_COUNT + 1] & 0xff) << 8;
        int bytes = intAt(in, GPADL_BYTE_COUNT);
        int pages = bytes / (int) PAGE;
        if (channel(relid) == null || gpadls.containsKey(id) || gpadls.size() == MAX_GPADLS || ranges != 1
                || intAt(in, GPADL_BYTE_OFFSET) != 0 || bytes % PAGE != 0 || pages < 2 || pages > MAX_GPADL_PAGES) {
            gpadlCreated(relid, id, false);
            return;
        }
        Gpadl g = new Gpadl(id, relid, new long[pages], new int[1]);
        gpadls.put(id, g);
        addPages(g, GPADL_HEADER_PFNS, size);
    }

    private void gpadlBody(int size) {
        Gpadl g = size < GPADL_BODY_PFNS ? null : gpadls.get(intAt(in, MESSAGE_GPADL));
        if (g == null || g.complete()) {
            dropped++;
            return;
        }
        addPages(g, GPADL_BODY_PFNS, size);
    }

    /** Takes the page numbers from {@code from} to {@code size}; once all are in, each must be a page of RAM. */
    private void addPages(Gpadl g, int from, int size) {
        for (int at = from; at + 8 <= size && !g.complete(); at += 8) {
            long pfn = longAt(in, at);
            g.pages()[g.filled()[0]++] = pfn >= 0 && pfn < Long.MAX_VALUE / PAGE ? pfn * PAGE : -1;
        }
        if (!g.complete()) {
            return;
        }
        for (long page : g.pages()) {
            if (page < 0 || !memory.contains(page, PAGE)) {
                gpadls.remove(g.id());
                gpadlCreated(g.relid(), g.id(), false);
                return;
            }
        }
        gpadlCreated(g.relid(), g.id(), true);
    }

    private void gpadlCreated(int relid, int id, boolean ok) {
        byte[] out = answer(messageVp, GPADL_CREATED, GPADL_CREATED_BYTES);
        putInt(out, MESSAGE_RELID, relid);
        putInt(out, MESSAGE_GPADL, id);
        putInt(out, GPADL_CREATED_STATUS, ok ? 0 : STATUS_REFUSED);
    }

    /**
     * Opens an offered channel on a complete GPADL of its own: the guest-to-host ring is the pages
     * before the downstream offset, the host-to-guest ring those from it, each a header and at least
     * one data page; events go to a VP that exists. Answered with OPENCHANNEL_RESULT.
     */
    private void openChannel(int size) {
        if (size < OPEN_BYTES) {
            dropped++;
            return;
        }
        Channel c = channel(intAt(in, MESSAGE_RELID));
        Gpadl g = gpadls.get(intAt(in, OPEN_GPADL));
        int vp = intAt(in, OPEN_TARGET_VP);
        int downstream = intAt(in, OPEN_DOWNSTREAM_OFFSET);
        boolean ok = c != null && !c.open() && g != null && g.complete() && g.relid() == c.relid && vp >= 0 && vp < messagePages.length
                && downstream >= 2 && downstream <= g.pages().length - 2;
        byte[] result = answer(messageVp, OPENCHANNEL_RESULT, OPEN_RESULT_BYTES);
        putInt(result, MESSAGE_RELID, intAt(in, MESSAGE_RELID));
        putInt(result, OPEN_ID, intAt(in, OPEN_ID));
        putInt(result, OPEN_RESULT_STATUS, ok ? 0 : STATUS_REFUSED);
        if (!ok) {
            return;
        }
        c.fromGuest = new Ring(memory, java.util.Arrays.copyOfRange(g.pages(), 0, downstream));
        c.toGuest = new Ring(memory, java.util.Arrays.copyOfRange(g.pages(), downstream, g.pages().length));
        c.gpadl = g.id();
        c.vp = vp;
        c.broken = null;
        c.device.opened(c);
    }

    /** Ends an open channel: the guest closed it, or its ring broke a rule ({@code why}). */
    void closeChannel(Channel c, String why) {
        c.fromGuest = null;
        c.toGuest = null;
        if (why != null) {
            c.broken = why;
        }
        c.device.closed();
    }

    /**
     * Tells the guest a channel has packets: sets the channel's bit in SINT 2's event flags of its VP
     * (atomically: the guest clears bits as it takes them) and raises SINT 2 if the bit was clear.
     */
    void signal(Channel c) {
        long page = eventPages[c.vp];
        if ((page & 1) == 0) {
            return;   // the guest has no event page on: it polls nothing, and gets nothing
        }
        long flag = (page & -PAGE) + (long) MESSAGE_SINT * EVENT_FLAGS_BYTES + c.relid / 8;
        if (!memory.contains(flag & ~3L, 4)) {
            return;
        }
        int mask = 1 << ((flag & 3) * 8 + c.relid % 8);
        int before = (int) FLAG_WORD.getAndBitwiseOr(memory.slice(flag & ~3L, 4), 0L, mask);
        if ((before & mask) == 0) {
            SyntheticInterrupt sint = sint(c.vp);
            if (sint != null) {
                sint.signal();
            }
        }
    }

    private static final VarHandle FLAG_WORD = java.lang.foreign.ValueLayout.JAVA_INT.varHandle();

    /**
     * Takes 5.0 to 5.3 with messages on SINT 2, and refuses any other version (the guest then asks
     * for the next lower one): answered on the VP the guest names, which must exist. A contact while
     * connected starts the connection again, as after a kexec.
     */
    private void initiateContact(int size) {
        int vp = size < CONTACT_BYTES ? -1 : intAt(in, CONTACT_TARGET_VP);
        if (vp < 0 || vp >= messagePages.length) {
            dropped++;
            return;
        }
        int asked = intAt(in, CONTACT_VERSION);
        boolean taken = Integer.compareUnsigned(asked, VERSION_5_0) >= 0 && Integer.compareUnsigned(asked, VERSION_5_3) <= 0
                && (in[CONTACT_MESSAGE_SINT] & 0xff) == MESSAGE_SINT;
        disconnect();
        version = taken ? asked : 0;
        messageVp = vp;
        byte[] out = answer(vp, VERSION_RESPONSE, RESPONSE_BYTES);
        out[RESPONSE_SUPPORTED] = (byte) (taken ? 1 : 0);
        putInt(out, RESPONSE_CONNECTION_ID, MESSAGE_CONNECTION_ID);
    }

    /** Queues an answer of {@code bytes} bytes, its header written; returns it for the caller's fields (the post's end delivers it). */
    private byte[] answer(int vp, int type, int bytes) {
        int at = (head + pending) % MAX_PENDING;
        byte[] out = outbox[at];
        java.util.Arrays.fill(out, 0, bytes, (byte) 0);
        putInt(out, 0, type);
        outboxBytes[at] = bytes;
        outboxVp[at] = vp;
        pending++;
        return out;
    }

    /**
     * Delivers waiting answers in order while their VP's slot is free. A slot in use gets the pending
     * flag, then is read again: a guest that freed it meanwhile saw no flag and writes no
     * end-of-message, so the answer goes in now. A VP whose message page is off keeps its answers
     * until the guest turns it on.
     */
    private void flush() {
        while (pending > 0 && !closed) {
            int vp = outboxVp[head];
            long page = messagePages[vp];
            if ((page & 1) == 0) {
                return;
            }
            long slot = (page & -PAGE) + (long) MESSAGE_SINT * SLOT_BYTES;
            if (!memory.contains(slot, SLOT_BYTES)) {
                dropped++;   // a message page outside RAM: nowhere to deliver
                pop();
                continue;
            }
            if (memory.readInt(slot + SLOT_TYPE) != HVMSG_NONE) {
                memory.writeByte(slot + SLOT_FLAGS, (byte) (memory.readByte(slot + SLOT_FLAGS) | FLAG_PENDING));
                VarHandle.fullFence();
                if (memory.readInt(slot + SLOT_TYPE) != HVMSG_NONE) {
                    return;
                }
            }
            byte[] out = outbox[head];
            int bytes = outboxBytes[head];
            java.lang.foreign.MemorySegment.copy(out, 0, memory.slice(slot + SLOT_PAYLOAD, bytes), java.lang.foreign.ValueLayout.JAVA_BYTE, 0, bytes);
            memory.writeByte(slot + SLOT_PAYLOAD_SIZE, (byte) bytes);
            memory.writeByte(slot + SLOT_FLAGS, (byte) 0);
            memory.writeLong(slot + SLOT_SENDER, 0);
            VarHandle.releaseFence();   // the guest reads the type first: it must see the payload once it sees the type
            memory.writeInt(slot + SLOT_TYPE, HVMSG_VMBUS);
            pop();
            delivered++;
            SyntheticInterrupt sint = sint(vp);
            if (sint == null) {
                return;
            }
            sint.signal();
        }
    }

    private void pop() {
        head = (head + 1) % MAX_PENDING;
        pending--;
    }

    /** The VP's SINT 2, routed at its first message (its vCPU runs by then), with a thread that waits for its acks. */
    private SyntheticInterrupt sint(int vp) {
        if (sints[vp] == null && failure == null) {
            try {
                SyntheticInterrupt s = synic.interrupt(vp, MESSAGE_SINT);
                sints[vp] = s;
                Thread.ofPlatform().daemon().name("nxia-" + context.vmId() + "-vmbus-vp" + vp).start(() -> takeAcks(s));
            } catch (RuntimeException e) {
                failure = "VMBus cannot raise SINT " + MESSAGE_SINT + " of VP " + vp + ": " + e.getMessage();
                closed = true;
                context.fail(failure);
            }
        }
        return sints[vp];
    }

    private void takeAcks(SyntheticInterrupt s) {
        long n;
        while ((n = s.awaitAck()) > 0) {
            synchronized (this) {
                acks += n;
                flush();
            }
        }
    }

    @Override
    public void close() {
        SyntheticInterrupt[] open;
        if (beating != null) {
            beating.cancel(false);
        }
        synchronized (this) {
            closed = true;
            pending = 0;
            open = sints.clone();
        }
        for (SyntheticInterrupt s : open) {
            if (s != null) {
                s.close();
            }
        }
    }
}
