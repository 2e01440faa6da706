package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.nxia.vmm.spi.DirtyLog;
import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.GuestRange;
import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.spi.InterruptController;
import org.nxia.vmm.spi.Partition;
import org.nxia.vmm.spi.PartitionState;
import org.nxia.vmm.spi.PlacementOutcome;
import org.nxia.vmm.spi.RamFile;
import org.nxia.vmm.spi.SharedMapping;
import org.nxia.vmm.spi.SharedRam;
import org.nxia.vmm.spi.SynicHost;
import org.nxia.vmm.spi.Vcpu;

/**
 * A KVM VM: its fd, its RAM (a {@link GuestRam} memfd mapped shared, registered as slot 0) and
 * its vCPUs. Closing it closes the vCPUs, unmaps RAM and closes the fds.
 */
final class KvmPartition implements Partition {

    // Field offsets, computed once: looking a layout path up by name on every call is slow.
    private static final long O_USERSPACE_MEMORY_REGION_FLAGS = offset(KVM_USERSPACE_MEMORY_REGION, "flags");
    private static final long O_USERSPACE_MEMORY_REGION_GUEST_PHYS_ADDR = offset(KVM_USERSPACE_MEMORY_REGION, "guest_phys_addr");
    private static final long O_USERSPACE_MEMORY_REGION_MEMORY_SIZE = offset(KVM_USERSPACE_MEMORY_REGION, "memory_size");
    private static final long O_USERSPACE_MEMORY_REGION_SLOT = offset(KVM_USERSPACE_MEMORY_REGION, "slot");
    private static final long O_USERSPACE_MEMORY_REGION_USERSPACE_ADDR = offset(KVM_USERSPACE_MEMORY_REGION, "userspace_addr");

    /** Three pages for Intel's real-mode TSS, and the page below it for the EPT identity map. */
    static final long TSS_ADDR = 0xfffb_d000L;
    static final long IDENTITY_MAP_ADDR = 0xfffb_c000L;

    private final KvmSystem system;
    private final int vmFd;
    private final int memFd;
    /** The memfd and its global-scope mapping, used only to unmap. */
    private final GuestRam guestRam;
    /** The same RAM scoped to {@link #arena}: once closed, stale views throw instead of touching unmapped memory. */
    private final MemorySegment ram;
    private final GuestMemory memory;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment cpuid;
    private final List<KvmVcpu> vcpus = new ArrayList<>();
    private final int kickSignal;
    private final long ramBytes;
    private KvmInterrupts interrupts;
    /** Open doorbells; each removes itself when closed (without this lock: a doorbell closes under its own). */
    private final Set<KvmDoorbell> doorbells = ConcurrentHashMap.newKeySet();
    private boolean interruptsAsked;
    private KvmVcpuState.Support vcpuState;
    private KvmDirtyLog dirtyLog;
    /** Each vCPU made from now on sees a Hyper-V partition ({@link #enableHyperV}). */
    private boolean hyperV;
    private SynicHost synicHost = SynicHost.NONE;
    /** The file a clone's RAM is mapped from, or null: RAM is the memfd's. */
    private RamFile mappedFrom;
    private long copiedFromFile;
    private boolean closed;

