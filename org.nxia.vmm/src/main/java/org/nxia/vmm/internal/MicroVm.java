package org.nxia.vmm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.nxia.vmm.api.Doorbell;
import org.nxia.vmm.api.ExitHandler;
import org.nxia.vmm.api.GuestMemory;
import org.nxia.vmm.api.HostCallContext;
import org.nxia.vmm.api.Hypervisor;
import org.nxia.vmm.api.HypervisorInfo;
import org.nxia.vmm.api.Partition;
import org.nxia.vmm.api.SharedMapping;
import org.nxia.vmm.api.Vcpu;
import org.nxia.vmm.api.VcpuStop;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmInfo;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.internal.bus.Bus;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.internal.image.ElfImage;
import org.nxia.vmm.internal.micro.BootBlock;
import org.nxia.vmm.internal.micro.EntryState;
import org.nxia.vmm.internal.micro.ImageLoader;
import org.nxia.vmm.internal.micro.MicroVmLayout;
import org.nxia.vmm.internal.micro.MicroVmPorts;
import org.nxia.vmm.internal.micro.PageTables;

/**
 * A micro-VM: an OS-less guest image on one vCPU (docs/guest-abi.md). Its
 * vCPU runs on its own platform thread; port and MMIO exits go through its
 * {@link Bus}. Anything the guest does wrong stops this VM only.
 */
final class MicroVm implements ManagedVm, ExitHandler, HostCallContext {

    private final String id;
    private final VmProfile profile;
    private final HypervisorInfo hypervisor;
    private final HostCalls hostCalls;
    private final Partition partition;
    private final GuestMemory memory;
    private final MicroVmLayout layout;
    private final Vcpu vcpu;
    private final Bus bus = new Bus();
    private final DeviceDoorbells doorbells;
    private final List<Device> devices = new ArrayList<>();
    private final List<Long> mmioWindows = new ArrayList<>();
    private final ConsoleLog console = new ConsoleLog();
    private final byte[] consoleBuffer = new byte[MicroVmLayout.CONSOLE_CAP];
    private final CountDownLatch stopped = new CountDownLatch(1);
    /** Host-call state that lives in guest RAM lets go of it here, before the partition is closed. */
    private final List<Runnable> destroyActions = new ArrayList<>();
    /** Portal table entries by index (a name keeps its index); null where nothing is mapped now. */
    private final List<String> portalNames = new ArrayList<>();
    private final PortalSlot[] portals = new PortalSlot[BootBlock.MAX_PORTALS];

    private volatile VmState state = VmState.CREATED;
    private volatile boolean closed;
    private volatile VmResult result;
    private final ExecutorService vcpuThreads;
    private Future<?> vcpuTask;
    private long startedAt;

    // Why the vCPU was asked to stop: the first cause wins.
    private VmResult.Reason stopReason;
    private String stopDetail;
    private int exitStatus = -1;

    private volatile long vcpuAllocated = -1;
    private long hostCallCount;
    private long benchExits;

    MicroVm(String id, VmProfile profile, ElfImage image, Hypervisor hv, HostCalls hostCalls, ExecutorService vcpuThreads,
            Map<String, DeviceFactory> factories) {
        this.id = id;
        this.profile = profile;
        this.hypervisor = hv.info();
        this.hostCalls = hostCalls;
        this.vcpuThreads = vcpuThreads;
        String name = profile.image().toString();
        this.layout = MicroVmLayout.plan(profile.memoryBytes(), image.end(), profile.input().length, profile.outputCapacity());
        this.partition = hv.createPartition(profile.memoryBytes());
        this.doorbells = new DeviceDoorbells(partition, bus);
        try {
            this.memory = partition.memory();
            ImageLoader.load(image, memory, layout, name);
            memory.write(layout.inputGpa(), profile.input());
            long cr3 = PageTables.build(memory, layout.pageTablesBase(), layout.ramSize());
            EntryState.writeGdt(memory);
            BootBlock.write(memory, layout, hypervisor.pvmControlMsr(), profile.arg());
            this.vcpu = partition.createVcpu(0);
            vcpu.setSpecialRegisters(EntryState.specialRegisters(cr3, vcpu.specialRegisters().apicBase()));
            vcpu.setRegisters(EntryState.registers(image.entry(), layout));
            wirePorts();
            DeviceContext context = new Context();
            for (DeviceConfig config : profile.devices()) {
                DeviceFactory factory = factories.get(config.type());
                if (factory == null) {
                    throw new IllegalArgumentException("no device type '" + config.type() + "' is installed (have: "
                            + String.join(", ", new TreeSet<>(factories.keySet())) + "); device:list shows the types and their bundles");
                }
                devices.add(factory.create(config, context));
            }
            BootBlock.writeMmioTable(memory, mmioWindows);
        } catch (RuntimeException e) {
            closeDevices();
            partition.close();
            throw e;
        }
    }

