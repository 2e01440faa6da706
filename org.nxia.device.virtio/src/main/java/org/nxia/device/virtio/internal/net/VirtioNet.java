package org.nxia.device.virtio.internal.net;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.atomic.AtomicLong;

import org.nxia.device.virtio.internal.mmio.VirtioBackend;
import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.device.virtio.internal.queue.DescriptorChain;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.device.SavedStateCodec;

/**
 * virtio-net (device ID 1): one receive and one transmit queue, a MAC address,
 * link status, and mergeable receive buffers (a frame of up to
 * {@link #MAX_FRAME} bytes spread over as many receive chains as it needs).
 * No offloads: every frame carries a full checksum both ways, and the
 * 12-byte header is all zero but for {@code num_buffers}.
 *
 * <p>Frames from the backend wait in a bounded queue ({@link #RX_FRAMES})
 * until the driver has receive buffers; frames to the backend go through
 * {@link TxFrames}. When the receive queue is full, passt's frames are dropped
 * and counted ({@link #offerOrDrop}: its stream must always be read) and the
 * TAP reader waits (the kernel's queue drops); when {@link TxFrames} is full,
 * transmit chains stay available until the writer has room and calls
 * {@link #process} again.
 * Called under the transport's lock, as every {@link VirtioBackend}.
 */
final class VirtioNet implements VirtioBackend {

    static final int RX = 0;
    static final int TX = 1;
    static final int F_MAC = 5;
    static final int F_MRG_RXBUF = 15;
    static final int F_STATUS = 16;
    static final int S_LINK_UP = 1;
    /** struct virtio_net_hdr_v1: virtio 1.x always has num_buffers. */
    static final int HEADER = 12;
    static final int NUM_BUFFERS = 10;
    /** An Ethernet header. */
    static final int MIN_FRAME = 14;
    /** The largest frame either way: passt's 65520-byte MTU plus headers, with room to spare. */
    static final int MAX_FRAME = 65550;
    /** Frames from the backend waiting for receive buffers. */
    static final int RX_FRAMES = 128;
    /** Frames to the backend waiting for its writer. */
    static final int TX_FRAMES = 64;

    private final GuestMemory memory;
    private final byte[] mac;
    private final ArrayBlockingQueue<byte[]> rxPending = new ArrayBlockingQueue<>(RX_FRAMES);
    private final TxFrames tx;
    /** The receive chains of the frame being placed: heads and bytes written, reused. */
    private final int[] heads = new int[VirtioMmioTransport.QUEUE_MAX];
    private final int[] written = new int[VirtioMmioTransport.QUEUE_MAX];
    private final byte[] header = new byte[HEADER];
    private SplitQueue rxQueue;
    private SplitQueue txQueue;
    private boolean mergeable;
    private boolean linkUp;
    private long rxFrames;
    private long rxBytes;
    private long txFrames;
    private long txBytes;
    private long rxDropped;
    private long txDropped;
    private long txStalls;
    /** The unicast source MAC of the guest's last frame (48 bits), or -1 before its first: see {@link #announcement}. */
    private volatile long guestMac = -1;
    /** Transmit chains wait for a {@link TxFrames} buffer: the writer calls {@link #process} when it frees one. */
    private volatile boolean txWaiting;
    /** Frames from a backend that does not wait for room ({@link #offerOrDrop}), dropped with the queue full. */
    private final AtomicLong rxOverflow = new AtomicLong();
    private volatile String lastDrop = "";
    /** Wakes the backend's I/O thread: a frame to send, or room for frames it holds back. */
    private Runnable wake = () -> { };

    VirtioNet(GuestMemory memory, byte[] mac, TxFrames tx) {
        if (mac.length != 6) {
            throw new IllegalArgumentException("a MAC address has 6 bytes");
        }
        this.memory = memory;
        this.mac = mac.clone();
        this.tx = tx;
    }

    @Override
    public int deviceId() {
        return 1;
    }

    @Override
    public long features() {
        return (1L << F_MAC) | (1L << F_MRG_RXBUF) | (1L << F_STATUS);
    }

    @Override
    public int queueCount() {
        return 2;
    }

