package org.nxia.vmm.api;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.spi.HostPlacement;

/**
 * What a Linux VM (the System VM) is made of: a bzImage, an optional
 * initramfs, command-line additions, vCPUs and RAM. Needs hardware
 * virtualization. Validated on construction: a bad value throws
 * {@link IllegalArgumentException} saying what is allowed.
 *
 * @param name        a name for people
 * @param kernel      the kernel, an x86 bzImage (boot protocol 2.12 or later, 64-bit)
 * @param initrd      the initramfs, or {@code null} for none
 * @param cmdline     added to the command line the VMM writes (console, devices); may be empty
 * @param vcpus       1 to {@value #MAX_VCPUS}
 * @param memoryBytes a multiple of 2 MiB from 64 MiB to 3 GiB
 * @param timeout     how long the VM may run before it is stopped ({@code VmManager.run}; a System VM's
 *                    launcher), or {@link #NO_TIMEOUT} for no limit
 * @param devices     devices besides the console UART and i8042, which every Linux VM has
 * @param placement   where its vCPUs and RAM go on the host
 * @param acpi        whether the guest gets ACPI tables (MADT, a DSDT naming the virtio-mmio devices)
 *                    instead of finding its virtio-mmio devices on the command line; the MP tables stay
 * @param manifest    the capability manifest (the call policy's profile) that decides the calls of the
 *                    VM's processes and confines the programs it runs, or {@code null} for the one named
 *                    as the VM is ({@link #manifest()} says which)
 * @param hyperv      whether the guest sees a Hyper-V partition (the hypervisor's Hyper-V CPUID
 *                    leaves instead of its own, SynIC on every vCPU: the enlightenments Linux's Hyper-V
 *                    code uses; docs/vmbus.md); since 3.8
 */
