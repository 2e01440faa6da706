package org.nxia.vmm.internal;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

import org.nxia.vmm.api.Doorbell;
import org.nxia.vmm.api.ExitHandler;
import org.nxia.vmm.api.GuestMemory;
import org.nxia.vmm.api.Hypervisor;
import org.nxia.vmm.api.HypervisorException;
import org.nxia.vmm.api.HypervisorInfo;
import org.nxia.vmm.api.InterruptController;
import org.nxia.vmm.api.InterruptLine;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.Partition;
import org.nxia.vmm.api.SharedMapping;
import org.nxia.vmm.api.Vcpu;
import org.nxia.vmm.api.VcpuStop;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmInfo;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.internal.bus.Bus;
import org.nxia.vmm.internal.linux.BzImage;
import org.nxia.vmm.internal.linux.LinuxBoot;
import org.nxia.vmm.internal.linux.LinuxLayout;

/**
 * A Linux VM: a stock kernel on N vCPUs with the hypervisor's interrupt
 * controllers, a 16550 console on COM1 (IRQ 4), the i8042 whose reset stops
 * the VM, and the profile's devices, virtio-mmio ones announced on the
 * command line. Ports and MMIO nobody serves read as all ones and ignore
 * writes, as on a PC: a kernel probes for hardware that is not there.
 */
final class LinuxVm implements ManagedVm, ExitHandler {

    /** What every Linux VM's command line starts with: console on COM1, reboot through the i8042, no PCI. */
    static final String BASE_CMDLINE = "console=ttyS0 reboot=k panic=-1 pci=off 8250.nr_uarts=1 "
            + "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd";
    static final int COM1 = 0x3f8;
    static final int COM1_IRQ = 4;
    static final int CMOS = 0x70;
    /** GSIs virtio-mmio devices get, in order: free ISA lines, then the IOAPIC-only pins. */
    static final int[] FREE_GSIS = {5, 6, 7, 9, 10, 11, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};

    private final String id;
    private final LinuxProfile profile;
    private final HypervisorInfo hypervisor;
    private final Partition partition;
    private final GuestMemory memory;
    private final InterruptController interrupts;
    private final List<Vcpu> vcpus = new ArrayList<>();
    private final Bus bus = new Bus();
    private final DeviceDoorbells doorbells;
    private final List<Device> devices = new ArrayList<>();
    private final boolean[] claimedGsis = new boolean[InterruptController.IOAPIC_PINS];
    private final StringBuilder announced = new StringBuilder();
    private final ConsoleLog console = new ConsoleLog();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final ExecutorService vcpuThreads;
    private final String cmdline;
    private final LinuxLayout layout;
    private long nextWindow = LinuxLayout.MMIO_BASE;
    /** Portal regions mapped now, each as the span it occupies in the portal window. */
    private final List<SharedMapping> portals = new ArrayList<>();

    private volatile VmState state = VmState.CREATED;
    private volatile VmResult result;
    private long startedAt;
    private VmResult.Reason stopReason;
    private String stopDetail;
    private final AtomicInteger running = new AtomicInteger();
    private volatile long unservedAccesses;
    private int cmosIndex;

    LinuxVm(String id, LinuxProfile profile, Hypervisor hv, ExecutorService vcpuThreads, Map<String, DeviceFactory> factories) {
        this.id = id;
        this.profile = profile;
        this.hypervisor = hv.info();
        this.vcpuThreads = vcpuThreads;
        if (!hypervisor.flavour().hardwareVirtualization()) {
            throw new HypervisorException("linux boot", 0, "this host's backend is " + hypervisor.flavour().label()
                    + ": a stock Linux kernel needs hardware virtualization (VMX or SVM); run the System VM on such a host");
        }
        byte[] kernelFile = readFile(profile.kernel(), "kernel");
        byte[] initrd = profile.initrd() == null ? new byte[0] : readFile(profile.initrd(), "initramfs");
        BzImage kernel = BzImage.parse(kernelFile, profile.kernel().toString());
        this.layout = LinuxLayout.plan(profile.memoryBytes(), kernel, initrd.length);
        this.partition = hv.createPartition(profile.memoryBytes());
        this.doorbells = new DeviceDoorbells(partition, bus);
        try {
            this.memory = partition.memory();
            this.interrupts = partition.createInterruptController().orElseThrow(() -> new HypervisorException(
                    "create interrupt controller", 0, "the " + hypervisor.backend()
                    + " backend has no in-kernel interrupt controller here; a stock Linux kernel needs one"));
            wireLegacyPorts();
            attach(new DeviceConfig("uart", Map.of()), factories);
            attach(new DeviceConfig("i8042", Map.of()), factories);
            for (DeviceConfig config : profile.devices()) {
                attach(config, factories);
            }
            this.cmdline = (BASE_CMDLINE + announced + " " + profile.cmdline()).strip();
            for (int i = 0; i < profile.vcpus(); i++) {
                vcpus.add(partition.createVcpu(i));
            }
            Vcpu boot = vcpus.get(0);
            // Processor entries carry family/model/stepping; any plausible value will do for Linux.
            LinuxBoot.load(memory, kernel, kernelFile, layout, initrd, cmdline, profile.vcpus(), 0x600, 0x0781_abfd);
            boot.setSpecialRegisters(LinuxBoot.specialRegisters(boot.specialRegisters().apicBase()));
            boot.setRegisters(LinuxBoot.registers(layout));
        } catch (RuntimeException e) {
            closeDevices();
            partition.close();
            throw e;
        }
    }