    /** What the VM's devices see of it. */
    private final class Context implements DeviceContext {
        private long nextWindow = MicroVmLayout.MMIO_WINDOW;

        @Override
        public String vmId() {
            return id;
        }

        @Override
        public GuestMemory memory() {
            return memory;
        }

        @Override
        public void claimPorts(int first, int count, PortDevice device) {
            bus.addPorts(first, count, device);
        }

        @Override
        public long claimMmio(long size, MmioDevice device) {
            if (size <= 0 || size > MicroVmLayout.MMIO_WINDOW_SIZE) {
                throw new IllegalArgumentException("an MMIO window of " + size + " bytes is not possible");
            }
            long length = (size + MicroVmLayout.PAGE - 1) & -MicroVmLayout.PAGE;
            if (nextWindow + length > MicroVmLayout.MMIO_WINDOW + MicroVmLayout.MMIO_WINDOW_SIZE) {
                throw new IllegalArgumentException("the VM's device area (2 MiB at 0x%x) is full".formatted(MicroVmLayout.MMIO_WINDOW));
            }
            long base = nextWindow;
            bus.addMmio(base, length, device);
            nextWindow += length;
            mmioWindows.add(base);
            return base;
        }

        @Override
        public SharedMapping mapPortal(String name, MemorySegment region, boolean readOnly, long doorbellGpa) {
            return MicroVm.this.mapPortal(name, region, readOnly, doorbellGpa);
        }

        @Override
        public Optional<Doorbell> createDoorbell(long address, int length) {
            return doorbells.create(address, length);
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
            stopWith(VmResult.Reason.RESET, "the guest asked for a reset (" + how + "); a micro-VM stops instead of rebooting");
        }

        @Override
        public void fail(String reason) {
            stopWith(VmResult.Reason.GUEST_ERROR, reason);
        }
    }

    // ---- portals: shared memory slots in the portal window, listed in the boot block ----

    private record PortalSlot(String name, long gpa, long span, SharedMapping mapping) {
    }

    private synchronized SharedMapping mapPortal(String name, MemorySegment region, boolean readOnly, long doorbellGpa) {
        int index = portalNames.indexOf(name);
        if (index < 0) {
            if (portalNames.size() == BootBlock.MAX_PORTALS) {
                throw new IllegalArgumentException("a micro-VM has room for " + BootBlock.MAX_PORTALS + " portals");
            }
            index = portalNames.size();
            portalNames.add(name);
        }
        if (portals[index] != null) {
            throw new IllegalArgumentException("portal '" + name + "' is already mapped into " + id);
        }
        long span = (region.byteSize() + MicroVmLayout.PORTAL_ALIGN - 1) & -MicroVmLayout.PORTAL_ALIGN;
        long gpa = freePortalRange(span);
        if (gpa < 0) {
            throw new IllegalArgumentException("the portal window (%d MiB at 0x%x) has no free %d MiB for '%s'"
                    .formatted(MicroVmLayout.PORTAL_WINDOW_SIZE >> 20, MicroVmLayout.PORTAL_WINDOW, span >> 20, name));
        }
        SharedMapping kernel = partition.mapShared(gpa, region, readOnly);
        int slotIndex = index;
        SharedMapping mapping = new SharedMapping() {
            @Override
            public long gpa() {
                return kernel.gpa();
            }

            @Override
            public long size() {
                return kernel.size();
            }

            @Override
            public boolean readOnly() {
                return kernel.readOnly();
            }

            @Override
            public void close() {
                synchronized (MicroVm.this) {
                    if (portals[slotIndex] == null || portals[slotIndex].mapping() != this) {
                        return;
                    }
                    portals[slotIndex] = null;
                    if (!closed) {
                        BootBlock.clearPortal(memory, slotIndex);
                    }
                }
                kernel.close();
            }
        };
        portals[index] = new PortalSlot(name, gpa, span, mapping);
        BootBlock.writePortal(memory, index, name, gpa, region.byteSize(), doorbellGpa,
                BootBlock.PORTAL_MAPPED | (readOnly ? 0 : BootBlock.PORTAL_WRITABLE));
        return mapping;
    }

