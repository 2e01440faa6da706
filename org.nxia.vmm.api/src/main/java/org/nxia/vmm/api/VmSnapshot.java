package org.nxia.vmm.api;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import org.nxia.vmm.spi.GuestRange;
import org.nxia.vmm.spi.PartitionState;
import org.nxia.vmm.spi.VcpuState;

/**
 * A paused VM, saved whole and immutable: what it was created from, the guest
 * RAM that was ever touched, every vCPU's state, the hypervisor's VM state and
 * each device's own saved state. {@link VmManager#restore} makes a new VM of it
 * that goes on where this one paused, and what each Portal region it had
 * mapped held then.
 *
 * @param spec      what the VM was created from
 * @param backend   the hypervisor backend that saved it ({@link org.nxia.vmm.spi.HypervisorInfo#backend()}); another refuses it
 * @param ram       the touched RAM, in ascending, non-overlapping page-aligned chunks inside the spec's memory;
 *                  the rest of RAM is zero
 * @param vcpus     one state per vCPU, in vCPU order
 * @param partition the hypervisor's VM-wide state
 * @param devices   each device's saved state, in the VM's device order
 * @param portals   the Portal regions the VM had mapped, in ascending guest addresses outside its RAM (since 3.4)
 */
public record VmSnapshot(VmSpec spec, String backend, List<RamChunk> ram, List<VcpuState> vcpus, PartitionState partition,
                         List<DeviceState> devices, List<PortalContent> portals) {

    /**
     * A Portal region the VM had mapped, and what it held when the VM was saved. The region is
     * shared memory: a restore maps the region of this name from the new VM's profile, as any
     * VM does, and puts {@code bytes} back into it.
     *
     * @param name  the region's name
     * @param gpa   where the VM saw it, page-aligned
     * @param bytes its content, read-only: the region's whole size, a positive multiple of 4 KiB
     * @since 3.4
     */
    public record PortalContent(String name, long gpa, MemorySegment bytes) {

        public PortalContent {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(bytes, "bytes");
            new GuestRange(gpa, bytes.byteSize());   // checks alignment
            bytes = bytes.asReadOnly();
        }

        public long end() {
            return gpa + bytes.byteSize();
        }
    }

    /** A VM saved with no Portal region mapped. */
    public VmSnapshot(VmSpec spec, String backend, List<RamChunk> ram, List<VcpuState> vcpus, PartitionState partition,
                      List<DeviceState> devices) {
        this(spec, backend, ram, vcpus, partition, devices, List.of());
    }

    /**
     * Guest RAM from {@code gpa}: a read-only segment, page-aligned in length.
     * A chunk is at most {@link #MAX_CHUNK} bytes.
     */
    public record RamChunk(long gpa, MemorySegment bytes) {

        public static final long MAX_CHUNK = 64L << 20;

        public RamChunk {
            Objects.requireNonNull(bytes, "bytes");
            new GuestRange(gpa, bytes.byteSize());   // checks alignment
            if (bytes.byteSize() > MAX_CHUNK) {
                throw new IllegalArgumentException("a RAM chunk is at most " + MAX_CHUNK + " bytes, not " + bytes.byteSize());
            }
            bytes = bytes.asReadOnly();
        }

        public long end() {
            return gpa + bytes.byteSize();
        }
    }

    /**
     * One device's saved state, as its {@code Device.saveState()} returned it.
     *
     * @param type the device's type, checked on restore against the new VM's device in the same place
     */
    public record DeviceState(String type, byte[] state) {

        public DeviceState {
            Objects.requireNonNull(type, "type");
            state = state.clone();
        }

        @Override
        public byte[] state() {
            return state.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof DeviceState d && d.type.equals(type) && Arrays.equals(d.state, state);
        }

        @Override
        public int hashCode() {
            return 31 * type.hashCode() + Arrays.hashCode(state);
        }

        @Override
        public String toString() {
            return "DeviceState[" + type + ", " + state.length + " bytes]";
        }
    }

    public VmSnapshot {
        Objects.requireNonNull(spec, "spec");
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(partition, "partition");
        ram = List.copyOf(ram);
        vcpus = List.copyOf(vcpus);
        devices = List.copyOf(devices);
        portals = List.copyOf(portals);
        long previousEnd = 0;
        for (RamChunk c : ram) {
            if (c.gpa() < previousEnd || c.end() > spec.memoryBytes()) {
                throw new IllegalArgumentException("RAM chunk at 0x%x (+0x%x) overlaps the one before or lies outside the %d bytes of RAM"
                        .formatted(c.gpa(), c.bytes().byteSize(), spec.memoryBytes()));
            }
            previousEnd = c.end();
        }
        long portalEnd = spec.memoryBytes();
        java.util.Set<String> names = new java.util.HashSet<>();
        for (PortalContent p : portals) {
            if (p.gpa() < portalEnd) {
                throw new IllegalArgumentException("Portal region '%s' at 0x%x overlaps RAM or the region before it"
                        .formatted(p.name(), p.gpa()));
            }
            if (!names.add(p.name())) {
                throw new IllegalArgumentException("Portal region '" + p.name() + "' is in the snapshot twice");
            }
            portalEnd = p.end();
        }
        if (vcpus.size() != spec.vcpus()) {
            throw new IllegalArgumentException("the snapshot has " + vcpus.size() + " vCPU states for " + spec.vcpus() + " vCPUs");
        }
        for (int i = 0; i < vcpus.size(); i++) {
            if (vcpus.get(i).id() != i) {
                throw new IllegalArgumentException("vCPU state " + i + " is for vCPU " + vcpus.get(i).id());
            }
        }
    }

    /** Bytes of Portal regions the snapshot holds. */
    public long portalBytes() {
        return portals.stream().mapToLong(p -> p.bytes().byteSize()).sum();
    }

    /** Bytes of RAM the snapshot holds. */
    public long ramBytes() {
        return ram.stream().mapToLong(c -> c.bytes().byteSize()).sum();
    }
}
