package org.nxia.device.virtio.internal.mmio;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.SplitQueueState;
import org.nxia.device.virtio.internal.queue.VirtqueueException;
import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.SavedStateCodec;

/**
 * The virtio-mmio transport, register layout version 2 (virtio 1.x, 4.2.2).
 * Where the VM offers doorbells (KVM's ioeventfd) the transport puts one on
 * QueueNotify when the driver sets DRIVER_OK: the guest's kick then costs no
 * exit, and the device's notify thread serves the queues. Without one
 * (a backend without ioeventfd, {@code notify=mmio-exit}, or before
 * DRIVER_OK) a kick is an MMIO exit served on the vCPU thread. Where the VM
 * has interrupts (a Linux VM) the transport pulses its line when it sets an
 * InterruptStatus bit (used buffer, config change); micro-VMs have none and
 * poll the used ring.
 *
 * <p>Every register access, notification and host-side delivery runs under
 * the transport's lock, so a kick served on the notify thread never sees a
 * queue half set up or reset by the vCPU thread.
 *
 * <p>A driver that breaks the protocol — a bad ring, a notify before
 * DRIVER_OK, a queue size that is not a power of two — gets
 * DEVICE_NEEDS_RESET and nothing else happens until it resets the device.
 */
public final class VirtioMmioTransport implements MmioDevice, Device {

    public static final int WINDOW = 0x1000;

    static final int MAGIC_VALUE = 0x000;
    static final int VERSION = 0x004;
    static final int DEVICE_ID = 0x008;
    static final int VENDOR_ID = 0x00c;
    static final int DEVICE_FEATURES = 0x010;
    static final int DEVICE_FEATURES_SEL = 0x014;
    static final int DRIVER_FEATURES = 0x020;
    static final int DRIVER_FEATURES_SEL = 0x024;
    static final int QUEUE_SEL = 0x030;
    static final int QUEUE_NUM_MAX = 0x034;
    static final int QUEUE_NUM = 0x038;
    static final int QUEUE_READY = 0x044;
    static final int QUEUE_NOTIFY = 0x050;
    static final int INTERRUPT_STATUS = 0x060;
    static final int INTERRUPT_ACK = 0x064;
    static final int STATUS = 0x070;
    static final int QUEUE_DESC_LOW = 0x080;
    static final int QUEUE_DESC_HIGH = 0x084;
    static final int QUEUE_DRIVER_LOW = 0x090;
    static final int QUEUE_DRIVER_HIGH = 0x094;
    static final int QUEUE_DEVICE_LOW = 0x0a0;
    static final int QUEUE_DEVICE_HIGH = 0x0a4;
    /** Shared memory regions (virtio 1.2, 4.2.2): SHMSel, then the selected region's length and base. */
    static final int SHM_SEL = 0x0ac;
    static final int SHM_LEN_LOW = 0x0b0;
    static final int SHM_LEN_HIGH = 0x0b4;
    static final int SHM_BASE_LOW = 0x0b8;
    static final int SHM_BASE_HIGH = 0x0bc;
    static final int CONFIG_GENERATION = 0x0fc;
    static final int CONFIG = 0x100;

    static final int MAGIC = 0x7472_6976;          // "virt"
    static final int VENDOR = 0x4149_584e;         // "NXIA"
    static final long F_VERSION_1 = 1L << 32;

    public static final int S_ACKNOWLEDGE = 1;
    public static final int S_DRIVER = 2;
    public static final int S_DRIVER_OK = 4;
    public static final int S_FEATURES_OK = 8;
    public static final int S_NEEDS_RESET = 0x40;
    public static final int S_FAILED = 0x80;

    static final int INT_USED_BUFFER = 1;
    public static final int INT_CONFIG_CHANGE = 2;

    public static final int QUEUE_MAX = 256;

    /** What the device state and docs call the two ways a kick reaches the device. */
    public static final String NOTIFY_IOEVENTFD = "ioeventfd";
    public static final String NOTIFY_MMIO_EXIT = "mmio-exit";
    /** The {@code notify} parameter, as device descriptions list it. */
    public static final String NOTIFY_HELP = "notify=ioeventfd|mmio-exit (how kicks arrive; ioeventfd falls back to exits where the VM has none)";