    @Override
    public long readConfig(int offset, int size) {
        // struct virtio_net_config: mac[6], status (le16); the rest is for features not offered.
        long value = 0;
        for (int i = size - 1; i >= 0; i--) {
            int at = offset + i;
            int b = at < 6 ? mac[at] & 0xff : at == 6 ? (linkUp ? S_LINK_UP : 0) : 0;
            value = (value << 8) | b;
        }
        return value;
    }

    @Override
    public void activate(long features, SplitQueue[] queues) {
        rxQueue = queues[RX];
        txQueue = queues[TX];
        mergeable = (features & (1L << F_MRG_RXBUF)) != 0;
    }

    @Override
    public void process(int queue) {
        if (queue == TX) {
            transmit();
        }
        receive();   // a kick of the receive queue means new buffers; a transmit kick costs one look
    }

    @Override
    public void reset() {
        rxQueue = null;
        txQueue = null;
        mergeable = false;
    }

    /** The backend's I/O thread, woken when there is work for it. */
    void onWork(Runnable wake) {
        this.wake = wake;
    }

    /** The link came up or went down (the backend connected or died); the caller tells the driver. */
    void setLink(boolean up) {
        linkUp = up;
    }

    boolean linkUp() {
        return linkUp;
    }

    /**
     * A frame from the backend: queued for the guest, or false when
     * {@link #RX_FRAMES} already wait (the caller waits and retries). The
     * backend's reader thread; the array is the device's from here on.
     */
    boolean offerFrame(byte[] frame) {
        return rxPending.offer(frame);
    }

    /**
     * A frame from a backend that must never be kept waiting (passt): queued, or dropped and
     * counted when {@link #RX_FRAMES} already wait, as a NIC drops with its ring full.
     */
    void offerOrDrop(byte[] frame) {
        if (!rxPending.offer(frame)) {
            rxOverflow.incrementAndGet();
            lastDrop = "a frame from the backend: " + RX_FRAMES + " frames already wait for the guest's receive buffers";
        }
    }

    /** Places waiting frames into receive buffers while there are buffers; the caller signals the driver. */
    void receive() {
        if (rxQueue == null || !rxQueue.isActive() || rxQueue.isBroken()) {
            return;
        }
        boolean wasFull = rxPending.remainingCapacity() == 0;
        byte[] frame;
        while ((frame = rxPending.peek()) != null) {
            if (!place(frame)) {
                break;   // no room: the driver's next receive kick brings us back
            }
            rxPending.poll();
        }
        if (wasFull && rxPending.remainingCapacity() > 0) {
            wake.run();   // the reader held a frame back for room
        }
    }

    /** Copies {@code frame} behind a header into as many receive chains as it needs; false when too few are available. */
    private boolean place(byte[] frame) {
        long total = HEADER + (long) frame.length;
        long done = 0;
        int chains = 0;
        long numBuffersAt = -1;
        Arrays.fill(header, (byte) 0);
        while (done < total) {
            if (chains == heads.length || (!mergeable && chains == 1)) {
                rxQueue.unpop(chains);
                drop(true, "a frame of " + frame.length + " bytes does not fit the receive buffers"
                        + (mergeable ? "" : " (no mergeable buffers)"));
                return true;
            }
            DescriptorChain c = rxQueue.next();
            if (c == null && rxQueue.enableNotification()) {
                continue;   // more arrived while we asked
            }
            if (c == null) {
                // WHY: with every chain popped, enableNotification() just published avail_event at the
                // driver's index, so its next buffer kicks us; after the unpop it would stay behind
                // (the chains we give back) and, with EVENT_IDX, that kick would never come.
                rxQueue.unpop(chains);
                return false;
            }
            int first = c.readableCount();
            if (chains == 0 && (c.writableCount() == 0 || c.length(first) < HEADER)) {
                // WHY: the header must lie in one buffer so num_buffers can be written after the
                // fact; Linux always gives at least that. Return the chain empty, drop the frame.
                rxQueue.pushUsed(c.head(), 0);
                drop(true, "a receive chain without a " + HEADER + "-byte first buffer");
                return true;
            }
            long inChain = 0;
            for (int i = first; i < c.count() && done < total; i++) {
                long address = c.address(i);
                long room = c.length(i);
                if (chains == 0 && i == first) {
                    numBuffersAt = address + NUM_BUFFERS;
                }
                long n = Math.min(room, total - done);
                copyOut(frame, done, address, n);
                done += n;
                inChain += n;
            }
            heads[chains] = c.head();
            written[chains] = (int) inChain;
            chains++;
        }
        memory.writeShort(numBuffersAt, (short) chains);
        for (int i = 0; i < chains; i++) {
            rxQueue.pushUsed(heads[i], written[i]);
        }
        rxFrames++;
        rxBytes += frame.length;
        return true;
    }

