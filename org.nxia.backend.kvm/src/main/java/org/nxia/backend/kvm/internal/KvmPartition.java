package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.nxia.vmm.api.Doorbell;
import org.nxia.vmm.api.GuestMemory;
import org.nxia.vmm.api.InterruptController;
import org.nxia.vmm.api.Partition;
import org.nxia.vmm.api.Vcpu;

/**
 * A KVM VM: its fd, its RAM (a memfd mapped shared, registered as slot 0) and
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
    /** Global-scope mapping, used only to unmap. */
    private final MemorySegment mapping;
    /** The same RAM scoped to {@link #arena}: once closed, stale views throw instead of touching unmapped memory. */
    private final MemorySegment ram;
    private final GuestMemory memory;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment cpuid;
    private final List<KvmVcpu> vcpus = new ArrayList<>();
    private final int kickSignal;
    private KvmInterrupts interrupts;
    private final List<KvmDoorbell> doorbells = new ArrayList<>();
    private boolean interruptsAsked;
    private boolean closed;

    KvmPartition(KvmSystem system, long ramBytes, int kickSignal) {
        this.system = system;
        this.kickSignal = kickSignal;
        int vm = -1;
        int mem = -1;
        MemorySegment mapped = null;
        try {
            vm = system.createVmFd();
            mem = Libc.memfdCreate("nxia-guest-ram");
            Libc.ftruncate(mem, ramBytes);
            mapped = Libc.mmap(ramBytes, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, mem, "guest RAM");
            MemorySegment region = arena.allocate(KVM_USERSPACE_MEMORY_REGION);
            region.set(ValueLayout.JAVA_INT, O_USERSPACE_MEMORY_REGION_SLOT, 0);
            region.set(ValueLayout.JAVA_INT, O_USERSPACE_MEMORY_REGION_FLAGS, 0);
            region.set(ValueLayout.JAVA_LONG, O_USERSPACE_MEMORY_REGION_GUEST_PHYS_ADDR, 0L);
            region.set(ValueLayout.JAVA_LONG, O_USERSPACE_MEMORY_REGION_MEMORY_SIZE, ramBytes);
            region.set(ValueLayout.JAVA_LONG, O_USERSPACE_MEMORY_REGION_USERSPACE_ADDR, mapped.address());
            Libc.ioctl(vm, KVM_SET_USER_MEMORY_REGION, region, "KVM_SET_USER_MEMORY_REGION");
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
            if (mapped != null) {
                Libc.munmap(mapped);
            }
            if (mem >= 0) {
                Libc.close(mem);
            }
            if (vm >= 0) {
                Libc.close(vm);
            }
            arena.close();
            throw e;
        }
        this.vmFd = vm;
        this.memFd = mem;
        this.mapping = mapped;
        this.ram = scoped(mapped, arena);
        this.memory = GuestMemory.of(0, ram);
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
    public synchronized Vcpu createVcpu(int id) {
        if (closed) {
            throw new IllegalStateException("partition is closed");
        }
        int fd = Libc.ioctl(vmFd, KVM_CREATE_VCPU, id, "KVM_CREATE_VCPU");
        KvmVcpu vcpu;
        try {
            vcpu = new KvmVcpu(id, fd, system.vcpuMmapSize(), kickSignal);
        } catch (RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
        vcpu.setCpuid(Cpuid.forVcpu(cpuid, id, arena));
        vcpus.add(vcpu);
        return vcpu;
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
        KvmDoorbell doorbell = new KvmDoorbell(vmFd, address, length, arena);
        doorbells.add(doorbell);
        return Optional.of(doorbell);
    }

    @Override
    public Map<String, Long> statistics() {
        return Map.of("ram_bytes", ram.byteSize());
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
        for (KvmDoorbell doorbell : doorbells) {
            doorbell.close();
        }
        Libc.close(vmFd);
        for (KvmDoorbell doorbell : doorbells) {
            Libc.close(doorbell.eventFd);
        }
        arena.close();
        Libc.munmap(mapping);
        Libc.close(memFd);
    }
}