    /** Opens a doorbell on QueueNotify; empty where the VM has none. */
    @FunctionalInterface
    interface DoorbellSource {
        Optional<Doorbell> open();
    }

    private final String type;
    private final GuestMemory memory;
    private final VirtioBackend backend;
    private final long offered;
    private final SplitQueue[] queues;
    private final int[] queueNum;
    private final long[] desc;
    private final long[] driver;
    private final long[] device;

    private int status;
    private long driverFeatures;
    private int deviceFeaturesSel;
    private int driverFeaturesSel;
    private int queueSel;
    private int interruptStatus;
    /** Bumped by {@link #configChanged()}: a driver rereads the config space when it changes under it. */
    private int configGeneration;
    private long errors;
    private String lastError = "";
    /** The interrupt line, or null where the VM has none. */
    private InterruptLine line;

    /** Where QueueNotify doorbells come from; null: every kick is an MMIO exit. */
    private DoorbellSource doorbells;
    /** The doorbell on QueueNotify, from DRIVER_OK until a reset, DEVICE_NEEDS_RESET or close. */
    private Doorbell doorbell;
    /** Serves {@link #doorbell}; started with the first one, ends on close or when the VM stops. */
    private Thread notifyThread;
    private String notifyThreadName = "nxia-virtio-notify";
    /** Ends the VM when serving a kick on the notify thread fails outside the protocol (a device bug), as it would on the vCPU. */
    private Consumer<String> failVm = reason -> { };
    private boolean closed;
    private String noDoorbell = "";
    private long kicksByExit;
    private long kicksByDoorbell;

    public VirtioMmioTransport(String type, GuestMemory memory, VirtioBackend backend) {
        this.type = type;
        this.memory = memory;
        this.backend = backend;
        this.offered = F_VERSION_1 | SplitQueue.QUEUE_FEATURES | backend.features();
        int n = backend.queueCount();
        this.queues = new SplitQueue[n];
        this.queueNum = new int[n];
        this.desc = new long[n];
        this.driver = new long[n];
        this.device = new long[n];
        for (int i = 0; i < n; i++) {
            queues[i] = new SplitQueue(memory, QUEUE_MAX);
        }
    }

    /** {@link #attach(DeviceContext, DeviceConfig, VirtioBackend)} with no parameters: kicks by doorbell where the VM has them. */
    public static VirtioMmioTransport attach(DeviceContext context, String type, VirtioBackend backend) {
        return attach(context, new DeviceConfig(type, Map.of()), backend);
    }

    /**
     * Builds the transport for {@code backend} and claims its window in the
     * VM's device area. {@code config}'s {@code notify} parameter picks how
     * kicks arrive: {@code ioeventfd} (the default; falls back to MMIO exits
     * where the VM has no doorbells) or {@code mmio-exit}.
     *
     * @throws IllegalArgumentException for another {@code notify} value
     */
    public static VirtioMmioTransport attach(DeviceContext context, DeviceConfig config, VirtioBackend backend) {
        String notify = config.get("notify", NOTIFY_IOEVENTFD);
        if (!notify.equals(NOTIFY_IOEVENTFD) && !notify.equals(NOTIFY_MMIO_EXIT)) {
            throw new IllegalArgumentException("device " + config.type() + ": notify=" + notify + " is not a notify path; give notify="
                    + NOTIFY_IOEVENTFD + " (the default, MMIO exits where the VM has no doorbells) or notify=" + NOTIFY_MMIO_EXIT);
        }
        VirtioMmioTransport transport = new VirtioMmioTransport(config.type(), context.memory(), backend);
        long base = context.claimMmio(WINDOW, transport);
        transport.line = context.claimIrq().orElse(null);
        transport.notifyThreadName = "nxia-" + context.vmId() + "-" + config.type() + "-notify";
        transport.failVm = context::fail;
        if (notify.equals(NOTIFY_IOEVENTFD)) {
            transport.doorbells = () -> context.createDoorbell(base + QUEUE_NOTIFY, 4);
        } else {
            transport.noDoorbell = "notify=" + NOTIFY_MMIO_EXIT + " asked";
        }
        return transport;
    }

    /** Kicks on QueueNotify come from doorbells {@code source} opens (tests; {@link #attach} wires the VM's). */
    synchronized void useDoorbells(DoorbellSource source) {
        doorbells = source;
    }