    /** Writes bytes {@code [from, from + n)} of header-then-frame to guest {@code address}. */
    private void copyOut(byte[] frame, long from, long address, long n) {
        MemorySegment to = memory.slice(address, n);   // checked against guest RAM
        long at = 0;
        if (from < HEADER) {
            int h = (int) Math.min(HEADER - from, n);
            MemorySegment.copy(header, (int) from, to, ValueLayout.JAVA_BYTE, 0, h);
            at = h;
        }
        if (at < n) {
            MemorySegment.copy(frame, (int) (from + at - HEADER), to, ValueLayout.JAVA_BYTE, at, (int) (n - at));
        }
    }

    /** Sends every available transmit chain the backend has room for; the rest wait for {@link TxFrames}. */
    private void transmit() {
        if (txQueue == null || !txQueue.isActive() || txQueue.isBroken()) {
            return;
        }
        long before = txFrames;
        try {
            transmitChains();
        } finally {
            if (txFrames != before) {
                wake.run();
            }
        }
    }

    private void transmitChains() {
        txWaiting = false;
        while (true) {
            DescriptorChain c = txQueue.next();
            if (c == null) {
                // WHY: the writer resumes us without a kick; with EVENT_IDX the driver kicks only
                // past avail_event, which must then follow the chains taken here, or it never
                // kicks again (the guest's ACKs sat in the ring: NetTest's stalls and resets)
                if (txQueue.enableNotification()) {
                    continue;
                }
                return;
            }
            long frame = c.readableBytes() - HEADER;
            if (frame < MIN_FRAME || frame > MAX_FRAME || c.writableCount() > 0) {
                txQueue.pushUsed(c.head(), 0);
                drop(false, "a transmit chain of " + c.readableBytes() + " readable and " + c.writableBytes()
                        + " writable bytes (a frame is " + HEADER + " header bytes and " + MIN_FRAME + ".." + MAX_FRAME + " bytes, all readable)");
                continue;
            }
            if (!linkUp) {
                txQueue.pushUsed(c.head(), 0);
                drop(false, "the link is down");
                continue;
            }
            ByteBuffer b = tx.acquire();
            if (b == null) {
                // Say we wait, then look once more: a buffer the writer freed before it read the flag is seen here.
                txWaiting = true;
                b = tx.acquire();
            }
            if (b == null) {
                txQueue.unpop(1);   // the writer calls process(TX) again when it frees a buffer
                txStalls++;
                return;
            }
            b.putInt((int) frame);
            long skip = HEADER;
            for (int i = 0; i < c.readableCount(); i++) {
                long len = c.length(i);
                long from = Math.min(skip, len);
                skip -= from;
                if (len > from) {
                    MemorySegment.ofBuffer(b).asSlice(0, len - from)   // the segment starts at the position
                            .copyFrom(memory.slice(c.address(i) + from, len - from));
                    b.position(b.position() + (int) (len - from));
                }
            }
            long source = 0;
            for (int i = 0; i < 6; i++) {
                source = (source << 8) | (b.get(4 + 6 + i) & 0xff);
            }
            if ((source & (1L << 40)) == 0) {
                guestMac = source;   // unicast: a multicast source is not an address to send to
            }
            tx.submit(b.flip());
            txQueue.pushUsed(c.head(), 0);
            txFrames++;
            txBytes += frame;
        }
    }

