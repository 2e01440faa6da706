package org.nxia.vmm.api;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
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
 * @param portals   the Portal regions the VM had mapped, in ascending guest addresses outside its RAM (since 3.4; a
 *                  file-backed region by reference since 3.5)
 */
public record VmSnapshot(VmSpec spec, String backend, List<RamChunk> ram, List<VcpuState> vcpus, PartitionState partition,
                         List<DeviceState> devices, List<SavedPortal> portals) {

    /**
     * A Portal region the VM had mapped, as saved: its content ({@link PortalContent}) or, for a
     * region backed by a file, a reference to that file ({@link PortalFile}).
     *
     * @since 3.5
     */
    public sealed interface SavedPortal permits PortalContent, PortalFile {

        /** The region's name. */
        String name();

        /** Where the VM saw it, page-aligned. */
        long gpa();

        /** Its size, a positive multiple of 4 KiB. */
        long size();

        default long end() {
            return gpa() + size();
        }
    }

    /**
     * An anonymous Portal region the VM had mapped, and what it held when the VM was saved. The
     * region is shared memory: a restore maps the region of this name from the new VM's profile,
     * as any VM does, and puts {@code bytes} back into it.
     *
     * @param name  the region's name
     * @param gpa   where the VM saw it, page-aligned
     * @param bytes its content, read-only: the region's whole size, a positive multiple of 4 KiB
     * @since 3.4
     */
    public record PortalContent(String name, long gpa, MemorySegment bytes) implements SavedPortal {

        public PortalContent {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(bytes, "bytes");
            new GuestRange(gpa, bytes.byteSize());   // checks alignment
            bytes = bytes.asReadOnly();
        }

        @Override
        public long size() {
            return bytes.byteSize();
        }
    }

    /**
     * A file-backed Portal region the VM had mapped, saved by reference: its content lives in
     * {@code file} (persistent, the region's own), so the snapshot holds the file's path and the
     * SHA-256 of what the region held when the VM was saved, not a copy. A restore maps the region
     * of this name from the new VM's profile, as any VM does, and goes on only where that region
     * is backed by the same file and still holds that content: the guest resumes over the data it
     * saw, or not at all.
     *
     * @param name   the region's name
     * @param gpa    where the VM saw it, page-aligned
     * @param size   its size, a positive multiple of 4 KiB
     * @param file   the file behind it, absolute
     * @param sha256 the SHA-256 of its content when saved, 32 bytes
     * @since 3.5
     */
    public record PortalFile(String name, long gpa, long size, Path file, byte[] sha256) implements SavedPortal {

        public PortalFile {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(file, "file");
            new GuestRange(gpa, size);   // checks alignment
            if (!file.isAbsolute()) {
                throw new IllegalArgumentException("Portal region '" + name + "': its file " + file + " is not an absolute path");
            }
            if (sha256.length != 32) {
                throw new IllegalArgumentException("Portal region '" + name + "': a SHA-256 is 32 bytes, not " + sha256.length);
            }
            sha256 = sha256.clone();
        }

        @Override
        public byte[] sha256() {
            return sha256.clone();
        }

        /** Whether {@code content} is what the region held when saved. */
        public boolean holds(MemorySegment content) {
            return content.byteSize() == size && MessageDigest.isEqual(sha256, digest(content));
        }

        /** The SHA-256 of {@code content}, read in place. */
        public static byte[] digest(MemorySegment content) {
            MessageDigest sha;
            try {
                sha = MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("this JDK has no SHA-256", e);
            }
            sha.update(content.asByteBuffer());
            return sha.digest();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof PortalFile p && p.name.equals(name) && p.gpa == gpa && p.size == size && p.file.equals(file)
                    && Arrays.equals(p.sha256, sha256);
        }

        @Override
        public int hashCode() {
            return Objects.hash(name, gpa, size, file, Arrays.hashCode(sha256));
        }

        @Override
        public String toString() {
            return "PortalFile[" + name + " at 0x" + Long.toHexString(gpa) + ", " + size + " bytes in " + file + "]";
        }
    }

    /** A VM saved with no Portal region mapped. */
    public VmSnapshot(VmSpec spec, String backend, List<RamChunk> ram, List<VcpuState> vcpus, PartitionState partition,
                      List<DeviceState> devices) {
        this(spec, backend, ram, vcpus, partition, devices, List.of());
    }

    /**
     * This snapshot without its RAM: the state a copy-on-write clone takes, its RAM coming from a file
     * ({@code VmManager.clone}).
     *
     * @since 3.6
     */
    public VmSnapshot withoutRam() {
        return new VmSnapshot(spec, backend, List.of(), vcpus, partition, devices, portals);
    }

    /**
     * This snapshot for a VM made from {@code other} (the same machine with, say, a device the
     * restoring side adds); it is checked again as a whole.
     *
     * @since 3.6
     */
    public VmSnapshot withSpec(VmSpec other) {
        return new VmSnapshot(other, backend, ram, vcpus, partition, devices, portals);
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
        for (SavedPortal p : portals) {
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

    /** Bytes of Portal regions the snapshot holds (a file-backed region's stay in its file). */
    public long portalBytes() {
        return portals.stream().mapToLong(p -> p instanceof PortalContent c ? c.size() : 0).sum();
    }

    /** Bytes of RAM the snapshot holds. */
    public long ramBytes() {
        return ram.stream().mapToLong(c -> c.bytes().byteSize()).sum();
    }
}