    @Override
    public String type() {
        return type;
    }

    @Override
    public synchronized long read(long offset, int size) {
        if (offset >= CONFIG) {
            return offset - CONFIG < WINDOW - CONFIG ? backend.readConfig((int) (offset - CONFIG), size) : 0;
        }
        if (size != 4 || (offset & 3) != 0) {
            return 0;   // registers are 32-bit; anything else reads as zero (spec 4.2.2.2)
        }
        return switch ((int) offset) {
            case MAGIC_VALUE -> MAGIC;
            case VERSION -> 2;
            case DEVICE_ID -> backend.deviceId();
            case VENDOR_ID -> VENDOR;
            case DEVICE_FEATURES -> deviceFeaturesSel == 0 ? (int) offered : deviceFeaturesSel == 1 ? (int) (offered >>> 32) : 0;
            case QUEUE_NUM_MAX -> selected() >= 0 ? QUEUE_MAX : 0;
            case QUEUE_READY -> selected() >= 0 && queues[queueSel].isActive() ? 1 : 0;
            case INTERRUPT_STATUS -> interruptStatus | backend.interruptStatusAlways();
            case STATUS -> status;
            case CONFIG_GENERATION -> configGeneration;
            // no device here has a shared memory region: "no such region" is all ones, not a region of
            // length 0 at 0 (which Linux's virtio-fs tries to reserve, and then fails its probe)
            case SHM_LEN_LOW, SHM_LEN_HIGH, SHM_BASE_LOW, SHM_BASE_HIGH -> -1;
            default -> 0;
        } & 0xffff_ffffL;
    }

    @Override
    public synchronized void write(long offset, int size, long value) {
        if (offset >= CONFIG || size != 4 || (offset & 3) != 0) {
            return;   // config space is read-only for these devices; odd-sized register writes are ignored
        }
        int v = (int) value;
        switch ((int) offset) {
            case DEVICE_FEATURES_SEL -> deviceFeaturesSel = v;
            case DRIVER_FEATURES -> setDriverFeatures(v);
            case DRIVER_FEATURES_SEL -> driverFeaturesSel = v;
            case QUEUE_SEL -> queueSel = v;
            case QUEUE_NUM -> setQueueField(queueNum, v & 0xffff);
            case QUEUE_DESC_LOW -> setLow(desc, v);
            case QUEUE_DESC_HIGH -> setHigh(desc, v);
            case QUEUE_DRIVER_LOW -> setLow(driver, v);
            case QUEUE_DRIVER_HIGH -> setHigh(driver, v);
            case QUEUE_DEVICE_LOW -> setLow(device, v);
            case QUEUE_DEVICE_HIGH -> setHigh(device, v);
            case QUEUE_READY -> setQueueReady(v);
            case QUEUE_NOTIFY -> notify(v);
            case INTERRUPT_ACK -> interruptStatus &= ~v;
            case STATUS -> setStatus(v);
            default -> {
                // read-only or unknown register: ignored
            }
        }
    }

    private int selected() {
        return queueSel >= 0 && queueSel < queues.length ? queueSel : -1;
    }

    private void setDriverFeatures(int v) {
        if ((status & S_FEATURES_OK) != 0) {
            return;   // features are fixed once accepted
        }
        if (driverFeaturesSel == 0) {
            driverFeatures = (driverFeatures & 0xffff_ffff_0000_0000L) | Integer.toUnsignedLong(v);
        } else if (driverFeaturesSel == 1) {
            driverFeatures = (driverFeatures & 0xffff_ffffL) | (Integer.toUnsignedLong(v) << 32);
        }
    }

    private void setQueueField(int[] field, int v) {
        if (selected() >= 0 && !queues[queueSel].isActive()) {
            field[queueSel] = v;
        }
    }

    private void setLow(long[] field, int v) {
        if (selected() >= 0 && !queues[queueSel].isActive()) {
            field[queueSel] = (field[queueSel] & 0xffff_ffff_0000_0000L) | Integer.toUnsignedLong(v);
        }
    }

    private void setHigh(long[] field, int v) {
        if (selected() >= 0 && !queues[queueSel].isActive()) {
            field[queueSel] = (field[queueSel] & 0xffff_ffffL) | (Integer.toUnsignedLong(v) << 32);
        }
    }