    private void drop(boolean rx, String why) {
        if (rx) {
            rxDropped++;
        } else {
            txDropped++;
        }
        lastDrop = why;
    }

    /** Bytes in an {@link #announcement}: the shortest Ethernet frame without its FCS. */
    static final int ANNOUNCEMENT = 60;

    /**
     * A frame from the guest's MAC (its last frame's source, else the configured one) for a
     * backend that learns where the guest is from what it sends: passt addresses the guest by
     * the source of the last frame it read, and until then by ff:ff:ff:ff:ff:ff, which Linux's
     * TCP drops (a SYN to a forwarded port went unanswered after every passt restart). An ARP
     * probe (RFC 5227: sender 0.0.0.0) for 0.0.0.0, broadcast: no one's address, but passt
     * answers it, so its answer ({@link #answers}) says it has read the MAC.
     */
    byte[] announcement() {
        byte[] f = new byte[ANNOUNCEMENT];
        Arrays.fill(f, 0, 6, (byte) 0xff);
        long m = guestMac;
        for (int i = 0; i < 6; i++) {
            f[6 + i] = m < 0 ? mac[i] : (byte) (m >>> (8 * (5 - i)));
        }
        ByteBuffer.wrap(f, 12, 10).putShort((short) 0x0806)   // ARP
                .putShort((short) 1).putShort((short) 0x0800).put((byte) 6).put((byte) 4).putShort((short) 1);   // Ethernet, IPv4, request
        System.arraycopy(f, 6, f, 22, 6);   // sender MAC; sender IP, target MAC and IP stay 0
        return f;
    }

    /** Whether {@code frame} is the ARP reply to {@code announcement}: for 0.0.0.0, to the MAC it announced. */
    static boolean answers(byte[] announcement, byte[] frame) {
        if (frame.length < 42 || frame[12] != 0x08 || frame[13] != 0x06 || frame[20] != 0 || frame[21] != 2) {
            return false;
        }
        for (int i = 0; i < 4; i++) {
            if (frame[28 + i] != 0 || frame[38 + i] != 0) {
                return false;
            }
        }
        return Arrays.equals(frame, 32, 38, announcement, 6, 12);
    }

    /** Whether transmit chains wait for a buffer (read by the writer without the lock). */
    boolean txWaiting() {
        return txWaiting;
    }

    /** Frames waiting for receive buffers. */
    int rxWaiting() {
        return rxPending.size();
    }

    /** Forgets the frames the old backend connection sent. */
    void clearPending() {
        rxPending.clear();
        tx.clear();
    }

    static final String SAVED_KIND = "virtio-net config";

    /**
     * The MAC address the driver read: without {@code mac=} it comes from the
     * VM's id, and a VM restored under another id must keep the one its guest
     * knows. The link is the backend's, never saved.
     */
    @Override
    public byte[] saveState() {
        return SavedStateCodec.writer(SAVED_KIND, 1).bytes(mac).toBytes();
    }

    @Override
    public Runnable checkState(byte[] saved) {
        SavedStateCodec.Reader in = SavedStateCodec.reader(saved, SAVED_KIND, 1);
        byte[] address = in.bytes(mac.length);
        in.end();
        if (address.length != mac.length || (address[0] & 1) != 0) {
            throw in.refuse("MAC " + HexFormat.ofDelimiter(":").formatHex(address) + " is not a unicast address of 6 bytes");
        }
        return () -> System.arraycopy(address, 0, mac, 0, mac.length);
    }

    /** The link is the new backend's, whatever the driver last read: it rereads the status. */
    @Override
    public boolean restored() {
        return true;
    }

    record State(String mac, boolean linkUp, boolean mergeable, long rxFrames, long rxBytes, long txFrames, long txBytes,
                 long rxDropped, long txDropped, long txStalls, int rxWaiting, int txQueued, String lastDrop) {
    }

    @Override
    public Record state() {
        return new State(HexFormat.ofDelimiter(":").formatHex(mac), linkUp, mergeable, rxFrames, rxBytes, txFrames, txBytes,
                rxDropped + rxOverflow.get(), txDropped, txStalls, rxPending.size(), tx.queued(), lastDrop);
    }
}