    /** First fit, in 2 MiB steps; -1 when no hole is {@code span} long. */
    private long freePortalRange(long span) {
        long end = MicroVmLayout.PORTAL_WINDOW + MicroVmLayout.PORTAL_WINDOW_SIZE;
        for (long at = MicroVmLayout.PORTAL_WINDOW; at + span <= end; at += MicroVmLayout.PORTAL_ALIGN) {
            boolean free = true;
            for (PortalSlot p : portals) {
                if (p != null && at < p.gpa() + p.span() && p.gpa() < at + span) {
                    free = false;
                    at = p.gpa() + p.span() - MicroVmLayout.PORTAL_ALIGN;
                    break;
                }
            }
            if (free) {
                return at;
            }
        }
        return -1;
    }

    /** The portal holding {@code address}, for an error message; null if none. */
    private PortalSlot portalAt(long address) {
        for (PortalSlot p : portals) {
            if (p != null && address >= p.gpa() && address < p.gpa() + p.span()) {
                return p;
            }
        }
        return null;
    }

    private void exitWith(int status) {
        synchronized (this) {
            if (stopReason == null) {
                exitStatus = status;
            }
        }
        stopWith(VmResult.Reason.EXITED, "the guest exited with status " + status);
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

    private void wirePorts() {
        bus.addPorts(MicroVmPorts.DEBUG_PUTC, 1, writeOnly((port, size, value) -> {
            consoleBuffer[0] = (byte) value;
            console.append(consoleBuffer, 0, 1);
        }));
        bus.addPorts(MicroVmPorts.EXIT, 4, writeOnly((port, size, value) -> exitWith(value)));
        bus.addPorts(MicroVmPorts.CONSOLE_FLUSH, 4, writeOnly((port, size, value) -> flushConsole(value)));
        bus.addPorts(MicroVmPorts.HOSTCALL, 4, writeOnly((port, size, value) -> hostCall(Integer.toUnsignedLong(value))));
        bus.addPorts(MicroVmPorts.BENCH, 4, writeOnly((port, size, value) -> benchExits++));
    }

    private interface PortWrite {
        void write(int port, int size, int value);
    }

    /** A port the guest writes; reading it returns all ones, as from an empty bus. */
    private static PortDevice writeOnly(PortWrite write) {
        return new PortDevice() {
            @Override
            public void write(int port, int size, int value) {
                write.write(port, size, value);
            }

            @Override
            public int read(int port, int size) {
                return -1;
            }
        };
    }

    private void flushConsole(int length) {
        if (length < 0 || length > MicroVmLayout.CONSOLE_CAP) {
            stopWith(VmResult.Reason.GUEST_ERROR, "console flush of " + Integer.toUnsignedString(length)
                    + " bytes exceeds the " + MicroVmLayout.CONSOLE_CAP + "-byte console buffer");
            return;
        }
        MemorySegment.copy(memory.slice(MicroVmLayout.CONSOLE, length), ValueLayout.JAVA_BYTE, 0, consoleBuffer, 0, length);
        console.append(consoleBuffer, 0, length);
    }

    private void hostCall(long block) {
        hostCallCount++;
        if (hostCalls.handle(this, block) == HostCalls.EINVAL && !memory.contains(block, HostCalls.BLOCK_SIZE)) {
            stopWith(VmResult.Reason.GUEST_ERROR, "host call block at 0x%x is not in guest RAM".formatted(block));
        }
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

    // ---- ExitHandler: called on the vCPU thread for each exit ----

    @Override
    public void portWrite(int port, int size, int value) {
        PortDevice h = bus.port(port);
        if (h == null) {
            stopWith(VmResult.Reason.GUEST_ERROR, "the guest wrote 0x%x to I/O port 0x%x, which no device serves"
                    .formatted(value, port));
            return;
        }
        h.write(port, size, value);
    }

    @Override
    public int portRead(int port, int size) {
        PortDevice h = bus.port(port);
        if (h == null) {
            stopWith(VmResult.Reason.GUEST_ERROR, "the guest read I/O port 0x%x, which no device serves".formatted(port));
            return -1;
        }
        return h.read(port, size);
    }

    @Override
    public void mmioWrite(long address, int size, long value) {
        Bus.MmioRoute r = bus.mmio(address);
        if (r == null) {
            PortalSlot p = portalAt(address);
            if (p != null && p.mapping().readOnly() && address < p.gpa() + p.mapping().size()) {
                stopWith(VmResult.Reason.GUEST_ERROR, "the guest wrote %d bytes to read-only portal '%s' at offset 0x%x (address 0x%x)"
                        .formatted(size, p.name(), address - p.gpa(), address));
            } else if (p != null) {
                stopWith(VmResult.Reason.GUEST_ERROR, "the guest wrote %d bytes at 0x%x, past the end of portal '%s' (%d bytes at 0x%x)"
                        .formatted(size, address, p.name(), p.mapping().size(), p.gpa()));
            } else {
                stopWith(VmResult.Reason.GUEST_ERROR, "the guest wrote %d bytes to MMIO address 0x%x, which no device serves"
                        .formatted(size, address));
            }
            return;
        }
        r.device().write(address - r.base(), size, value);
    }

    @Override
    public long mmioRead(long address, int size) {
        Bus.MmioRoute r = bus.mmio(address);
        if (r == null) {
            stopWith(VmResult.Reason.GUEST_ERROR, "the guest read MMIO address 0x%x, which no device serves".formatted(address));
            return -1;
        }
        return r.device().read(address - r.base(), size);
    }

    // ---- lifecycle ----

    @Override
    public String id() {
        return id;
    }

    @Override
    public VmProfile profile() {
        return profile;
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
        return profile.timeout();
    }

    @Override
    public synchronized void start() {
        if (state != VmState.CREATED) {
            throw new IllegalStateException(id + " is " + state.name().toLowerCase() + "; only a created VM can be started");
        }
        state = VmState.RUNNING;
        startedAt = System.nanoTime();
        vcpuTask = vcpuThreads.submit(this::runVcpu);
    }

    /** Runs on a pooled platform thread, named for this VM while it runs. */
    private void runVcpu() {
        Thread self = Thread.currentThread();
        String poolName = self.getName();
        self.setName("nxia-" + id + "-vcpu0");
        try {
            runVcpuNamed();
        } finally {
            self.setName(poolName);
        }
    }

    private void runVcpuNamed() {
        // WHY the defaults and finally: an Error (a host function's StackOverflowError, an OutOfMemoryError) must
        // still stop the VM, or it stays RUNNING and await() never returns.
        VmResult.Reason reason = VmResult.Reason.HYPERVISOR_ERROR;
        String detail = "the vCPU thread died";
        try {
            long allocatedBefore = ThreadAllocation.current();
            VcpuStop stop = vcpu.run(this);
            long allocatedAfter = ThreadAllocation.current();
            vcpuAllocated = allocatedBefore < 0 || allocatedAfter < 0 ? -1 : allocatedAfter - allocatedBefore;
            synchronized (this) {
                switch (stop.kind()) {
                    case REQUESTED -> {
                        reason = stopReason == null ? VmResult.Reason.STOPPED : stopReason;
                        detail = stopDetail == null ? "stopped" : stopDetail;
                    }
                    case HALT -> {
                        reason = VmResult.Reason.HALTED;
                        detail = "the guest halted (hlt) without writing an exit status";
                    }
                    case SHUTDOWN -> {
                        reason = VmResult.Reason.TRIPLE_FAULT;
                        detail = stop.detail();
                    }
                    default -> {
                        reason = VmResult.Reason.HYPERVISOR_ERROR;
                        detail = stop.detail() + hint();
                    }
                }
            }
        } catch (RuntimeException e) {
            detail = e.getMessage();
        } catch (Error e) {
            detail = "the vCPU thread died: " + e;
            throw e;
        } finally {
            finish(reason, detail);
        }
    }

    private String hint() {
        return hypervisor.flavour() == HypervisorInfo.Flavour.PVM
                ? " (on PVM a guest must keep to lower-half addresses and 64-bit mode; see docs/guest-abi.md)"
                : "";
    }

    private void finish(VmResult.Reason reason, String detail) {
        byte[] output = new byte[0];
        try {
            long len = BootBlock.outputLength(memory, layout);
            output = memory.read(layout.outputGpa(), (int) len);
        } catch (RuntimeException e) {
            // partition already closed: no output
        }
        Duration runTime = Duration.ofNanos(System.nanoTime() - startedAt);
        result = new VmResult(reason, reason == VmResult.Reason.EXITED ? exitStatus : -1, detail, output, runTime);
        state = VmState.STOPPED;
        doorbells.closeAll();   // device threads end with the VM
        stopped.countDown();
    }

    /** Records why the VM should stop (first cause wins) and kicks the vCPU. */
    @Override
    public void stopWith(VmResult.Reason reason, String detail) {
        synchronized (this) {
            if (stopReason == null) {
                stopReason = reason;
                stopDetail = detail;
            }
        }
        vcpu.requestStop();
    }

    @Override
    public void stop() {
        synchronized (this) {
            if (state == VmState.CREATED) {
                stopReason = VmResult.Reason.STOPPED;
                stopDetail = "stopped before it started";
                startedAt = System.nanoTime();
                finish(VmResult.Reason.STOPPED, stopDetail);
                return;
            }
        }
        if (state == VmState.RUNNING) {
            stopWith(VmResult.Reason.STOPPED, "stopped from the host");
        }
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
        Map<String, Long> counters = new LinkedHashMap<>();
        Map<String, Long> stats = state == VmState.STOPPED && closed ? Map.of() : safeStats();
        counters.putAll(stats);
        counters.put("host_calls", hostCallCount);
        counters.put("bench_exits", benchExits);
        counters.put("ioeventfd_doorbells", doorbells.open());
        counters.put("ioeventfd_writes", doorbells.writes());
        counters.put("vcpu_thread_allocated_bytes", vcpuAllocated);
        return new VmInfo(id, profile.name(), state, profile.memoryBytes(), profile.vcpus(),
                profile.image().toString(), hypervisor, executionMode(stats), counters);
    }

    private Map<String, Long> safeStats() {
        try {
            return vcpu.statistics();
        } catch (RuntimeException e) {
            return Map.of();
        }
    }

    /**
     * How the guest's instructions ran. On PVM a native guest only has its
     * port I/O and MMIO emulated, so {@code insn_emulation} stays near the
     * count of those exits to the VMM; an emulated guest has every
     * instruction counted there.
     */
    String executionMode(Map<String, Long> stats) {
        return executionMode(hypervisor.flavour(), state, stats);
    }

    static String executionMode(HypervisorInfo.Flavour flavour, VmState state, Map<String, Long> stats) {
        return switch (flavour) {
            case HARDWARE_VMX, HARDWARE_SVM -> "hardware";
            case PVM, UNKNOWN -> {
                Long emulated = stats.get("insn_emulation");
                Long io = stats.containsKey("io_exits") && stats.containsKey("mmio_exits")
                        ? stats.get("io_exits") + stats.get("mmio_exits") : null;
                if (emulated == null || io == null) {
                    yield state == VmState.CREATED ? "not started" : "unknown (no insn_emulation counter)";
                }
                yield emulated <= 2 * io + 64
                        ? "native (PVM, insn_emulation=" + emulated + " for " + io + " I/O and MMIO exits)"
                        : "emulated (insn_emulation=" + emulated + " for " + io + " I/O and MMIO exits)";
            }
        };
    }

    /** Stops the vCPU if needed and releases the partition. */
    @Override
    public void destroy() {
        if (state == VmState.RUNNING) {
            stopWith(VmResult.Reason.STOPPED, "destroyed");
            try {
                if (!stopped.await(5, TimeUnit.SECONDS)) {
                    vcpuTask.cancel(true);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        } else if (state == VmState.CREATED) {
            stop();
        }
        List<Runnable> actions;
        synchronized (destroyActions) {
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
        doorbells.closeAll();
        closeDevices();
        partition.close();
    }

    @Override
    public void recordExitTimes(long[] sink) {
        vcpu.recordExitTimes(sink);
    }

    @Override
    public int exitTimesRecorded() {
        return vcpu.recordExitTimes(null);
    }
}