    private void setQueueReady(int v) {
        int q = selected();
        if (q < 0) {
            return;
        }
        if (v == 0) {
            queues[q].reset();
            return;
        }
        if (queues[q].isActive()) {
            return;
        }
        try {
            // The queue checks size and geometry once, here, against guest RAM.
            queues[q].configure(queueNum[q], desc[q], driver[q], device[q]);
            queues[q].negotiate(driverFeatures & SplitQueue.QUEUE_FEATURES);
            queues[q].activate();
        } catch (VirtqueueException | IllegalArgumentException e) {
            queues[q].reset();
            needsReset("queue " + q + ": " + e.getMessage());
        }
    }

    /** A kick by MMIO exit, on the vCPU thread: {@code q} is the queue the driver named. */
    private void notify(int q) {
        kicksByExit++;
        if ((status & S_NEEDS_RESET) != 0) {
            return;
        }
        if ((status & S_DRIVER_OK) == 0) {
            needsReset("queue notify before DRIVER_OK");
            return;
        }
        if (q < 0 || q >= queues.length || !queues[q].isActive()) {
            needsReset("notify of queue " + q + ", which is not ready");
            return;
        }
        if (serve(q)) {
            signalUsed();
        }
    }

    /** Serves every available chain of {@code q}; false when the driver broke the protocol (the device then needs a reset). */
    private boolean serve(int q) {
        try {
            backend.process(q);
            if (backend.servedElsewhere()) {
                return true;   // the back-end owns avail_event and the used ring: nothing here to publish
            }
            // With EVENT_IDX a driver kicks only past avail_event: publish it (Linux's drivers
            // stop kicking otherwise) and serve what arrived before it was published; again while
            // that takes chains, so avail_event ends at the last one taken (published behind it,
            // the driver's next chains were never kicked: virtio-net's transmit queue stalled).
            // Not while it takes none: a queue whose buffers wait for host input stays available.
            while (queues[q].isActive() && !queues[q].isBroken()) {
                int taken = queues[q].lastAvailIdx();
                if (!queues[q].enableNotification()) {
                    break;
                }
                backend.process(q);
                if (queues[q].lastAvailIdx() == taken) {
                    break;
                }
            }
            return true;
        } catch (VirtqueueException e) {
            needsReset("queue " + q + ": " + e.getMessage());
            return false;
        }
    }

    // ---- kicks by doorbell: the notify thread ----

    /**
     * Puts a doorbell on QueueNotify (at DRIVER_OK), or stays on MMIO exits
     * where the VM has none. One notify thread per device, not one per VM: a
     * doorbell's {@code await} blocks on one eventfd (one thread for many would
     * need an epoll set in the backend API), and a slow request of one device
     * (a blk flush) then never delays another's kicks; a VM has a handful of
     * virtio devices. The thread outlives resets (it waits for the next
     * DRIVER_OK) so a driver that resets in a loop costs no thread each time.
     */
    private void armDoorbell() {
        if (doorbells == null || closed || doorbell != null) {
            return;
        }
        try {
            doorbell = doorbells.open().orElse(null);
        } catch (RuntimeException e) {
            noDoorbell = "the VM refused a doorbell: " + e.getMessage();
        }
        if (doorbell == null) {
            if (noDoorbell.isEmpty()) {
                noDoorbell = "the VM has no doorbells";
            }
            return;
        }
        if (notifyThread == null) {
            notifyThread = Thread.ofPlatform().daemon().name(notifyThreadName).start(this::serveDoorbells);
        } else {
            notifyAll();
        }
    }

    /** Back to MMIO exits (reset, DEVICE_NEEDS_RESET, close): the notify thread drops what the old doorbell counted. */
    private void disarmDoorbell() {
        Doorbell bell = doorbell;
        if (bell != null) {
            doorbell = null;
            bell.close();
        }
    }