    private static byte[] readFile(java.nio.file.Path path, String what) {
        try {
            return Files.readAllBytes(path);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the " + what + " " + path + ": " + e.getMessage(), e);
        }
    }

    private void attach(DeviceConfig config, Map<String, DeviceFactory> factories) {
        DeviceFactory factory = factories.get(config.type());
        if (factory == null) {
            throw new IllegalArgumentException("no device type '" + config.type() + "' is installed (have: "
                    + String.join(", ", new TreeSet<>(factories.keySet())) + "); a Linux VM needs uart and i8042 (org.nxia.device.platform)");
        }
        Context context = new Context();
        devices.add(factory.create(config, context));
        if (context.window >= 0 && context.line != null) {
            announced.append(" virtio_mmio.device=%dK@0x%x:%d".formatted(context.windowSize >> 10, context.window, context.line.gsi()));
        }
    }

    /** The CMOS/RTC index and data ports, reading zero: a valid, stopped clock at 2000-01-01. */
    private void wireLegacyPorts() {
        bus.addPorts(CMOS, 2, new PortDevice() {
            @Override
            public void write(int port, int size, int value) {
                if (port == CMOS) {
                    cmosIndex = value & 0x7f;
                }
            }

            @Override
            public int read(int port, int size) {
                return port == CMOS ? cmosIndex : cmosIndex == 0x0d ? 0x80 : 0;   // register D: valid RAM and time
            }
        });
    }

    /** What one device of this VM sees; remembers its window and line for the command line. */
    private final class Context implements DeviceContext {
        long window = -1;
        long windowSize;
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
        public void claimPorts(int first, int count, PortDevice device) {
            bus.addPorts(first, count, device);
        }

        @Override
        public long claimMmio(long size, MmioDevice device) {
            long length = (size + LinuxLayout.PAGE - 1) & -LinuxLayout.PAGE;
            if (size <= 0 || nextWindow + length > LinuxLayout.MMIO_BASE + LinuxLayout.MMIO_SIZE) {
                throw new IllegalArgumentException("the VM's device area (2 MiB at 0x%x) has no room for %d bytes"
                        .formatted(LinuxLayout.MMIO_BASE, size));
            }
            long base = nextWindow;
            bus.addMmio(base, length, device);
            nextWindow += length;
            if (window < 0) {
                window = base;
                windowSize = length;
            }
            return base;
        }

        @Override
        public SharedMapping mapPortal(String name, MemorySegment region, boolean readOnly, long doorbellGpa) {
            return LinuxVm.this.mapPortal(name, region, readOnly);
        }

        @Override
        public Optional<InterruptLine> claimIrq(int gsi) {
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
        public void console(byte[] bytes, int offset, int length) {
            console.append(bytes, offset, length);
        }

        @Override
        public void exit(int status) {
            stopWith(VmResult.Reason.EXITED, "the guest exited with status " + status);
        }

        @Override
        public void reset(String how) {
            stopWith(VmResult.Reason.RESET, "the kernel rebooted or powered off (" + how + "); the VM stopped");
        }

        @Override
        public void fail(String reason) {
            stopWith(VmResult.Reason.GUEST_ERROR, reason);
        }
    }

    /**
     * Maps a Portal region at the first free section of the portal window
     * (above 4 GiB, outside e820); a device (virtio-pmem) tells the guest where.
     */
    private synchronized SharedMapping mapPortal(String name, MemorySegment region, boolean readOnly) {
        long span = (region.byteSize() + LinuxLayout.PORTAL_ALIGN - 1) & -LinuxLayout.PORTAL_ALIGN;
        long end = LinuxLayout.PORTAL_WINDOW + LinuxLayout.PORTAL_WINDOW_SIZE;
        long gpa = LinuxLayout.PORTAL_WINDOW;
        for (boolean moved = true; moved; ) {
            moved = false;
            for (SharedMapping m : portals) {
                if (gpa < m.gpa() + m.size() && m.gpa() < gpa + span) {
                    gpa = (m.gpa() + m.size() + LinuxLayout.PORTAL_ALIGN - 1) & -LinuxLayout.PORTAL_ALIGN;
                    moved = true;
                }
            }
        }
        if (gpa + span > end) {
            throw new IllegalArgumentException("the portal window (%d GiB at 0x%x) has no room for portal '%s' (%d MiB)"
                    .formatted(LinuxLayout.PORTAL_WINDOW_SIZE >> 30, LinuxLayout.PORTAL_WINDOW, name, span >> 20));
        }
        SharedMapping kernel = partition.mapShared(gpa, region, readOnly);
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
                synchronized (LinuxVm.this) {
                    portals.remove(this);
                }
                kernel.close();
            }
        };
        portals.add(mapping);
        return mapping;
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

