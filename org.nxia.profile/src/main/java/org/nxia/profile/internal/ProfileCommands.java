package org.nxia.profile.internal;

import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import org.nxia.profile.api.Profile;
import org.nxia.profile.api.ProfileRegistry;
import org.nxia.vmm.api.device.DeviceConfig;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** Gogo commands: profile:list, profile:show NAME. */
@Component(service = ProfileCommands.class, property = {"osgi.command.scope=profile",
        "osgi.command.function=list", "osgi.command.function=show"})
public final class ProfileCommands {

    private final ProfileRegistry profiles;

    @Activate
    public ProfileCommands(@Reference ProfileRegistry profiles) {
        this.profiles = profiles;
    }

    /** profile:list — one line per profile, then the refused configurations. */
    public String list() {
        StringBuilder s = new StringBuilder();
        List<Profile> all = profiles.list();
        if (all.isEmpty()) {
            s.append("no profiles: add a factory configuration ").append(ProfileService.FACTORY_PID)
                    .append(" (a file org.nxia.profile-NAME.cfg in the configuration directory)\n");
        } else {
            s.append(String.format("%-12s %4s %-7s %7s %5s  %s%n", "PROFILE", "VER", "KIND", "MEMORY", "VCPUS", "DEVICES"));
            for (Profile p : all) {
                s.append(String.format("%-12s %4d %-7s %7s %5d  %s%n", p.name(), p.version(), kind(p),
                        size(p.memoryBytes()), p.vcpus(), devices(p.devices())));
            }
        }
        refusals(s);
        return s.toString().stripTrailing();
    }

    /** profile:show NAME — every setting of one profile. */
    public String show(String name) {
        Profile p = profiles.get(name).orElseThrow(() -> new IllegalArgumentException(
                "no profile " + name + " (profile:list shows the profiles)"));
        StringBuilder s = new StringBuilder();
        s.append("profile    ").append(p.name()).append(" (version ").append(p.version()).append(")\n");
        s.append("kind       ").append(kind(p)).append('\n');
        s.append("memory     ").append(size(p.memoryBytes())).append('\n');
        s.append("vcpus      ").append(p.vcpus()).append('\n');
        s.append("devices    ").append(devices(p.devices())).append('\n');
        s.append("manifest   ").append(p.manifest()).append('\n');
        s.append("portal     ").append(p.portal() ? "grants and shared regions allowed" : "none (no grants, no shared regions)").append('\n');
        Profile.Placement pl = p.placement();
        s.append("cpus       ").append(pl.cpus().isEmpty() ? "any (not pinned)"
                : pl.cpus().stream().map(String::valueOf).collect(Collectors.joining(","))).append('\n');
        s.append("hugepages  ").append(pl.hugePages()).append('\n');
        s.append("overcommit ").append(pl.overcommit());
        if (p.hyperv()) {
            s.append("\nhyperv     the guest sees a Hyper-V partition");
        }
        return s.toString();
    }

    private void refusals(StringBuilder s) {
        for (Map.Entry<String, String> e : profiles.refused().entrySet()) {
            s.append("REFUSED ").append(e.getKey()).append(": ").append(e.getValue()).append('\n');
        }
    }

    static String size(long bytes) {
        long mib = bytes >> 20;
        return mib % 1024 == 0 ? (mib >> 10) + "G" : mib + "M";
    }

    private static String kind(Profile p) {
        return p.kind().name().toLowerCase(java.util.Locale.ROOT);
    }

    private static String devices(List<DeviceConfig> devices) {
        return devices.isEmpty() ? "-" : devices.stream().map(DeviceConfig::toString).collect(Collectors.joining("; "));
    }
}