    /** The notify thread: waits for a doorbell, serves its rings until it closes, and again. */
    private void serveDoorbells() {
        while (true) {
            Doorbell bell;
            synchronized (this) {
                while (doorbell == null && !closed) {
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        notifyThread = null;
                        return;
                    }
                }
                if (closed) {
                    return;
                }
                bell = doorbell;
            }
            long writes;
            try {
                while ((writes = bell.await()) > 0) {
                    rung(bell, writes);
                }
            } catch (RuntimeException e) {
                synchronized (this) {
                    notifyThread = null;
                }
                failVm.accept(type + ": serving a kick failed: " + e);
                return;
            }
            synchronized (this) {
                if (doorbell == bell) {
                    // closed from outside: the VM stopped; the doorbell stays the record of the path taken
                    notifyThread = null;
                    return;
                }
            }
        }
    }

    /**
     * The guest kicked {@code writes} times through {@code bell}. The doorbell
     * does not say which queue (it matches any value), so every ready queue
     * with available chains is served: a kick with nothing new is harmless,
     * and a driver kicks only after making chains available.
     */
    private synchronized void rung(Doorbell bell, long writes) {
        if (bell != doorbell) {
            return;   // counted before a reset closed it
        }
        kicksByDoorbell += writes;
        if ((status & S_DRIVER_OK) == 0) {
            needsReset("queue notify without DRIVER_OK");   // the driver took it back without a reset
            return;
        }
        if (backend.servedElsewhere()) {
            // which queue is not known, and the back-end alone knows what it took: each ready queue's kick is passed on
            for (int q = 0; q < queues.length; q++) {
                if (queues[q].isActive()) {
                    serve(q);
                }
            }
            return;
        }
        for (int q = 0; q < queues.length; q++) {
            if (queues[q].isActive() && !queues[q].isBroken() && queues[q].hasAvailable() && !serve(q)) {
                return;
            }
        }
        signalUsed();
    }

    /**
     * Ends the notify thread and closes the doorbell: the VM is being
     * destroyed. Kicks arrive as MMIO exits afterwards, were any to come.
     */
    @Override
    public void close() {
        Thread thread;
        synchronized (this) {
            closed = true;
            disarmDoorbell();
            notifyAll();
            thread = notifyThread;
            notifyThread = null;
        }
        if (thread != null && thread != Thread.currentThread()) {
            try {
                thread.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Interrupts once if any queue has used buffers its driver wants to hear of:
     * serving one queue can fill another (vsock answers on its receive queue).
     */
    private void signalUsed() {
        if (backend.servedElsewhere()) {
            return;   // the back-end decides from the rings it writes, and its device interrupts (usedBuffers)
        }
        boolean wanted = false;
        for (SplitQueue queue : queues) {
            if (queue.isActive() && !queue.isBroken() && queue.needsNotification()) {
                wanted = true;
            }
        }
        if (wanted) {
            interrupt(INT_USED_BUFFER);
        }
    }

    private void setStatus(int v) {
        if (v == 0) {
            reset();
            return;
        }
        int next = v & 0xff;
        if ((next & S_FEATURES_OK) != 0 && (status & S_FEATURES_OK) == 0) {
            // WHY: a driver may only accept what was offered, and must speak virtio 1.x.
            if ((driverFeatures & ~offered) != 0 || (driverFeatures & F_VERSION_1) == 0) {
                next &= ~S_FEATURES_OK;
            }
        }
        if ((next & S_DRIVER_OK) != 0 && (status & S_DRIVER_OK) == 0) {
            if ((next & S_FEATURES_OK) == 0) {
                needsReset("DRIVER_OK without FEATURES_OK");
                return;
            }
            status = next | (status & S_NEEDS_RESET);
            backend.activate(driverFeatures, queues);
            if ((status & S_NEEDS_RESET) == 0) {
                armDoorbell();
            }
            return;
        }
        status = next | (status & S_NEEDS_RESET);
    }

    private void reset() {
        disarmDoorbell();
        status = 0;
        driverFeatures = 0;
        deviceFeaturesSel = 0;
        driverFeaturesSel = 0;
        queueSel = 0;
        interruptStatus = 0;
        for (int i = 0; i < queues.length; i++) {
            queues[i].reset();
            queueNum[i] = 0;
            desc[i] = 0;
            driver[i] = 0;
            device[i] = 0;
        }
        backend.reset();
    }

    private void needsReset(String why) {
        disarmDoorbell();   // until the reset, kicks exit and are refused there
        status |= S_NEEDS_RESET;
        interrupt(INT_CONFIG_CHANGE);
        errors++;
        lastError = why;
    }

    /**
     * Before DRIVER_OK nothing is raised (virtio 1.2 §2.1.2, §3.1.2): the driver reads the
     * configuration and status when it sets up. An early pulse also reaches a guest that has no
     * handler yet: a Linux VM with ACPI (hardware-reduced) never programs the legacy PIC, which
     * KVM's reset left at vector base 0 and wired to the boot CPU, so GSI 5 came in as vector 5
     * (#BR, "Oops: bounds") when virtio-net said its link was up during early boot.
     */
    private void interrupt(int cause) {
        if ((status & S_DRIVER_OK) == 0) {
            return;
        }
        interruptStatus |= cause;
        if (line != null) {
            line.pulse();
        }
    }

    /**
     * Tells the driver that the device's configuration changed (virtio-net's
     * link status): a new generation and a configuration-change interrupt.
     */
    public synchronized void configChanged() {
        configGeneration++;
        interrupt(INT_CONFIG_CHANGE);
    }

    /**
     * Tells the driver that the device put buffers in a used ring outside a
     * notification (host-side input); call under {@link #locked}.
     */
    public void usedBuffers() {
        interrupt(INT_USED_BUFFER);
    }

    /**
     * Saved state: the transport's registers, every queue's state and the
     * backend's; and how kicks arrive: {@code notifyPath} is {@value #NOTIFY_IOEVENTFD}
     * while a doorbell is on QueueNotify (and after the VM stopped with one),
     * otherwise {@value #NOTIFY_MMIO_EXIT} with why in {@code noDoorbell}
     * (empty before DRIVER_OK), and the kicks each way; {@code rings}, each active queue's
     * indices as guest memory holds them ({@link SplitQueue#rings}).
     */
    public record State(String type, int status, long driverFeatures, int queueSel, int interruptStatus,
                        List<SplitQueueState> queues, List<String> rings, long errors, String lastError, String notifyPath,
                        String noDoorbell, long kicksByDoorbell, long kicksByExit, Record backend) {
    }

    @Override
    public synchronized Record state() {
        SplitQueueState[] saved = new SplitQueueState[queues.length];
        String[] rings = new String[queues.length];
        for (int i = 0; i < queues.length; i++) {
            saved[i] = queues[i].isActive() ? queues[i].state() : null;
            rings[i] = queues[i].rings();
        }
        return new State(type, status, driverFeatures, queueSel, interruptStatus, Arrays.asList(saved), List.of(rings), errors, lastError,
                doorbell != null ? NOTIFY_IOEVENTFD : NOTIFY_MMIO_EXIT, doorbell != null ? "" : noDoorbell,
                kicksByDoorbell, kicksByExit, backend.state());
    }

    // ---- snapshots ----

    /**
     * What a snapshot keeps of one queue: the registers the driver wrote and,
     * once it made the queue ready, where the device is in its rings
     * ({@code ready}, null before). The rings themselves are guest RAM.
     */
    record SavedQueue(int num, long desc, long driver, long device, SplitQueueState ready) {
    }

    /**
     * What a snapshot keeps of the device: the transport's registers (both
     * feature selects included) and every queue; the counters, the doorbell and
     * the notify thread are the host's. EVENT_IDX is kept with each queue's
     * features, its event indices are in guest RAM. The last used index the
     * device signalled is the used index: a quiesced device has signalled (or
     * been told not to) every used buffer.
     */
    record Saved(int status, long driverFeatures, int deviceFeaturesSel, int driverFeaturesSel, int queueSel,
                 int interruptStatus, int configGeneration, List<SavedQueue> queues, byte[] device) {
    }

    static final int SAVED_VERSION = 1;
    /** The most a device type's own saved state may have ({@link VirtioBackend#saveState}). */
    static final int MAX_DEVICE_STATE = 4096;

    /**
     * @throws IllegalStateException when a queue has a request in flight: a
     *         device is saved quiesced (every device here answers a request
     *         before its notification returns, so only a device bug leaves one)
     */
    @Override
    public synchronized byte[] saveState() {
        return encode(type, saved());
    }

    /** The saved state now; see {@link #saveState()}. */
    synchronized Saved saved() {
        List<SavedQueue> saved = new ArrayList<>(queues.length);
        for (int q = 0; q < queues.length; q++) {
            SplitQueueState ready = queues[q].isActive() ? queues[q].state() : null;
            if (ready != null && inFlight(ready) != 0) {
                throw new IllegalStateException("%s cannot be saved: queue %d has %d requests in flight (it must be quiesced)"
                        .formatted(type, q, inFlight(ready)));
            }
            saved.add(new SavedQueue(queueNum[q], desc[q], driver[q], device[q], ready));
        }
        return new Saved(status, driverFeatures, deviceFeaturesSel, driverFeaturesSel, queueSel, interruptStatus,
                configGeneration, saved, backend.saveState());
    }

    /** {@code saved} in {@link SavedStateCodec}'s encoding, as {@code type}'s record; {@link #readSaved} reads it back. */
    static byte[] encode(String type, Saved saved) {
        SavedStateCodec.Writer out = SavedStateCodec.writer(type, SAVED_VERSION).u8(saved.status()).i64(saved.driverFeatures())
                .i32(saved.deviceFeaturesSel()).i32(saved.driverFeaturesSel()).i32(saved.queueSel())
                .u8(saved.interruptStatus()).i32(saved.configGeneration()).u8(saved.queues().size());
        for (SavedQueue queue : saved.queues()) {
            out.u16(queue.num()).i64(queue.desc()).i64(queue.driver()).i64(queue.device()).bool(queue.ready() != null);
            if (queue.ready() != null) {
                out.i64(queue.ready().features()).u16(queue.ready().lastAvailIdx()).u16(queue.ready().usedIdx())
                        .bool(queue.ready().broken());
            }
        }
        return out.bytes(saved.device()).toBytes();
    }

    private static int inFlight(SplitQueueState queue) {
        return (queue.lastAvailIdx() - queue.usedIdx()) & 0xffff;
    }

    /**
     * Puts a transport that no driver has touched yet into {@code bytes}'
     * state. Everything is checked before anything is applied: a ready queue
     * as the driver's QueueReady is (size a power of two up to
     * {@value #QUEUE_MAX}, rings aligned and inside guest RAM, ring features
     * only), indices 16-bit with no request in flight, accepted features
     * (FEATURES_OK) offered and virtio 1.x, DRIVER_OK only after FEATURES_OK,
     * interrupt status bits the transport sets, and the device type's own
     * state ({@link VirtioBackend#checkState}). The backend is then activated as
     * at DRIVER_OK and told it was restored. Guest RAM must already be restored:
     * a backend may write into its rings (vsock's transport reset event).
     *
     * @throws IllegalArgumentException for a malformed or out-of-range state; the transport stays as created
     * @throws IllegalStateException when a driver already touched this transport
     */
    @Override
    public synchronized void restoreState(byte[] bytes) {
        for (SplitQueue queue : queues) {
            if (queue.isActive()) {
                throw new IllegalStateException(type + ": only a device as created is restored (a queue is ready)");
            }
        }
        if (status != 0 || closed) {
            throw new IllegalStateException(type + ": only a device as created is restored (status " + status + ")");
        }
        SavedStateCodec.Reader in = SavedStateCodec.reader(bytes, type, SAVED_VERSION);
        Saved saved = readSaved(in);
        check(saved, in);
        Runnable applyDevice;
        try {
            applyDevice = backend.checkState(saved.device());
        } catch (IllegalArgumentException e) {
            throw in.refuse("device state: " + e.getMessage());
        }
        status = saved.status();
        driverFeatures = saved.driverFeatures();
        deviceFeaturesSel = saved.deviceFeaturesSel();
        driverFeaturesSel = saved.driverFeaturesSel();
        queueSel = saved.queueSel();
        interruptStatus = saved.interruptStatus();
        configGeneration = saved.configGeneration();
        for (int q = 0; q < queues.length; q++) {
            SavedQueue queue = saved.queues().get(q);
            queueNum[q] = queue.num();
            desc[q] = queue.desc();
            driver[q] = queue.driver();
            device[q] = queue.device();
            if (queue.ready() != null) {
                queues[q].restore(queue.ready());   // checked above on a scratch queue over the same memory
            }
        }
        applyDevice.run();
        if ((status & S_DRIVER_OK) == 0) {
            return;
        }
        backend.activate(driverFeatures, queues);
        if ((status & S_NEEDS_RESET) != 0) {
            return;
        }
        armDoorbell();
        try {
            for (SplitQueue queue : queues) {
                if (queue.isActive() && !queue.isBroken()) {
                    queue.needsNotification();   // the used buffers so far were signalled before the snapshot
                }
            }
            if (backend.restored()) {
                configChanged();
            }
            signalUsed();
        } catch (VirtqueueException e) {
            needsReset("after restore: " + e.getMessage());   // the rings in guest RAM are broken, not the saved state
        }
    }

    private Saved readSaved(SavedStateCodec.Reader in) {
        int savedStatus = in.u8();
        long features = in.i64();
        int deviceSel = in.i32();
        int driverSel = in.i32();
        int sel = in.i32();
        int interrupts = in.u8();
        int generation = in.i32();
        int count = in.u8();
        if (count != queues.length) {
            throw in.refuse(count + " queues saved; this device has " + queues.length);
        }
        List<SavedQueue> saved = new ArrayList<>(count);
        for (int q = 0; q < count; q++) {
            int num = in.u16();
            long d = in.i64();
            long a = in.i64();
            long u = in.i64();
            SplitQueueState ready = in.bool() ? new SplitQueueState(num, d, a, u, in.i64(), in.u16(), in.u16(), in.bool()) : null;
            saved.add(new SavedQueue(num, d, a, u, ready));
        }
        byte[] device = in.bytes(MAX_DEVICE_STATE);
        in.end();
        return new Saved(savedStatus, features, deviceSel, driverSel, sel, interrupts, generation, saved, device);
    }

    private void check(Saved saved, SavedStateCodec.Reader in) {
        int st = saved.status();
        if ((st & S_DRIVER_OK) != 0 && (st & S_FEATURES_OK) == 0) {
            throw in.refuse("status 0x%x has DRIVER_OK without FEATURES_OK".formatted(st));
        }
        if ((st & S_FEATURES_OK) != 0) {
            // WHY: FEATURES_OK is the device's acceptance; an edited snapshot must not make it accept what it never offered.
            if ((saved.driverFeatures() & ~offered) != 0) {
                throw in.refuse("accepted features 0x%x include 0x%x, never offered (offered 0x%x)"
                        .formatted(saved.driverFeatures(), saved.driverFeatures() & ~offered, offered));
            }
            if ((saved.driverFeatures() & F_VERSION_1) == 0) {
                throw in.refuse("accepted features 0x%x lack VIRTIO_F_VERSION_1".formatted(saved.driverFeatures()));
            }
        }
        if ((saved.interruptStatus() & ~(INT_USED_BUFFER | INT_CONFIG_CHANGE)) != 0) {
            throw in.refuse("interrupt status 0x%x has bits the transport never sets".formatted(saved.interruptStatus()));
        }
        for (int q = 0; q < saved.queues().size(); q++) {
            SplitQueueState ready = saved.queues().get(q).ready();
            if (ready == null) {
                continue;
            }
            try {
                new SplitQueue(memory, QUEUE_MAX).restore(ready);
            } catch (VirtqueueException e) {
                throw in.refuse("queue " + q + ": " + e.getMessage());
            }
            if (inFlight(ready) != 0) {
                throw in.refuse("queue %d has %d requests in flight (last available %d, used %d); a device is saved quiesced"
                        .formatted(q, inFlight(ready), ready.lastAvailIdx(), ready.usedIdx()));
            }
        }
    }

    /**
     * The device's back-end failed and its queues cannot be served (a vhost-user back-end that
     * went away or did not answer in time): DEVICE_NEEDS_RESET with a configuration-change
     * interrupt, as for a driver error, so the driver is told and no kick is taken until it resets
     * the device; {@code why} becomes the state's {@code lastError}. Nothing before DRIVER_OK
     * (the driver has not started the device, or has reset it since).
     */
    public synchronized void backendFailed(String why) {
        if ((status & S_DRIVER_OK) != 0) {
            needsReset(why);
        }
    }

    /**
     * Runs {@code action} under the transport's lock: for host threads that feed
     * a queue (console input, vsock I/O). A driver error it meets sets
     * DEVICE_NEEDS_RESET, as on a notify, instead of reaching the host thread.
     */
    public synchronized void locked(Runnable action) {
        try {
            action.run();
            // host-side delivery used buffers: an interrupt-driven driver (Linux) only looks when told
            signalUsed();
        } catch (VirtqueueException e) {
            needsReset("host-side delivery: " + e.getMessage());
        }
    }
}
