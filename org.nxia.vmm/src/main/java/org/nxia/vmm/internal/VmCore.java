package org.nxia.vmm.internal;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

import org.nxia.vmm.spi.DirtyLog;
import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.ExitHandler;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.GuestRange;
import org.nxia.vmm.api.HostCallContext;
import org.nxia.vmm.api.LiveRam;
import org.nxia.vmm.spi.Hypervisor;
import org.nxia.vmm.spi.HypervisorException;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.spi.InterruptController;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.Partition;
import org.nxia.vmm.spi.PlacementOutcome;
import org.nxia.vmm.spi.RamFile;
import org.nxia.vmm.spi.SharedMapping;
import org.nxia.vmm.spi.SharedRam;
import org.nxia.vmm.spi.Synic;
import org.nxia.vmm.spi.SynicHost;
import org.nxia.vmm.spi.SyntheticInterrupt;
import org.nxia.vmm.spi.Vcpu;
import org.nxia.vmm.spi.VcpuState;
import org.nxia.vmm.spi.VcpuStop;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmInfo;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmSpec;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.api.device.GracefulShutdown;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.bench.ExitTimeRecorder;
import org.nxia.vmm.internal.bus.Bus;

/**
 * What every VM has, whatever its {@link VmKind}: a partition and its memory,
 * a bus, doorbells, a console log, devices, N vCPUs on pooled platform
 * threads, a stop reason where the first cause wins, and one lifecycle
 * (start, stop, await, destroy with the destroy actions of host calls).
 * Anything the guest does wrong stops this VM only.
 */
final class VmCore implements ManagedVm, ExitHandler, HostCallContext, ExitTimeRecorder {