    KvmPartition(KvmSystem system, long ramBytes, HostPlacement placement, int kickSignal) {
        this.system = system;
        this.kickSignal = kickSignal;
        this.ramBytes = ramBytes;
        int vm = -1;
        GuestRam guestRam = null;
        try {
            vm = system.createVmFd();
            guestRam = GuestRam.allocate(ramBytes, placement);
            setMemoryRegion(vm, 0, 0, 0L, ramBytes, guestRam.mapping.address());
            // Intel without unrestricted guest needs a TSS area and (with EPT) an identity-map
            // page for real mode, below 4 GiB and outside RAM and every MMIO window; PVM and AMD
            // refuse or ignore them.
            try {
                Libc.ioctl(vm, KVM_SET_TSS_ADDR, TSS_ADDR, "KVM_SET_TSS_ADDR");
                MemorySegment identityMap = arena.allocate(ValueLayout.JAVA_LONG);
                identityMap.set(ValueLayout.JAVA_LONG, 0, IDENTITY_MAP_ADDR);
                Libc.ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, identityMap, "KVM_SET_IDENTITY_MAP_ADDR");
            } catch (KvmException ignored) {
                // not needed by this backend's 64-bit entry
            }
            this.cpuid = system.supportedCpuid();
        } catch (RuntimeException e) {
            if (guestRam != null) {
                guestRam.close();
            }
            if (vm >= 0) {
                Libc.close(vm);
            }
            arena.close();
            throw e;
        }
        this.vmFd = vm;
        this.guestRam = guestRam;
        this.memFd = guestRam.fd;
        this.ram = scoped(guestRam.mapping, arena);
        this.memory = GuestMemory.of(0, ram);
    }

    private void setMemoryRegion(int vm, int slot, int flags, long gpa, long size, long hostAddress) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment region = call.allocate(KVM_USERSPACE_MEMORY_REGION);
            region.set(ValueLayout.JAVA_INT, O_USERSPACE_MEMORY_REGION_SLOT, slot);
            region.set(ValueLayout.JAVA_INT, O_USERSPACE_MEMORY_REGION_FLAGS, flags);
            region.set(ValueLayout.JAVA_LONG, O_USERSPACE_MEMORY_REGION_GUEST_PHYS_ADDR, gpa);
            region.set(ValueLayout.JAVA_LONG, O_USERSPACE_MEMORY_REGION_MEMORY_SIZE, size);
            region.set(ValueLayout.JAVA_LONG, O_USERSPACE_MEMORY_REGION_USERSPACE_ADDR, hostAddress);
            Libc.ioctl(vm, KVM_SET_USER_MEMORY_REGION, region, "KVM_SET_USER_MEMORY_REGION");
        }
    }

    @SuppressWarnings("restricted")
    private static MemorySegment scoped(MemorySegment mapping, Arena arena) {
        return mapping.reinterpret(mapping.byteSize(), arena, null);
    }

    @Override
    public GuestMemory memory() {
        return memory;
    }

    @Override
    public synchronized List<SharedRam> sharedRam() {
        // a clone's RAM is a private mapping of its snapshot file: another process would not see its writes
        return mappedFrom != null || closed ? List.of() : List.of(new SharedRam(0, ramBytes, ram.address(), memFd, 0));
    }

    @Override
    public synchronized Vcpu createVcpu(int id) {
        if (closed) {
            throw new IllegalStateException("partition is closed");
        }
        int fd = Libc.ioctl(vmFd, KVM_CREATE_VCPU, id, "KVM_CREATE_VCPU");
        KvmVcpu vcpu;
        try {
            if (vcpuState == null) {
                // after the interrupt controller's turn: whether vCPUs have a local APIC to save is known now
                vcpuState = KvmVcpuState.Support.of(vmFd, system.msrIndices(), interrupts != null);
            }
            vcpu = new KvmVcpu(id, fd, system.vcpuMmapSize(), kickSignal, vcpuState);
        } catch (RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
        if (hyperV) {
            try {
                vcpu.enableSynic(synicHost);
                interrupts.synicEnabled(id);
                vcpu.setCpuidOrFail(Cpuid.forVcpu(Cpuid.withHyperV(cpuid, vcpu.supportedHyperVCpuid(arena), arena), id, arena));
            } catch (RuntimeException e) {
                vcpu.close();
                throw e;
            }
        } else {
            vcpu.setCpuid(Cpuid.forVcpu(cpuid, id, arena));
        }
        vcpus.add(vcpu);
        return vcpu;
    }

    /**
     * KVM emulates Hyper-V itself (KVM_CAP_HYPERV): the hypercall page, reference TSC page and
     * synthetic MSRs in the kernel; SynIC per vCPU (KVM_CAP_HYPERV_SYNIC2) on the in-kernel local
     * APIC; the CPUID leaves asked of each vCPU (KVM_CAP_HYPERV_CPUID).
     */
    @Override
    public void enableHyperV() {
        enableHyperV(SynicHost.NONE);
    }

    @Override
    public synchronized void enableHyperV(SynicHost host) {
        Objects.requireNonNull(host, "host");
        if (closed) {
            throw new IllegalStateException("partition is closed");
        }
        if (!vcpus.isEmpty() || interrupts == null) {
            throw new IllegalStateException("a Hyper-V partition is made after the interrupt controller and before the first vCPU");
        }
        for (int cap : new int[] {KVM_CAP_HYPERV, KVM_CAP_HYPERV_SYNIC2, KVM_CAP_HYPERV_CPUID}) {
            if (Libc.ioctl(vmFd, KVM_CHECK_EXTENSION, cap, "KVM_CHECK_EXTENSION") <= 0) {
                throw new UnsupportedOperationException("this KVM does not emulate Hyper-V (it lacks capability " + cap
                        + " of KVM_CAP_HYPERV, _SYNIC2, _CPUID: 44, 148, 167)");
            }
        }
        hyperV = true;
        synicHost = host;
    }

    @Override
    public synchronized Optional<InterruptController> createInterruptController() {
        if (closed) {
            throw new IllegalStateException("partition is closed");
        }
        if (interruptsAsked || !vcpus.isEmpty()) {
            throw new IllegalStateException("the interrupt controller is created once, before the first vCPU");
        }
        interruptsAsked = true;
        interrupts = KvmInterrupts.create(vmFd, arena);
        return Optional.ofNullable(interrupts);
    }

    @Override
    public synchronized Optional<Doorbell> createDoorbell(long address, int length) {
        if (closed) {
            throw new IllegalStateException("partition is closed");
        }
        if (length != 1 && length != 2 && length != 4 && length != 8) {
            throw new IllegalArgumentException("a doorbell matches writes of 1, 2, 4 or 8 bytes, not " + length);
        }
        if (address < 0 || address < ram.byteSize()) {
            throw new IllegalArgumentException("a doorbell needs an MMIO address; 0x%x is in RAM".formatted(address));
        }
        if (Libc.ioctl(vmFd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD, "KVM_CHECK_EXTENSION") <= 0) {
            return Optional.empty();
        }
        KvmDoorbell doorbell = new KvmDoorbell(vmFd, address, length, doorbells::remove);
        doorbells.add(doorbell);
        return Optional.of(doorbell);
    }

    /**
     * The memfd's data extents (SEEK_DATA/SEEK_HOLE): pages never touched are holes and read as zero.
     * A clone's RAM is not the memfd's: all of it (the snapshot writer still skips its zero pages).
     */
    @Override
    public synchronized List<GuestRange> populatedRam() {
        if (closed) {
            throw new IllegalStateException("partition is closed");
        }
        return mappedFrom != null ? List.of(new GuestRange(0, ramBytes)) : dataExtents(memFd, ramBytes);
    }

    /**
     * Maps the file's pages copy-on-write over the RAM's mapping in place ({@link CopyOnWriteRam}):
     * the KVM slot keeps its address (KVM follows the host mapping through its MMU notifier), and the
     * memfd, mapped nowhere now, is emptied of what loading wrote.
     */
    @Override
    public synchronized void mapRamFrom(RamFile file) {
        if (closed) {
            throw new IllegalStateException("partition is closed");
        }
        for (PlacementOutcome o : guestRam.outcomes()) {
            if (o.inEffect()) {   // hugetlbfs pages or RAM allocated up front: a file's 4 KiB pages would undo either
                throw new IllegalStateException("guest RAM was placed (" + o.aspect() + ": " + o.detail()
                        + "); a clone's RAM is the snapshot file's pages and cannot be placed");
            }
        }
        if (mappedFrom != null) {
            throw new IllegalStateException("guest RAM is already mapped from " + mappedFrom.file());
        }
        if (file.ramBytes() != ramBytes) {
            throw new IllegalArgumentException(file.file() + " describes " + file.ramBytes() + " bytes of RAM; this VM has " + ramBytes);
        }
        mappedFrom = file;   // first: should mapping fail midway, RAM is zero pages, no longer the memfd's
        copiedFromFile = CopyOnWriteRam.map(guestRam.mapping, file);
        Libc.ftruncate(memFd, 0);
    }

    /** The page-rounded data extents of the first {@code size} bytes of {@code fd}. */
    static List<GuestRange> dataExtents(int fd, long size) {
        List<GuestRange> out = new ArrayList<>();
        long at = 0;
        while (at < size) {
            long data = Libc.seek(fd, at, Libc.SEEK_DATA);
            if (data < 0 || data >= size) {
                break;
            }
            long hole = Math.min(size, Libc.seek(fd, data, Libc.SEEK_HOLE));
            long start = data & -PAGE;
            long end = Math.min(size, (hole + PAGE - 1) & -PAGE);
            out.add(new GuestRange(start, end - start));
            at = end;
        }
        return out;
    }

    /** Turns on KVM_MEM_LOG_DIRTY_PAGES for the RAM slot (KVM allows changing a slot's flags in place). */
    @Override
    public synchronized Optional<DirtyLog> startDirtyLog() {
        if (closed) {
            throw new IllegalStateException("partition is closed");
        }
        if (dirtyLog == null) {
            setMemoryRegion(vmFd, 0, KVM_MEM_LOG_DIRTY_PAGES, 0L, ramBytes, guestRam.mapping.address());
            dirtyLog = new KvmDirtyLog();
        }
        return Optional.of(dirtyLog);
    }

    /**
     * KVM_GET_DIRTY_LOG on the RAM slot: KVM copies out its bitmap and
     * write-protects those pages again, so each call starts a new interval.
     * KVM_CLEAR_DIRTY_LOG (manual protection) would let a caller re-protect
     * only part of it; a reset takes it all, so the plain ioctl is enough.
     */
    private final class KvmDirtyLog implements DirtyLog {
        private static final long O_DIRTY_LOG_BITMAP = offset(KVM_DIRTY_LOG, "dirty_bitmap");
        private final int words = (int) ((ramBytes / PAGE + 63) / 64);
        // Allocated once: collect() runs on every sandbox reset.
        private final MemorySegment request = arena.allocate(KVM_DIRTY_LOG);
        private final MemorySegment bitmap = arena.allocate(ValueLayout.JAVA_LONG, words);

        KvmDirtyLog() {
            request.set(ValueLayout.JAVA_INT, offset(KVM_DIRTY_LOG, "slot"), 0);
            request.set(ValueLayout.JAVA_LONG, O_DIRTY_LOG_BITMAP, bitmap.address());
        }

        @Override
        public long collect(long[] out) {
            if (out.length < words) {
                throw new IllegalArgumentException("the dirty bitmap needs " + words + " words, not " + out.length);
            }
            synchronized (KvmPartition.this) {
                if (closed) {
                    throw new IllegalStateException("partition is closed");
                }
                Libc.ioctl(vmFd, KVM_GET_DIRTY_LOG, request, "KVM_GET_DIRTY_LOG");
                long pages = 0;
                for (int i = 0; i < words; i++) {
                    long w = bitmap.getAtIndex(ValueLayout.JAVA_LONG, i);
                    if (w != 0) {
                        out[i] |= w;
                        pages += Long.bitCount(w);
                    }
                }
                return pages;
            }
        }
    }

    @Override
    public synchronized PartitionState saveState() {
        if (closed) {
            throw new IllegalStateException("partition is closed");
        }
        return KvmPartitionState.save(vmFd, interrupts != null, CpuFeatures.of(cpuid));
    }

    @Override
    public synchronized void restoreState(PartitionState state) {
        if (closed) {
            throw new IllegalStateException("partition is closed");
        }
        KvmPartitionState.restore(vmFd, interrupts != null, state, CpuFeatures.of(cpuid));
    }

    @Override
    public List<PlacementOutcome> placement() {
        return guestRam.outcomes();
    }

    @Override
    public synchronized Map<String, Long> statistics() {
        if (mappedFrom == null || closed) {
            return Map.of("ram_bytes", ram.byteSize());
        }
        CopyOnWriteRam.Usage u = CopyOnWriteRam.Usage.of(guestRam.mapping.address(), ramBytes);
        return Map.of("ram_bytes", ram.byteSize(), "ram_file_bytes", mappedFrom.storedBytes(), "ram_file_copied_bytes", copiedFromFile,
                "ram_file_resident_bytes", u.filePages(), "ram_shared_bytes", u.shared(), "ram_own_bytes", u.own());
    }

    // ---- shared memory (Portal) ----

    private static final long PAGE = 4096;
    /** Slot 0 is RAM; shared mappings take slots from 1 (x86 KVM has at least 509 user slots). */
    private static final int MAX_SHARED_SLOTS = 256;
    private final BitSet sharedSlots = new BitSet();
    private final List<KvmSharedMapping> shared = new ArrayList<>();

    private final class KvmSharedMapping implements SharedMapping {
        private final int slot;
        private final long gpa;
        private final long size;
        private final boolean readOnly;
        private boolean unmapped;

        KvmSharedMapping(int slot, long gpa, long size, boolean readOnly) {
            this.slot = slot;
            this.gpa = gpa;
            this.size = size;
            this.readOnly = readOnly;
        }

        @Override
        public long gpa() {
            return gpa;
        }

        @Override
        public long size() {
            return size;
        }

        @Override
        public boolean readOnly() {
            return readOnly;
        }

        @Override
        public void close() {
            synchronized (KvmPartition.this) {
                if (unmapped) {
                    return;
                }
                unmapped = true;
                shared.remove(this);
                if (!closed) {
                    setMemoryRegion(vmFd, slot, 0, gpa, 0, 0); // size 0 deletes the slot
                }
                sharedSlots.clear(slot);
            }
        }
    }

    @Override
    public synchronized SharedMapping mapShared(long gpa, MemorySegment host, boolean readOnly) {
        if (closed) {
            throw new IllegalStateException("partition is closed");
        }
        long size = host.byteSize();
        if (!host.isNative() || host.address() % PAGE != 0 || size <= 0 || size % PAGE != 0 || gpa < 0 || gpa % PAGE != 0) {
            throw new IllegalArgumentException("a shared mapping needs page-aligned native memory of whole pages at a page-aligned guest address"
                    + " (host 0x%x +%d, guest 0x%x)".formatted(host.address(), size, gpa));
        }
        if (gpa > Long.MAX_VALUE - size || gpa < ramBytes) {
            throw new IllegalArgumentException("guest range [0x%x, +0x%x) overlaps RAM (0 to 0x%x)".formatted(gpa, size, ramBytes));
        }
        for (KvmSharedMapping m : shared) {
            if (gpa < m.gpa + m.size && m.gpa < gpa + size) {
                throw new IllegalArgumentException("guest range [0x%x, +0x%x) overlaps the mapping at 0x%x".formatted(gpa, size, m.gpa));
            }
        }
        int slot = sharedSlots.nextClearBit(1);
        if (slot > MAX_SHARED_SLOTS) {
            throw new IllegalArgumentException("this VM already has " + MAX_SHARED_SLOTS + " shared mappings");
        }
        setMemoryRegion(vmFd, slot, readOnly ? KVM_MEM_READONLY : 0, gpa, size, host.address());
        sharedSlots.set(slot);
        KvmSharedMapping mapping = new KvmSharedMapping(slot, gpa, size, readOnly);
        shared.add(mapping);
        return mapping;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (KvmVcpu vcpu : vcpus) {
            vcpu.close();
        }
        vcpus.clear();
        if (interrupts != null) {
            interrupts.close();
        }
        // before the VM fd: a doorbell deassigns itself through it
        for (KvmDoorbell doorbell : List.copyOf(doorbells)) {
            doorbell.close();
        }
        Libc.close(vmFd);
        arena.close();
        guestRam.close();
    }
}
