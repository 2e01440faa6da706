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
 * that goes on where this one paused. Portal regions are not in it (a VM with
 * Portals mapped is not saved yet).
 *
 * @param spec      what the VM was created from
 * @param backend   the hypervisor backend that saved it ({@link org.nxia.vmm.spi.HypervisorInfo#backend()}); another refuses it
 * @param ram       the touched RAM, in ascending, non-overlapping page-aligned chunks inside the spec's memory;
 *                  the rest of RAM is zero
 * @param vcpus     one state per vCPU, in vCPU order
 * @param partition the hypervisor's VM-wide state
 * @param devices   each device's saved state, in the VM's device order
 */
public record VmSnapshot(VmSpec spec, String backend, List<RamChunk> ram, List<VcpuState> vcpus, PartitionState partition,
                         List<DeviceState> devices) {

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
        long previousEnd = 0;
        for (RamChunk c : ram) {
            if (c.gpa() < previousEnd || c.end() > spec.memoryBytes()) {
                throw new IllegalArgumentException("RAM chunk at 0x%x (+0x%x) overlaps the one before or lies outside the %d bytes of RAM"
                        .formatted(c.gpa(), c.bytes().byteSize(), spec.memoryBytes()));
            }
            previousEnd = c.end();
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

    /** Bytes of RAM the snapshot holds. */
    public long ramBytes() {
        return ram.stream().mapToLong(c -> c.bytes().byteSize()).sum();
    }
}