    /** The command line the kernel gets. */
    String cmdline() {
        return cmdline;
    }

    // ---- ExitHandler: every vCPU thread, every exit ----

    @Override
    public void portWrite(int port, int size, int value) {
        PortDevice h = bus.port(port);
        if (h == null) {
            unservedAccesses++;
            return;
        }
        h.write(port, size, value);
    }

    @Override
    public int portRead(int port, int size) {
        PortDevice h = bus.port(port);
        if (h == null) {
            unservedAccesses++;
            return -1;
        }
        return h.read(port, size);
    }

    @Override
    public void mmioWrite(long address, int size, long value) {
        Bus.MmioRoute r = bus.mmio(address);
        if (r == null) {
            unservedAccesses++;
            return;
        }
        r.device().write(address - r.base(), size, value);
    }

    @Override
    public long mmioRead(long address, int size) {
        Bus.MmioRoute r = bus.mmio(address);
        if (r == null) {
            unservedAccesses++;
            return -1;
        }
        return r.device().read(address - r.base(), size);
    }

    // ---- lifecycle ----

    @Override
    public String id() {
        return id;
    }

    /** A summary: name, memory, the kernel as image, devices; the vCPU count is in {@link #info()}. */
    @Override
    public VmProfile profile() {
        return VmProfile.of(profile.kernel()).withName(profile.name()).withMemory(profile.memoryBytes())
                .withTimeout(profile.timeout()).withDevices(profile.devices());
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
        running.set(vcpus.size());
        for (Vcpu vcpu : vcpus) {
            vcpuThreads.submit(() -> runVcpu(vcpu));
        }
    }

    private void runVcpu(Vcpu vcpu) {
        Thread self = Thread.currentThread();
        String poolName = self.getName();
        self.setName("nxia-" + id + "-vcpu" + vcpu.id());
        try {
            VcpuStop stop = vcpu.run(this);
            switch (stop.kind()) {
                case REQUESTED -> {
                    // another vCPU or the host stopped the VM; its reason stands
                }
                case SHUTDOWN -> stopWith(VmResult.Reason.TRIPLE_FAULT, "vCPU " + vcpu.id() + ": " + stop.detail());
                case HALT -> stopWith(VmResult.Reason.HALTED, "vCPU " + vcpu.id() + " halted");
                default -> stopWith(VmResult.Reason.HYPERVISOR_ERROR, "vCPU " + vcpu.id() + ": " + stop.detail());
            }
        } catch (RuntimeException e) {
            stopWith(VmResult.Reason.HYPERVISOR_ERROR, "vCPU " + vcpu.id() + ": " + e.getMessage());
        } finally {
            self.setName(poolName);
            if (running.decrementAndGet() == 0) {
                finish();
            }
        }
    }

    private synchronized void finish() {
        VmResult.Reason reason = stopReason == null ? VmResult.Reason.STOPPED : stopReason;
        String detail = stopDetail == null ? "stopped" : stopDetail;
        result = new VmResult(reason, -1, detail, new byte[0], Duration.ofNanos(System.nanoTime() - startedAt));
        state = VmState.STOPPED;
        doorbells.closeAll();   // device threads end with the VM
        stopped.countDown();
    }

    @Override
    public void stopWith(VmResult.Reason reason, String detail) {
        synchronized (this) {
            if (stopReason == null) {
                stopReason = reason;
                stopDetail = detail;
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
                finish();
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
        if (state != VmState.STOPPED) {
            for (Vcpu vcpu : vcpus) {
                try {
                    vcpu.statistics().forEach((k, v) -> counters.merge(k, v, Long::sum));
                } catch (RuntimeException e) {
                    // closed under us
                }
            }
        }
        counters.put("unserved_accesses", unservedAccesses);
        counters.put("ioeventfd_doorbells", doorbells.open());
        counters.put("ioeventfd_writes", doorbells.writes());
        return new VmInfo(id, profile.name(), state, profile.memoryBytes(), profile.vcpus(),
                profile.kernel().toString(), hypervisor, "hardware", counters);
    }

    @Override
    public List<Device> devices() {
        return List.copyOf(devices);
    }

    @Override
    public void destroy() {
        if (state == VmState.RUNNING) {
            stopWith(VmResult.Reason.STOPPED, "destroyed");
            try {
                stopped.await(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        } else if (state == VmState.CREATED) {
            stop();
        }
        doorbells.closeAll();
        closeDevices();
        partition.close();
    }

    @Override
    public void recordExitTimes(long[] sink) {
        vcpus.get(0).recordExitTimes(sink);
    }

    @Override
    public int exitTimesRecorded() {
        return vcpus.get(0).recordExitTimes(null);
    }
}
