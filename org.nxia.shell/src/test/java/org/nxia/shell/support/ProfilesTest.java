package org.nxia.shell.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.junit.jupiter.api.Test;
import org.nxia.profile.api.Profile;
import org.nxia.profile.api.ProfileRegistry;
import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.spi.PlacementOutcome;
import org.nxia.vmm.api.device.DeviceConfig;

/** --profile on the System VM commands: what a system profile gives the Linux VM they boot, and what vm:info prints. */
class ProfilesTest {

    private static final Profile PERF = new Profile("perf", 3, Profile.Kind.SYSTEM, 1L << 30, 2,
            List.of(DeviceConfig.parse("virtio-rng")), "system", true, new Profile.Placement(List.of(0, 1), true, false));
    private static final Profile MICRO = new Profile("micro", 1, Profile.Kind.MICRO, 16L << 20, 1, List.of(), "micro", true,
            Profile.Placement.DEFAULT);

    private final ProfileRegistry registry = new ProfileRegistry() {
        @Override
        public List<Profile> list() {
            return List.of(MICRO, PERF);
        }

        @Override
        public Optional<Profile> get(String name) {
            return list().stream().filter(p -> p.name().equals(name)).findFirst();
        }

        @Override
        public Map<String, String> refused() {
            return Map.of();
        }
    };

    @Test
    void aSystemProfileGivesItsMemoryVcpusDevicesPlacementNameAndManifest() {
        LinuxProfile base = LinuxProfile.of(Path.of("bzImage"), null).withDevices(List.of(DeviceConfig.parse("virtio-vsock")));
        LinuxProfile p = Profiles.apply(Profiles.get(registry, "perf", Profile.Kind.SYSTEM), base, "");
        assertEquals("profile perf v3", p.name());
        assertEquals(1L << 30, p.memoryBytes());
        assertEquals(2, p.vcpus());
        assertEquals(List.of("virtio-rng", "virtio-vsock"), p.devices().stream().map(DeviceConfig::type).toList(), "the profile's first");
        assertEquals(new HostPlacement(List.of(0, 1), true, false), p.placement());
        assertEquals(PERF.manifest(), p.manifest(), "its processes' calls go by the profile's manifest, not the VM's name");
        assertEquals(256L << 20, Profiles.apply(PERF, base, "256M").memoryBytes(), "--memory overrides");
        assertFalse(p.hyperv());
        Profile hyperv = new Profile("hv", 1, Profile.Kind.SYSTEM, 1L << 30, 1, List.of(), "system", true, Profile.Placement.DEFAULT, true);
        assertTrue(Profiles.apply(hyperv, base, "").hyperv(), "the profile's hyperv=true");
        assertTrue(Profiles.apply(PERF, base.withHyperv(true), "").hyperv(), "vm:boot --hyperv with a profile without it");
    }

    @Test
    void aMissingOrMicroProfileIsRefusedSayingWhy() {
        assertEquals("no profile nope (profile:list shows the profiles)",
                assertThrows(IllegalArgumentException.class, () -> Profiles.get(registry, "nope", Profile.Kind.SYSTEM)).getMessage());
        assertEquals("profile micro makes a micro VM, not a Linux System VM",
                assertThrows(IllegalArgumentException.class, () -> Profiles.get(registry, "micro", Profile.Kind.SYSTEM)).getMessage());
        assertThrows(IllegalStateException.class, () -> Profiles.get(null, "perf", Profile.Kind.SYSTEM));
    }

    @Test
    void vmInfoPrintsOneLinePerPartAskedFor() {
        StringBuilder out = new StringBuilder();
        Profiles.describe(List.of(new PlacementOutcome("cpus", true, true, "0,1 pinned (vcpu0 on 0, vcpu1 on 1)"),
                new PlacementOutcome("hugepages", true, false, "requested, none free, THP off for shared memory (shmem_enabled=never): 4 KiB pages"),
                new PlacementOutcome("overcommit", true, true, "none: all 1024 MiB allocated up front")), out);
        assertEquals("""
                cpus:       0,1 pinned (vcpu0 on 0, vcpu1 on 1)
                hugepages:  requested, none free, THP off for shared memory (shmem_enabled=never): 4 KiB pages
                overcommit: none: all 1024 MiB allocated up front
                """, out.toString());
    }
}
