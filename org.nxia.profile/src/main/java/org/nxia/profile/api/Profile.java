package org.nxia.profile.api;

import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.device.DeviceConfig;

/**
 * One VM profile at one version.
 *
 * @param name      what {@code vm:create --profile} names: lower-case letters, digits and '-', 1..32
 * @param version   1 for the first configuration of this name, one more at each change
 * @param kind      the VM it makes
 * @param memoryBytes guest RAM
 * @param vcpus     vCPUs (a micro-VM has 1)
 * @param devices   the device set, in order
 * @param manifest  the capability manifest (policy profile) its calls are checked against
 * @param portal    whether Portal grants and shared regions are allowed
 * @param placement where its vCPUs and RAM go on the host
 * @param hyperv    whether its guest sees a Hyper-V partition (a System VM only; since 1.2)
 */
public record Profile(String name, long version, Kind kind, long memoryBytes, int vcpus, List<DeviceConfig> devices,
                      String manifest, boolean portal, Placement placement, boolean hyperv) {

    static final Pattern NAME = Pattern.compile("[a-z][a-z0-9-]{0,31}");

    /** The VM a profile makes. */
    public enum Kind {
        /** A Linux System VM with the guest agent. */
        SYSTEM,
        /** An OS-less micro-VM (a sandbox). */
        MICRO
    }

    /**
     * Host placement.
     *
     * @param cpus       host CPUs the vCPU threads are pinned to; empty: not pinned
     * @param hugePages  back guest RAM with huge pages where the host has them
     * @param overcommit whether guest RAM may be overcommitted (false: touched up front)
     */
    public record Placement(List<Integer> cpus, boolean hugePages, boolean overcommit) {
        public static final Placement DEFAULT = new Placement(List.of(), false, true);

        public Placement {
            cpus = List.copyOf(cpus);
            for (int c : cpus) {
                if (c < 0 || c >= 4096) {
                    throw new IllegalArgumentException("host CPU " + c + " is out of range 0..4095");
                }
            }
        }

        /** This placement as the VMM takes it (whether the host has these CPUs is checked when a VM is made). */
        public HostPlacement host() {
            return new HostPlacement(cpus, hugePages, overcommit);
        }
    }

    public Profile {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(manifest, "manifest");
        Objects.requireNonNull(placement, "placement");
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("profile name '" + name + "' is not 1..32 of a-z, 0-9 and '-', starting with a letter");
        }
        if (version < 1) {
            throw new IllegalArgumentException("version " + version + " is not 1 or more");
        }
        if (vcpus < 1 || vcpus > LinuxProfile.MAX_VCPUS || (kind == Kind.MICRO && vcpus != 1)) {
            throw new IllegalArgumentException("vcpus=" + vcpus + ": a " + kind.name().toLowerCase() + " profile has "
                    + (kind == Kind.MICRO ? "1" : "1.." + LinuxProfile.MAX_VCPUS));
        }
        devices = List.copyOf(devices);
        if (hyperv && kind != Kind.SYSTEM) {
            throw new IllegalArgumentException(name + ": hyperv is for a system profile; a micro-VM has no Hyper-V devices");
        }
    }

    /** A profile without Hyper-V (1.1). */
    public Profile(String name, long version, Kind kind, long memoryBytes, int vcpus, List<DeviceConfig> devices,
                   String manifest, boolean portal, Placement placement) {
        this(name, version, kind, memoryBytes, vcpus, devices, manifest, portal, placement, false);
    }

    /** The same profile at {@code next}. */
    public Profile withVersion(long next) {
        return new Profile(name, next, kind, memoryBytes, vcpus, devices, manifest, portal, placement, hyperv);
    }

    /** Whether {@code other} configures the same thing (the version aside). */
    public boolean sameSettings(Profile other) {
        return withVersion(other.version).equals(other);
    }
}