    /** GSIs devices get from {@link DeviceContext#claimIrq()}, in order: free ISA lines, then the IOAPIC-only pins. */
    static final int[] FREE_GSIS = {5, 6, 7, 9, 10, 11, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
    /** How long destroy waits for the vCPUs to leave the guest before it cancels their threads. */
    static final Duration DESTROY_WAIT = Duration.ofSeconds(5);
    private static final VcpuStop NOT_ENTERED = new VcpuStop(VcpuStop.Kind.REQUESTED, "stopped before it entered the guest");
    private static final long PAGE = 4096;

    private final String id;
    private final VmKind kind;
    private final HypervisorInfo hypervisor;
    private final Partition partition;
    private final VcpuPinning pinning;
    private final WrittenPages memory;
    private final InterruptController interrupts;
    private final Bus bus = new Bus();
    private final DeviceDoorbells doorbells;
    private final ConsoleLog console = new ConsoleLog();
    private final List<Device> devices = new ArrayList<>();
    private final List<Vcpu> vcpus = new ArrayList<>();
    private final PortalWindow portals;
    private final boolean[] claimedGsis = new boolean[InterruptController.IOAPIC_PINS];
    private long nextMmio;
    private final ExecutorService vcpuThreads;
    private final Duration destroyWait;
    private final List<Future<?>> vcpuTasks = new ArrayList<>();
    private final AtomicInteger running = new AtomicInteger();
    /** Counted down when the VM stops; a new one for each run of a sandbox reset in place ({@link #rearm}). */
    private volatile CountDownLatch stopped = new CountDownLatch(1);
    /** Host-call state that lives in guest RAM lets go of it here, before the partition is closed. */
    private final List<Runnable> destroyActions = new ArrayList<>();

    private volatile VmState state = VmState.CREATED;
    private volatile boolean closed;
    private volatile VmResult result;
    private long startedAt;

    // Pause: asked for (vCPU threads park at their next chance), counted (each pause kicks the vCPUs once), parked threads.
    private boolean pauseRequested;
    private long pauses;
    private int parked;

    // Why the vCPUs were asked to stop: the first cause wins.
    private VmResult.Reason stopReason;
    private String stopDetail;
    private final SynicForward synicHost = new SynicForward();
    private int exitStatus = -1;

    // In-place reset (a sandbox): the hypervisor's log of vCPU writes and the bitmap both logs are gathered in.
    private DirtyLog dirtyLog;
    private long[] written;
    // Pre-copy: the live RAM reader open now, if any (it shares the hypervisor's log; a sandbox's VM has none).
    private LiveRamReader liveRam;

    private volatile long vcpuAllocated = -1;
    private volatile long unservedAccesses;

    VmCore(String id, VmKind kind, Hypervisor hv, ExecutorService vcpuThreads, Map<String, DeviceFactory> factories) {
        this(id, kind, hv, vcpuThreads, factories, DESTROY_WAIT);
    }

    VmCore(String id, VmKind kind, Hypervisor hv, ExecutorService vcpuThreads, Map<String, DeviceFactory> factories,
           Duration destroyWait) {
        this.id = id;
        this.destroyWait = destroyWait;
        this.kind = kind;
        this.hypervisor = hv.info();
        this.vcpuThreads = vcpuThreads;
        this.nextMmio = kind.windows().mmioBase();
        this.pinning = VcpuPinning.of(kind.spec().placement(), kind.spec().vcpus(), hv.hostAffinity(), hypervisor.backend());
        this.partition = hv.createPartition(kind.spec().memoryBytes(), kind.spec().placement());
        this.doorbells = new DeviceDoorbells(partition, bus);
        try {
            this.memory = new WrittenPages(partition.memory());
            this.portals = new PortalWindow(id, partition, memory, kind);
            this.interrupts = !kind.interrupts() ? null : partition.createInterruptController().orElseThrow(
                    () -> new HypervisorException("create interrupt controller", 0, "the " + hypervisor.backend()
                            + " backend has no in-kernel interrupt controller here; a stock Linux kernel needs one"));
            if (kind.hyperV()) {
                partition.enableHyperV(synicHost);
            }
            kind.load(this);
            for (DeviceConfig config : kind.devices()) {
                attach(config, factories);
            }
            for (int i = 0; i < kind.spec().vcpus(); i++) {
                vcpus.add(partition.createVcpu(i));
            }
            kind.boot(memory, vcpus.get(0));
        } catch (RuntimeException e) {
            closeDevices();
            partition.close();
            throw e;
        }
    }

    private void attach(DeviceConfig config, Map<String, DeviceFactory> factories) {
        DeviceFactory factory = factories.get(config.type());
        if (factory == null) {
            throw new IllegalArgumentException("no device type '" + config.type() + "' is installed (have: "
                    + String.join(", ", new TreeSet<>(factories.keySet())) + "); " + kind.missingDeviceHint());
        }
        Context context = new Context();
        devices.add(factory.create(config, context));
        kind.announce(List.copyOf(context.windows), context.firstWindowSize, context.line);
    }

    /**
     * The partition's SynIC host: the device that claimed it (a VMBus server), or nobody, whose
     * hypercalls are refused as unknown. Claimed while devices are made, before any vCPU runs.
     */
    private static final class SynicForward implements SynicHost {
        private volatile SynicHost claimed = SynicHost.NONE;

        synchronized void claim(SynicHost host) {
            if (claimed != SynicHost.NONE) {
                throw new IllegalStateException("another device serves this VM's SynIC already");
            }
            claimed = host;
        }

        @Override
        public void synicChanged(int vcpu, long control, long eventPage, long messagePage) {
            claimed.synicChanged(vcpu, control, eventPage, messagePage);
        }

        @Override
        public long hypercall(int vcpu, long control, long input, long output) {
            return claimed.hypercall(vcpu, control, input, output);
        }
    }

    // ---- what the kinds use while loading ----

    /** The VM's bus, for a kind's own ports. */
    Bus bus() {
        return bus;
    }

    ConsoleLog consoleLog() {
        return console;
    }

    HypervisorInfo hypervisor() {
        return hypervisor;
    }

    /** Ends the VM as if the guest exited with {@code status}; the status counts only if this is the first cause. */
    void exitWith(int status) {
        stop(VmResult.Reason.EXITED, null, status);
    }

    /** What one device of this VM sees; remembers its windows and first line for the kind to announce. */
    private final class Context implements DeviceContext {
        final List<Long> windows = new ArrayList<>();
        long firstWindowSize;
        InterruptLine line;

        @Override
        public String vmId() {
            return id;
        }

        @Override
        public GuestMemory memory() {
            return memory;
        }

        @Override
        public List<SharedRam> sharedRam() {
            return partition.sharedRam();
        }

        @Override
        public void claimPorts(int first, int count, PortDevice device) {
            bus.addPorts(first, count, device);
        }

        @Override
        public long claimMmio(long size, MmioDevice device) {
            VmKind.Windows w = kind.windows();
            if (size <= 0 || size > w.mmioSize()) {
                throw new IllegalArgumentException("an MMIO window of " + size + " bytes is not possible");
            }
            long length = (size + PAGE - 1) & -PAGE;
            long base;
            synchronized (VmCore.this) {
                if (nextMmio + length > w.mmioBase() + w.mmioSize()) {
                    throw new IllegalArgumentException("the VM's device area (%d MiB at 0x%x) has no room for %d bytes"
                            .formatted(w.mmioSize() >> 20, w.mmioBase(), size));
                }
                base = nextMmio;
                bus.addMmio(base, length, device);
                nextMmio += length;
            }
            if (windows.isEmpty()) {
                firstWindowSize = length;
            }
            windows.add(base);
            return base;
        }

        @Override
        public SharedMapping mapPortal(String name, MemorySegment region, boolean readOnly, long doorbellGpa) {
            return portals.map(name, region, Optional.empty(), readOnly, doorbellGpa);
        }

        @Override
        public SharedMapping mapPortal(String name, MemorySegment region, Optional<Path> file, boolean readOnly, long doorbellGpa) {
            return portals.map(name, region, file, readOnly, doorbellGpa);
        }

        @Override
        public Optional<InterruptLine> claimIrq(int gsi) {
            if (interrupts == null) {
                return Optional.empty();
            }
            synchronized (claimedGsis) {
                if (gsi < 0 || gsi >= claimedGsis.length) {
                    throw new IllegalArgumentException("IRQ " + gsi + " does not exist: 0 to " + (claimedGsis.length - 1));
                }
                if (claimedGsis[gsi]) {
                    throw new IllegalArgumentException("IRQ " + gsi + " is already claimed by another device");
                }
                claimedGsis[gsi] = true;
            }
            InterruptLine l = interrupts.line(gsi);
            if (line == null) {
                line = l;
            }
            return Optional.of(l);
        }

        @Override
        public Optional<InterruptLine> claimIrq() {
            if (interrupts == null) {
                return Optional.empty();
            }
            synchronized (claimedGsis) {
                for (int gsi : FREE_GSIS) {
                    if (!claimedGsis[gsi]) {
                        return claimIrq(gsi);
                    }
                }
            }
            throw new IllegalArgumentException("every interrupt line is taken: at most " + FREE_GSIS.length + " interrupting devices");
        }

        @Override
        public Optional<Doorbell> createDoorbell(long address, int length) {
            return doorbells.create(address, length);
        }

        @Override
        public Optional<Synic> claimSynic(SynicHost host) {
            Objects.requireNonNull(host, "host");
            if (!kind.hyperV()) {
                return Optional.empty();
            }
            synicHost.claim(host);
            kind.announceVmbus();
            return Optional.of(new Synic() {
                @Override
                public int vcpus() {
                    return kind.spec().vcpus();
                }

                @Override
                public SyntheticInterrupt interrupt(int vcpu, int sint) {
                    return interrupts.syntheticInterrupt(vcpu, sint);
                }
            });
        }

        @Override
        public void console(byte[] bytes, int offset, int length) {
            console.append(bytes, offset, length);
        }

        @Override
        public void exit(int status) {
            exitWith(status);
        }

        @Override
        public void reset(String how) {
            stopWith(VmResult.Reason.RESET, kind.resetDetail(how));
        }

        @Override
        public void fail(String reason) {
            stopWith(VmResult.Reason.GUEST_ERROR, reason);
        }
    }

    private void closeDevices() {
        for (Device d : devices) {
            try {
                d.close();
            } catch (RuntimeException e) {
                // a device that fails to close must not keep the VM's memory alive
            }
        }
    }

    @Override
    public List<Device> devices() {
        return List.copyOf(devices);
    }

    @Override
    public boolean requestShutdown() {
        for (Device d : devices()) {
            if (d instanceof GracefulShutdown g && state() == VmState.RUNNING && g.requestShutdown()) {
                return true;
            }
        }
        return false;
    }

    // ---- HostCallContext ----

    @Override
    public VirtualMachine vm() {
        return this;
    }

    @Override
    public GuestMemory memory() {
        return memory;
    }

    @Override
    public void onDestroy(Runnable action) {
        synchronized (destroyActions) {
            if (!closed) {
                destroyActions.add(action);
                return;
            }
        }
        action.run();
    }

    // ---- ExitHandler: every vCPU thread, every exit; nothing here allocates unless the VM stops ----

    @Override
    public void portWrite(int port, int size, int value) {
        PortDevice h = bus.port(port);
        if (h != null) {
            h.write(port, size, value);
        } else if (kind.strictBus()) {
            stopWith(VmResult.Reason.GUEST_ERROR, "the guest wrote 0x%x to I/O port 0x%x, which no device serves"
                    .formatted(value, port));
        } else {
            unservedAccesses++;
        }
    }

    @Override
    public int portRead(int port, int size) {
        PortDevice h = bus.port(port);
        if (h != null) {
            return h.read(port, size);
        } else if (kind.strictBus()) {
            stopWith(VmResult.Reason.GUEST_ERROR, "the guest read I/O port 0x%x, which no device serves".formatted(port));
        } else {
            unservedAccesses++;
        }
        return -1;
    }

    @Override
    public void mmioWrite(long address, int size, long value) {
        Bus.MmioRoute r = bus.mmio(address);
        if (r != null) {
            r.device().write(address - r.base(), size, value);
        } else if (kind.strictBus()) {
            stopWith(VmResult.Reason.GUEST_ERROR, unservedWrite(address, size));
        } else {
            unservedAccesses++;
        }
    }

    private String unservedWrite(long address, int size) {
        PortalWindow.Slot p = portals.at(address);
        if (p != null && p.mapping().readOnly() && address < p.gpa() + p.mapping().size()) {
            return "the guest wrote %d bytes to read-only portal '%s' at offset 0x%x (address 0x%x)"
                    .formatted(size, p.name(), address - p.gpa(), address);
        } else if (p != null) {
            return "the guest wrote %d bytes at 0x%x, past the end of portal '%s' (%d bytes at 0x%x)"
                    .formatted(size, address, p.name(), p.mapping().size(), p.gpa());
        }
        return "the guest wrote %d bytes to MMIO address 0x%x, which no device serves".formatted(size, address);
    }

    @Override
    public long mmioRead(long address, int size) {
        Bus.MmioRoute r = bus.mmio(address);
        if (r != null) {
            return r.device().read(address - r.base(), size);
        } else if (kind.strictBus()) {
            stopWith(VmResult.Reason.GUEST_ERROR, "the guest read MMIO address 0x%x, which no device serves".formatted(address));
        } else {
            unservedAccesses++;
        }
        return -1;
    }

    // ---- lifecycle ----

    @Override
    public String id() {
        return id;
    }

    @Override
    public VmSpec spec() {
        return kind.spec();
    }

    @Override
    public VmState state() {
        return state;
    }

    @Override
    public void consoleSink(Appendable sink) {
        console.sink(sink);
    }

    @Override
    public Duration timeout() {
        return kind.timeout();
    }

    @Override
    public synchronized void start() {
        if (state != VmState.CREATED) {
            throw new IllegalStateException(id + " is " + state.name().toLowerCase() + "; only a created VM can be started");
        }
        state = VmState.RUNNING;
        startedAt = System.nanoTime();
        running.set(vcpus.size());
        for (Vcpu vcpu : vcpus) {
            vcpuTasks.add(vcpuThreads.submit(() -> runVcpu(vcpu)));
        }
    }

    /** Runs on a pooled platform thread, named for this VM and vCPU while it runs. */
    private void runVcpu(Vcpu vcpu) {
        Thread self = Thread.currentThread();
        String poolName = self.getName();
        self.setName("nxia-" + id + "-vcpu" + vcpu.id());
        // WHY the finally: an Error (a host function's StackOverflowError, an OutOfMemoryError) must still stop
        // the VM, or it stays RUNNING and await() never returns.
        List<Integer> affinity = null;
        try {
            affinity = pinning.pin(vcpu.id());
            long allocatedBefore = ThreadAllocation.current();
            VcpuStop stop = runUntilStopped(vcpu);
            long allocatedAfter = ThreadAllocation.current();
            if (vcpu.id() == 0) {
                vcpuAllocated = allocatedBefore < 0 || allocatedAfter < 0 ? -1 : allocatedAfter - allocatedBefore;
            }
            switch (stop.kind()) {
                case REQUESTED -> {
                    // another vCPU or the host stopped the VM; its reason stands
                }
                case HALT -> stopWith(VmResult.Reason.HALTED, kind.stopDetail(vcpu.id(), stop));
                case SHUTDOWN -> stopWith(VmResult.Reason.TRIPLE_FAULT, kind.stopDetail(vcpu.id(), stop));
                default -> stopWith(VmResult.Reason.HYPERVISOR_ERROR, kind.stopDetail(vcpu.id(), stop));
            }
        } catch (RuntimeException e) {
            stopWith(VmResult.Reason.HYPERVISOR_ERROR, "vCPU " + vcpu.id() + ": " + e.getMessage());
        } catch (InterruptedException e) {
            // destroy cancels threads that do not stop in time: its own reason was recorded first
            Thread.currentThread().interrupt();
            stopWith(VmResult.Reason.HYPERVISOR_ERROR, "vCPU " + vcpu.id() + "'s thread was interrupted while paused");
        } catch (Error e) {
            stopWith(VmResult.Reason.HYPERVISOR_ERROR, "the vCPU thread died: " + e);
            throw e;
        } finally {
            self.setName(poolName);
            pinning.unpin(affinity);
            if (running.decrementAndGet() == 0) {
                finish();
            }
        }
    }

    /**
     * Runs the guest until the VM stops, parking this thread while the VM is
     * paused and entering the guest again on resume. A requested stop that
     * neither a stop nor a pause asked for ends the VM: re-entering would spin.
     */
    private VcpuStop runUntilStopped(Vcpu vcpu) throws InterruptedException {
        boolean kicked = false;   // the backend may hold a stop request from a pause: clear it before entering again
        while (true) {
            if (kicked) {
                vcpu.clearStopRequest();   // before the checks below: a stop or pause asked for after this still counts
            }
            long generation;
            synchronized (this) {
                if (pauseRequested && stopReason == null) {
                    parked++;
                    notifyAll();
                    // No deadline on purpose: a paused VM waits for its owner; stop, destroy or resume wake it.
                    while (pauseRequested && stopReason == null) {
                        wait();
                    }
                    parked--;
                    kicked = true;
                    continue;
                }
                if (stopReason != null) {
                    // WHY: a stop that came while this thread was starting must not depend on the backend keeping it
                    return NOT_ENTERED;
                }
                generation = pauses;
            }
            VcpuStop stop = vcpu.run(this);
            if (stop.kind() != VcpuStop.Kind.REQUESTED) {
                return stop;
            }
            synchronized (this) {
                if (stopReason != null) {
                    return stop;
                }
                if (pauses == generation && !pauseRequested) {
                    return new VcpuStop(VcpuStop.Kind.INTERNAL_ERROR, "vCPU " + vcpu.id()
                            + " left the guest though neither a stop nor a pause asked it to");
                }
            }
            kicked = true;
        }
    }

    /**
     * Pauses the VM: every vCPU leaves the guest and parks, doorbell writes are
     * held and the device work already under way ends, within the destroy wait
     * ({@link #DESTROY_WAIT} by default). A pause that does not complete in
     * time is abandoned (the VM runs on) and reported.
     */
    @Override
    public void pause() {
        synchronized (this) {
            if (state != VmState.RUNNING) {
                throw new IllegalStateException(id + " is " + state.name().toLowerCase() + "; only a running VM can be paused");
            }
            if (stopReason != null) {
                throw new IllegalStateException(id + " is stopping (" + stopDetail + "); it cannot be paused");
            }
            if (pauseRequested) {
                throw new IllegalStateException(id + " is already pausing");
            }
            pauseRequested = true;
            pauses++;
        }
        doorbells.hold();
        for (Vcpu vcpu : vcpus) {
            vcpu.requestStop();
        }
        String missing;
        try {
            long deadline = System.nanoTime() + destroyWait.toNanos();
            synchronized (this) {
                while (parked < vcpus.size() && stopReason == null && System.nanoTime() < deadline) {
                    TimeUnit.NANOSECONDS.timedWait(this, deadline - System.nanoTime());
                }
                if (stopReason != null) {
                    throw new IllegalStateException(id + " stopped while it was pausing: " + stopDetail);
                }
                missing = parked < vcpus.size() ? (vcpus.size() - parked) + " of " + vcpus.size() + " vCPUs did not leave the guest" : null;
            }
            if (missing == null && !doorbells.awaitQuiet(Math.max(0, deadline - System.nanoTime()))) {
                missing = doorbells.working() + " device threads did not finish their work";
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            missing = "interrupted";
        }
        synchronized (this) {
            if (missing == null && stopReason == null) {
                state = VmState.PAUSED;
                return;
            }
            pauseRequested = false;
            notifyAll();
        }
        doorbells.release();
        throw new IllegalStateException(id + " could not pause within " + destroyWait.toMillis() + " ms ("
                + (missing != null ? missing : "it stopped") + "); it runs on");
    }

    /**
     * Saves this paused VM: each device's own state first (a device that
     * cannot be saved refuses the snapshot, naming it), then the touched RAM,
     * the vCPUs, the partition and each mapped Portal region's content. Holds
     * this VM's lock throughout, so it stays paused: a resume or stop waits
     * until the snapshot is taken. A region is shared memory: what the host or
     * another VM writes into it meanwhile may or may not be in the copy.
     */
    @Override
    public synchronized VmSnapshot snapshot() {
        if (state != VmState.PAUSED && state != VmState.CREATED) {
            throw new IllegalStateException(id + " is " + state.name().toLowerCase()
                    + "; only a paused VM can be saved (vm:pause first), or one not yet started");
        }
        return save(true);
    }

    private synchronized VmSnapshot save(boolean withRam) {
        if (kind.hyperV()) {
            // its SynIC pages and synthetic timers are not in the saved state yet
            throw new UnsupportedOperationException(id + " sees a Hyper-V partition, which cannot be saved yet");
        }
        List<VmSnapshot.DeviceState> deviceStates = new ArrayList<>();
        for (int i = 0; i < devices.size(); i++) {
            Device d = devices.get(i);
            try {
                deviceStates.add(new VmSnapshot.DeviceState(d.type(), d.saveState()));
            } catch (UnsupportedOperationException e) {
                throw new IllegalStateException(id + " cannot be saved: device " + i + " (" + d.type() + ") cannot: " + e.getMessage(), e);
            }
        }
        List<VmSnapshot.RamChunk> ram = new ArrayList<>();
        for (GuestRange r : withRam ? partition.populatedRam() : List.<GuestRange>of()) {
            for (long at = r.gpa(); at < r.end(); at += VmSnapshot.RamChunk.MAX_CHUNK) {
                long length = Math.min(VmSnapshot.RamChunk.MAX_CHUNK, r.end() - at);
                MemorySegment copy = MemorySegment.ofArray(new byte[(int) length]);
                copy.copyFrom(memory.slice(at, length));
                ram.add(new VmSnapshot.RamChunk(at, copy));
            }
        }
        List<VcpuState> vcpuStates = new ArrayList<>();
        for (Vcpu vcpu : vcpus) {
            vcpuStates.add(vcpu.saveState());
        }
        List<VmSnapshot.SavedPortal> regions = new ArrayList<>();
        for (PortalWindow.Slot s : portals.slots()) {
            if (s.file().isPresent()) {
                // the file keeps the content; the snapshot keeps what identifies it
                regions.add(new VmSnapshot.PortalFile(s.name(), s.gpa(), s.region().byteSize(), s.file().get().toAbsolutePath(),
                        VmSnapshot.PortalFile.digest(s.region())));
                continue;
            }
            MemorySegment copy = MemorySegment.ofArray(new byte[(int) s.region().byteSize()]);
            copy.copyFrom(s.region());
            regions.add(new VmSnapshot.PortalContent(s.name(), s.gpa(), copy));
        }
        return new VmSnapshot(kind.spec(), hypervisor.backend(), ram, vcpuStates, partition.saveState(), deviceStates, regions);
    }

    /**
     * Puts {@code snapshot} into this VM, which was just created from the same
     * spec and has not started: RAM exactly as saved (what the new VM's
     * loading wrote is zeroed first), then the partition, the vCPUs and the
     * devices, each checked by its owner before it takes anything.
     */
    synchronized void restoreFrom(VmSnapshot snapshot) {
        restoreFrom(snapshot, null);
    }

    /**
     * As {@link #restoreFrom(VmSnapshot)}, with RAM from {@code ram} when it is not null: the
     * partition maps its file's pages copy-on-write over all of RAM (what loading wrote is dropped
     * with the rest), and the snapshot brings no RAM of its own.
     */
    synchronized void restoreFrom(VmSnapshot snapshot, RamFile ram) {
        if (state != VmState.CREATED) {
            throw new IllegalStateException(id + " is " + state.name().toLowerCase() + "; a snapshot goes only into a VM not yet started");
        }
        if (!snapshot.backend().equals(hypervisor.backend())) {
            throw new IllegalArgumentException("the snapshot was taken on the " + snapshot.backend() + " backend; this is "
                    + hypervisor.backend());
        }
        List<VmSnapshot.DeviceState> saved = snapshot.devices();
        if (saved.size() != devices.size()) {
            throw new IllegalArgumentException("the snapshot has " + saved.size() + " device states; the VM has " + devices.size() + " devices");
        }
        for (int i = 0; i < saved.size(); i++) {
            if (!saved.get(i).type().equals(devices.get(i).type())) {
                throw new IllegalArgumentException("device " + i + " of the snapshot is " + saved.get(i).type() + "; the VM's is "
                        + devices.get(i).type());
            }
        }
        List<PortalWindow.Slot> regions = portalsFor(snapshot.portals());
        if (ram != null) {
            if (!snapshot.ram().isEmpty()) {
                throw new IllegalArgumentException("the snapshot holds RAM of its own; a clone's RAM comes from " + ram.file());
            }
            partition.mapRamFrom(ram);
        } else {
            for (GuestRange r : partition.populatedRam()) {
                memory.slice(r.gpa(), r.length()).fill((byte) 0);
            }
            for (VmSnapshot.RamChunk c : snapshot.ram()) {
                memory.slice(c.gpa(), c.bytes().byteSize()).copyFrom(c.bytes());
            }
        }
        restoreMachine(snapshot);
        // last: a region is shared memory, written only once everything else of the snapshot was taken
        // (a file-backed one was found holding its saved content and is not written at all)
        for (int i = 0; i < regions.size(); i++) {
            if (snapshot.portals().get(i) instanceof VmSnapshot.PortalContent c) {
                regions.get(i).region().copyFrom(c.bytes());
            }
        }
    }

    @Override
    public List<String> portalNames() {
        return portals.slots().stream().map(PortalWindow.Slot::name).toList();
    }

    /**
     * The regions this VM mapped at creation that take {@code saved}, in its order: each where the
     * saved VM had it, of the same size. Checks all before anything is written.
     */
    private List<PortalWindow.Slot> portalsFor(List<VmSnapshot.SavedPortal> saved) {
        List<PortalWindow.Slot> mapped = portals.slots();
        List<PortalWindow.Slot> out = new ArrayList<>();
        for (VmSnapshot.SavedPortal p : saved) {
            PortalWindow.Slot slot = mapped.stream().filter(s -> s.name().equals(p.name())).findFirst().orElseThrow(() ->
                    new IllegalArgumentException("the snapshot has Portal region '" + p.name() + "' mapped; " + id
                            + " has not: its profile must grant the region and the region must exist"));
            if (slot.gpa() != p.gpa() || slot.region().byteSize() != p.size()) {
                throw new IllegalArgumentException("Portal region '%s' was %d bytes at 0x%x in the snapshot; in %s it is %d bytes at 0x%x"
                        .formatted(p.name(), p.size(), p.gpa(), id, slot.region().byteSize(), slot.gpa()));
            }
            if (p instanceof VmSnapshot.PortalFile f) {
                checkFileRegion(f, slot);
            }
            out.add(slot);
        }
        return out;
    }

    /**
     * A file-backed region saved by reference goes on only from the same file, holding what it held
     * when saved: the guest's references into it (arena, rings) are valid for that content alone.
     */
    private void checkFileRegion(VmSnapshot.PortalFile saved, PortalWindow.Slot slot) {
        Path now = slot.file().map(Path::toAbsolutePath).orElse(null);
        if (!saved.file().equals(now)) {
            throw new IllegalArgumentException("Portal region '%s' was saved by reference to its file %s; in %s it is %s"
                    .formatted(saved.name(), saved.file(), id, now == null ? "anonymous" : "backed by " + now));
        }
        if (!saved.holds(slot.region())) {
            throw new IllegalArgumentException(("Portal region '%s' was saved by reference to its file %s, which has changed since"
                    + " (its SHA-256 is not the saved one): the VM would go on over data it did not see").formatted(saved.name(), now));
        }
    }

    /**
     * Partition, vCPU and device state, each checked by its owner before it takes anything. The
     * devices come last: a restored device may interrupt at once (vsock's transport reset event),
     * and the interrupt controllers' and local APICs' saved state would overwrite that interrupt.
     */
    private void restoreMachine(VmSnapshot snapshot) {
        partition.restoreState(snapshot.partition());
        for (int i = 0; i < vcpus.size(); i++) {
            vcpus.get(i).restoreState(snapshot.vcpus().get(i));
        }
        List<VmSnapshot.DeviceState> saved = snapshot.devices();
        for (int i = 0; i < saved.size(); i++) {
            devices.get(i).restoreState(saved.get(i).state());
        }
    }

    /**
     * Starts logging the RAM pages the vCPUs (the hypervisor's dirty log) and
     * the VMM ({@link WrittenPages}) write, for {@link #rearm}. Call once, after
     * {@link #restoreFrom} and before the first start.
     *
     * @throws UnsupportedOperationException if the backend keeps no dirty log
     */
    synchronized void startWriteLog() {
        if (state != VmState.CREATED || dirtyLog != null) {
            throw new IllegalStateException(id + ": the write log starts once, before the VM first runs");
        }
        dirtyLog = partition.startDirtyLog().orElseThrow(() -> new UnsupportedOperationException("the " + hypervisor.backend()
                + " backend keeps no log of the pages a guest writes; a reset in place needs one"));
        written = new long[WrittenPages.words(memory.size())];
        memory.start();
    }

    /**
     * Puts this stopped VM back to {@code snapshot} (the one it was restored
     * from) for another {@link #start}: rewrites only the RAM pages written
     * since the write log started or the last rearm, then restores device,
     * partition and vCPU state and forgets the run (result, stop reason,
     * console). Destroy actions stay: they belong to the VM, not to a run.
     *
     * @return pages of RAM rewritten
     * @throws IllegalStateException unless the VM has stopped and its write log runs
     */
    synchronized long rearm(VmSnapshot snapshot, RamReset ram) {
        if (state != VmState.STOPPED || stopped.getCount() != 0 || closed || written == null) {
            throw new IllegalStateException(id + " is " + state.name().toLowerCase()
                    + "; only a stopped VM with a write log is reset in place");
        }
        dirtyLog.collect(written);
        memory.drainInto(written);
        long pages = ram.reset(written, partition.memory().slice(0, memory.size()));
        restoreMachine(snapshot);
        for (Vcpu vcpu : vcpus) {
            vcpu.clearStopRequest();
        }
        stopReason = null;
        stopDetail = null;
        exitStatus = -1;
        result = null;
        pauseRequested = false;
        vcpuTasks.clear();
        console.clear();
        stopped = new CountDownLatch(1);
        state = VmState.CREATED;
        return pages;
    }

    @Override
    public synchronized LiveRam liveRam() {
        if (state != VmState.RUNNING && state != VmState.PAUSED) {
            throw new IllegalStateException(id + " is " + state.name().toLowerCase() + "; only a running or paused VM's RAM is read live");
        }
        if (written != null) {
            throw new IllegalStateException(id + "'s writes are logged for a sandbox's reset in place");
        }
        if (liveRam != null) {
            throw new IllegalStateException(id + "'s RAM is being read already (a migration under way?)");
        }
        if (!devices.isEmpty()) {
            // a device keeps views of guest RAM taken at set-up, before the VMM's record of its writes began
            throw new UnsupportedOperationException(id + " has devices, whose writes to its RAM are not all recorded");
        }
        if (dirtyLog == null) {
            dirtyLog = partition.startDirtyLog().orElseThrow(() -> new UnsupportedOperationException("the " + hypervisor.backend()
                    + " backend keeps no log of the pages a guest writes"));
            memory.start();
            // a read under way finishes before the RAM is unmapped
            onDestroy(() -> {
                LiveRamReader open;
                synchronized (this) {
                    open = liveRam;
                }
                if (open != null) {
                    open.close();
                }
            });
        }
        liveRam = new LiveRamReader();
        return liveRam;
    }

    /** The live RAM reader: locks itself, then the VM (never the other way round). */
    private final class LiveRamReader implements LiveRam {
        private final long[] vmmWritten = new long[WrittenPages.words(memory.size())];
        private final long[] interval = new long[vmmWritten.length];
        private boolean first = true;
        private boolean open = true;

        @Override
        public long bytes() {
            return memory.size();
        }

        @Override
        public synchronized long written(long[] bitmap) {
            checkOpen();
            if (bitmap.length < interval.length) {
                throw new IllegalArgumentException("a bitmap of " + bitmap.length + " words; " + id + "'s RAM needs " + interval.length);
            }
            Arrays.fill(interval, 0);
            dirtyLog.collect(interval);
            memory.drainInto(vmmWritten);
            if (first) {
                first = false;
                for (GuestRange r : partition.populatedRam()) {
                    for (long page = r.gpa() / PAGE; page < r.end() / PAGE; page++) {
                        interval[(int) (page >>> 6)] |= 1L << page;
                    }
                }
            }
            long pages = 0;
            for (int i = 0; i < interval.length; i++) {
                long bits = interval[i] | vmmWritten[i];
                pages += Long.bitCount(bits);
                bitmap[i] |= bits;
            }
            return pages;
        }

        @Override
        public synchronized void read(long address, MemorySegment into) {
            checkOpen();
            Objects.checkFromIndexSize(address, into.byteSize(), memory.size());
            into.copyFrom(partition.memory().slice(partition.memory().base() + address, into.byteSize()));
        }

        @Override
        public synchronized VmSnapshot state() {
            checkOpen();
            synchronized (VmCore.this) {
                if (state != VmState.PAUSED) {
                    throw new IllegalStateException(id + " is " + state.name().toLowerCase() + "; its state is saved once it is paused");
                }
                return save(false);
            }
        }

        private void checkOpen() {
            if (!open || closed) {
                throw new IllegalStateException(id + (closed ? " was destroyed" : "'s live RAM reader was closed"));
            }
        }

        @Override
        public void close() {
            synchronized (this) {
                open = false;
            }
            synchronized (VmCore.this) {
                if (liveRam == this) {
                    liveRam = null;
                }
            }
        }
    }

    /** Resumes a paused VM: the parked vCPU threads enter the guest again where it left, held doorbell writes go to their devices. */
    @Override
    public void resume() {
        synchronized (this) {
            if (state != VmState.PAUSED) {
                throw new IllegalStateException(id + " is " + state.name().toLowerCase() + "; only a paused VM can be resumed");
            }
            pauseRequested = false;
            state = VmState.RUNNING;
            notifyAll();
        }
        doorbells.release();
    }

    private void finish() {
        byte[] output;
        try {
            output = kind.output(memory);
        } catch (RuntimeException e) {
            output = new byte[0];   // the partition is already closed: no output
        }
        synchronized (this) {
            VmResult.Reason reason = stopReason == null ? VmResult.Reason.STOPPED : stopReason;
            String detail = stopDetail == null ? "stopped" : stopDetail;
            result = new VmResult(reason, reason == VmResult.Reason.EXITED ? exitStatus : -1, detail, output,
                    Duration.ofNanos(System.nanoTime() - startedAt));
            state = VmState.STOPPED;
            notifyAll();
        }
        doorbells.closeAll();   // device threads end with the VM
        stopped.countDown();
    }

    /** Records why the VM should stop (first cause wins) and kicks every vCPU. */
    @Override
    public void stopWith(VmResult.Reason reason, String detail) {
        stop(reason, detail, -1);
    }

    /** The first cause's reason, detail and exit status are taken together: racing causes never mix their parts. */
    private void stop(VmResult.Reason reason, String detail, int status) {
        synchronized (this) {
            if (stopReason == null) {
                stopReason = reason;
                stopDetail = detail != null ? detail : "the guest exited with status " + status;   // built only for the first cause
                exitStatus = status;
                notifyAll();   // parked vCPU threads and a waiting pause see it
            }
        }
        for (Vcpu vcpu : vcpus) {
            vcpu.requestStop();
        }
    }

    @Override
    public void stop() {
        synchronized (this) {
            if (state == VmState.CREATED) {
                stopReason = VmResult.Reason.STOPPED;
                stopDetail = "stopped before it started";
                startedAt = System.nanoTime();
                state = VmState.STOPPED;   // start() refuses from here on; finish() below publishes the result
            } else {
                if (state == VmState.RUNNING || state == VmState.PAUSED) {
                    stopWith(VmResult.Reason.STOPPED, "stopped from the host");
                }
                return;
            }
        }
        finish();
    }

    @Override
    public VmResult await(Duration timeout) throws InterruptedException, TimeoutException {
        if (!stopped.await(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
            throw new TimeoutException(id + " is still running after " + timeout.toMillis() + " ms");
        }
        return result;
    }

    @Override
    public Optional<VmResult> result() {
        return Optional.ofNullable(result);
    }

    @Override
    public String console() {
        return console.text();
    }

    @Override
    public VmInfo info() {
        Map<String, Long> stats = new LinkedHashMap<>();
        if (!closed) {
            for (Vcpu vcpu : vcpus) {
                try {
                    vcpu.statistics().forEach((k, v) -> stats.merge(k, v, Long::sum));
                } catch (RuntimeException e) {
                    // closed under us
                }
            }
        }
        Map<String, Long> counters = new LinkedHashMap<>(stats);
        if (!closed) {
            try {
                counters.putAll(partition.statistics());   // a clone's RAM: resident, shared with other mappings, its own
            } catch (RuntimeException e) {
                // closed under us
            }
        }
        kind.counters(counters);
        counters.put("unserved_accesses", unservedAccesses);
        counters.put("ioeventfd_doorbells", doorbells.open());
        counters.put("ioeventfd_writes", doorbells.writes());
        counters.put("vcpu_thread_allocated_bytes", vcpuAllocated);
        VmSpec spec = kind.spec();
        return new VmInfo(id, spec.name(), state, spec.memoryBytes(), spec.vcpus(), kind.imageName(), hypervisor,
                kind.executionMode(state, stats), counters);
    }

    @Override
    public List<PlacementOutcome> placement() {
        if (!kind.spec().placement().requested()) {
            return List.of();
        }
        List<PlacementOutcome> out = new ArrayList<>();
        out.add(pinning.outcome());
        out.addAll(partition.placement());
        return out;
    }

    /**
     * Stops the vCPUs if needed (cancelling their threads if they do not
     * leave the guest in time, {@link #DESTROY_WAIT} by default), runs the destroy actions,
     * then releases the devices and the partition. Idempotent.
     */
    @Override
    public void destroy() {
        if (state == VmState.CREATED) {
            stop();
        }
        if (state == VmState.RUNNING || state == VmState.PAUSED) {
            stopWith(VmResult.Reason.STOPPED, "destroyed");
            try {
                if (!stopped.await(destroyWait.toNanos(), TimeUnit.NANOSECONDS)) {
                    synchronized (this) {
                        vcpuTasks.forEach(t -> t.cancel(true));
                    }
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        List<Runnable> actions;
        synchronized (destroyActions) {
            if (closed) {
                return;
            }
            closed = true;
            actions = List.copyOf(destroyActions);
            destroyActions.clear();
        }
        for (Runnable action : actions) {
            try {
                action.run();
            } catch (RuntimeException e) {
                // one holder failing to let go must not keep the VM's memory alive
            }
        }
        portals.close();
        doorbells.closeAll();
        closeDevices();
        partition.close();
    }

    /** The first vCPU's exit times, where its backend records them; otherwise nothing is recorded. */
    @Override
    public int recordExitTimes(long[] sink) {
        return vcpus.getFirst() instanceof ExitTimeRecorder r ? r.recordExitTimes(sink) : 0;
    }
}