public record LinuxProfile(String name, Path kernel, Path initrd, String cmdline, int vcpus, long memoryBytes,
                           Duration timeout, List<DeviceConfig> devices, HostPlacement placement, boolean acpi,
                           String manifest, boolean hyperv) implements VmSpec {

    public static final int MAX_VCPUS = 32;
    public static final long MIN_MEMORY = 64 * VmProfile.MIB;
    public static final long DEFAULT_MEMORY = 256 * VmProfile.MIB;
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(5);
    /**
     * A {@link #timeout()} of no limit: the VM runs until it stops or is stopped (an interactive
     * console or shell, a System VM kept running). Zero, as for a socket's timeout.
     *
     * @since 3.2
     */
    public static final Duration NO_TIMEOUT = Duration.ZERO;

    public LinuxProfile {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(kernel, "kernel");
        Objects.requireNonNull(cmdline, "cmdline");
        Objects.requireNonNull(timeout, "timeout");
        Objects.requireNonNull(devices, "devices");
        Objects.requireNonNull(placement, "placement");
        if (vcpus < 1 || vcpus > MAX_VCPUS) {
            throw new IllegalArgumentException("vcpus=" + vcpus + " is not allowed: 1 to " + MAX_VCPUS);
        }
        if (memoryBytes < MIN_MEMORY || memoryBytes > VmProfile.MAX_MEMORY || memoryBytes % (2 * VmProfile.MIB) != 0) {
            throw new IllegalArgumentException("memory %s is not allowed: give a multiple of 2 MiB from 64 MiB to 3072 MiB (e.g. 256M)"
                    .formatted(VmProfile.bytesToString(memoryBytes)));
        }
        if (timeout.isNegative()) {
            throw new IllegalArgumentException("timeout must be positive, or zero (NO_TIMEOUT) for none, got " + timeout);
        }
        devices = List.copyOf(devices);
        if (manifest != null && manifest.isBlank()) {
            throw new IllegalArgumentException("manifest must be a name, or null for the VM's own name");
        }
    }

    /**
     * A profile without the Hyper-V enlightenments.
     *
     * @since 3.3
     */
    public LinuxProfile(String name, Path kernel, Path initrd, String cmdline, int vcpus, long memoryBytes,
                        Duration timeout, List<DeviceConfig> devices, HostPlacement placement, boolean acpi, String manifest) {
        this(name, kernel, initrd, cmdline, vcpus, memoryBytes, timeout, devices, placement, acpi, manifest, false);
    }

    /**
     * A profile whose manifest is named as the VM is.
     *
     * @since 3.3
     */
    public LinuxProfile(String name, Path kernel, Path initrd, String cmdline, int vcpus, long memoryBytes,
                        Duration timeout, List<DeviceConfig> devices, HostPlacement placement, boolean acpi) {
        this(name, kernel, initrd, cmdline, vcpus, memoryBytes, timeout, devices, placement, acpi, null);
    }

    /**
     * The capability manifest that governs the VM: the one {@link #withManifest} set, else the
     * one named as the VM is.
     *
     * @since 3.3
     */
    @Override
    public String manifest() {
        return manifest != null ? manifest : name;
    }

    /** A profile without ACPI tables. */
    public LinuxProfile(String name, Path kernel, Path initrd, String cmdline, int vcpus, long memoryBytes,
                        Duration timeout, List<DeviceConfig> devices, HostPlacement placement) {
        this(name, kernel, initrd, cmdline, vcpus, memoryBytes, timeout, devices, placement, false);
    }

    /** A profile placed as {@link HostPlacement#NONE}, without ACPI tables. */
    public LinuxProfile(String name, Path kernel, Path initrd, String cmdline, int vcpus, long memoryBytes,
                        Duration timeout, List<DeviceConfig> devices) {
        this(name, kernel, initrd, cmdline, vcpus, memoryBytes, timeout, devices, HostPlacement.NONE);
    }

    /**
     * A profile with the defaults: no command-line additions, 1 vCPU, 256 MiB, 5 minutes, no extra
     * devices, ACPI tables (since 3.4; {@code withAcpi(false)} for MP tables and the devices on the
     * command line, as before).
     */
    public static LinuxProfile of(Path kernel, Path initrd) {
        Path file = kernel.getFileName();
        return new LinuxProfile(file == null ? kernel.toString() : file.toString(), kernel, initrd, "", 1,
                DEFAULT_MEMORY, DEFAULT_TIMEOUT, List.of(), HostPlacement.NONE, true);
    }

    public LinuxProfile withName(String value) {
        return new LinuxProfile(value, kernel, initrd, cmdline, vcpus, memoryBytes, timeout, devices, placement, acpi, manifest, hyperv);
    }

    public LinuxProfile withVcpus(int value) {
        return new LinuxProfile(name, kernel, initrd, cmdline, value, memoryBytes, timeout, devices, placement, acpi, manifest, hyperv);
    }

    public LinuxProfile withMemory(long bytes) {
        return new LinuxProfile(name, kernel, initrd, cmdline, vcpus, bytes, timeout, devices, placement, acpi, manifest, hyperv);
    }

    public LinuxProfile withCmdline(String value) {
        return new LinuxProfile(name, kernel, initrd, value, vcpus, memoryBytes, timeout, devices, placement, acpi, manifest, hyperv);
    }

    public LinuxProfile withTimeout(Duration value) {
        return new LinuxProfile(name, kernel, initrd, cmdline, vcpus, memoryBytes, value, devices, placement, acpi, manifest, hyperv);
    }

    public LinuxProfile withPlacement(HostPlacement value) {
        return new LinuxProfile(name, kernel, initrd, cmdline, vcpus, memoryBytes, timeout, devices, value, acpi, manifest, hyperv);
    }

    public LinuxProfile withDevices(List<DeviceConfig> list) {
        return new LinuxProfile(name, kernel, initrd, cmdline, vcpus, memoryBytes, timeout, list, placement, acpi, manifest, hyperv);
    }

    /** @since 3.3 */
    public LinuxProfile withManifest(String value) {
        return new LinuxProfile(name, kernel, initrd, cmdline, vcpus, memoryBytes, timeout, devices, placement, acpi, value, hyperv);
    }

    /** @since 3.8 */
    public LinuxProfile withHyperv(boolean value) {
        return new LinuxProfile(name, kernel, initrd, cmdline, vcpus, memoryBytes, timeout, devices, placement, acpi, manifest, value);
    }

    public LinuxProfile withAcpi(boolean value) {
        return new LinuxProfile(name, kernel, initrd, cmdline, vcpus, memoryBytes, timeout, devices, placement, value, manifest, hyperv);
    }
}
