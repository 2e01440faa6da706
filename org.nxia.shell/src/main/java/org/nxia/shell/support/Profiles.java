package org.nxia.shell.support;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import org.nxia.profile.api.Profile;
import org.nxia.profile.api.ProfileRegistry;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.spi.PlacementOutcome;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.device.DeviceConfig;

/** A configured profile ({@code --profile NAME}) applied to what a command builds. */
public final class Profiles {

    /** The help of a command's {@code --profile} for a System VM. */
    public static final String SYSTEM_PROFILE_HELP = "a system profile (profile:list): its memory, vCPUs, devices (before --devices) and"
            + " placement (pinned vCPUs, huge pages, no overcommit), and its name and version in vm:info";

    /**
     * The capability manifest of a System VM booted with no profile: the default profile's
     * ({@code system}, shipped in distro/conf with the manifest of the same name).
     */
    public static final String SYSTEM_MANIFEST = "system";

    private Profiles() {
    }

    /** The profile {@code name} of {@code kind}, or an error saying what is wrong. */
    public static Profile get(ProfileRegistry registry, String name, Profile.Kind kind) {
        if (registry == null) {
            throw new IllegalStateException("no profile registry: the org.nxia.profile bundle is not running");
        }
        Profile p = registry.get(name).orElseThrow(() -> new IllegalArgumentException("no profile " + name + " (profile:list shows the profiles)"));
        if (p.kind() != kind) {
            throw new IllegalArgumentException("profile " + name + " makes a " + p.kind().name().toLowerCase(Locale.ROOT) + " VM, not a "
                    + (kind == Profile.Kind.MICRO ? "micro-VM" : "Linux System VM"));
        }
        return p;
    }

    /** What a VM made from {@code p} is called in vm:list and vm:info: its name and version. */
    public static String vmName(Profile p) {
        return "profile " + p.name() + " v" + p.version();
    }

    /**
     * {@code base} with the profile's vCPUs, placement, devices (the profile's first, then
     * {@code base}'s) and manifest, and its memory unless {@code memory} overrides it.
     */
    public static LinuxProfile apply(Profile p, LinuxProfile base, String memory) {
        List<DeviceConfig> devices = new ArrayList<>(p.devices());
        devices.addAll(base.devices());
        return base.withName(vmName(p)).withMemory(memory.isEmpty() ? p.memoryBytes() : VmProfile.parseSize(memory))
                .withVcpus(p.vcpus()).withDevices(devices).withPlacement(p.placement().host()).withManifest(p.manifest())
                .withHyperv(p.hyperv() || base.hyperv());
    }

    /** The vm:info lines for a VM's placement: one per part asked for. */
    public static void describe(List<PlacementOutcome> placement, StringBuilder out) {
        for (PlacementOutcome o : placement) {
            out.append(String.format("%-12s", o.aspect() + ":")).append(o.detail()).append('\n');
        }
    }
}
