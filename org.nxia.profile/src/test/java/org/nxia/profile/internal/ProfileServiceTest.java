package org.nxia.profile.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.profile.api.Profile;
import org.osgi.service.cm.ConfigurationException;

class ProfileServiceTest {

    final ProfileService service = new ProfileService();

    static Dictionary<String, Object> config(String... keyValues) {
        Hashtable<String, Object> d = new Hashtable<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            d.put(keyValues[i], keyValues[i + 1]);
        }
        return d;
    }

    @Test
    void aProfileGetsEverySettingAndDefaultsForTheRest() throws Exception {
        service.updated("pid.1", config("name", "perf", "kind", "system", "memory", "1G", "vcpus", "2",
                "devices", "virtio-rng; virtio-blk:path=/tmp/x.img", "cpus", "0-2,5", "hugepages", "true", "overcommit", "false",
                "hyperv", "true"));
        Profile p = service.get("perf").orElseThrow();
        assertTrue(p.hyperv());
        assertEquals(1, p.version());
        assertEquals(Profile.Kind.SYSTEM, p.kind());
        assertEquals(1L << 30, p.memoryBytes());
        assertEquals(2, p.vcpus());
        assertEquals(List.of("virtio-rng", "virtio-blk"), p.devices().stream().map(d -> d.type()).toList());
        assertEquals("/tmp/x.img", p.devices().get(1).get("path", ""));
        assertEquals("perf", p.manifest(), "the manifest defaults to the profile's name");
        assertTrue(p.portal());
        assertEquals(new Profile.Placement(List.of(0, 1, 2, 5), true, false), p.placement());
        assertEquals(new org.nxia.vmm.spi.HostPlacement(List.of(0, 1, 2, 5), true, false), p.placement().host(), "as the VMM takes it");

        service.updated("pid.2", config("name", "micro", "kind", "micro", "portal", "false", "manifest", "sandbox"));
        Profile m = service.get("micro").orElseThrow();
        assertEquals(16L << 20, m.memoryBytes(), "a micro profile's default memory");
        assertEquals(List.of(), m.devices());
        assertEquals("sandbox", m.manifest());
        assertFalse(m.portal());
        assertEquals(Profile.Placement.DEFAULT, m.placement());
        assertFalse(m.hyperv(), "no Hyper-V unless asked");
        assertEquals(512L << 20, ProfileService.parse(config("name", "s")).memoryBytes(), "a system profile's default memory");
        assertEquals(List.of("micro", "perf"), service.list().stream().map(Profile::name).toList(), "by name");
    }

    @Test
    void aChangeCountsTheVersionUpAndATouchDoesNot() throws Exception {
        service.updated("pid.1", config("name", "system", "memory", "256M"));
        service.updated("pid.1", config("name", "system", "memory", "256M"));
        assertEquals(1, service.get("system").orElseThrow().version(), "the same settings again: no new version");
        service.updated("pid.1", config("name", "system", "memory", "512M"));
        Profile p = service.get("system").orElseThrow();
        assertEquals(2, p.version());
        assertEquals(512L << 20, p.memoryBytes());
        service.deleted("pid.1");
        assertTrue(service.get("system").isEmpty());
        service.updated("pid.9", config("name", "system"));
        assertEquals(3, service.get("system").orElseThrow().version(), "a re-created profile does not reuse a version number");
    }

    @Test
    void anInvalidChangeIsRefusedWithItsReasonAndThePreviousVersionStays() throws Exception {
        service.updated("pid.1", config("name", "system", "memory", "256M"));
        String[][] bad = {
            {"memory", "3M"}, {"memory", "lots"}, {"memory", "32M"}, {"memory", "4G"}, {"vcpus", "0"}, {"vcpus", "x"},
            {"vcpus", "33"}, {"kind", "windows"}, {"devices", "bad type!"}, {"cpus", "3-1"}, {"cpus", "-1"}, {"cpus", "4096"},
            {"cpus", "1-2-3"}, {"hugepages", "yes"}, {"portal", "1"}, {"overcommit", ""}, {"hyperv", "on"},
        };
        for (String[] kv : bad) {
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> service.updated("pid.1", config("name", "system", kv[0], kv[1])), kv[0] + "=" + kv[1]);
            assertTrue(service.refused().get("pid.1").contains(kv[0]) || service.refused().get("pid.1").contains("device"),
                    kv[0] + "=" + kv[1] + ": " + service.refused().get("pid.1"));
            assertEquals(e.getReason(), service.refused().get("pid.1"));
            Profile still = service.get("system").orElseThrow();
            assertEquals(1, still.version(), kv[0] + "=" + kv[1]);
            assertEquals(256L << 20, still.memoryBytes());
        }
        assertThrows(ConfigurationException.class, () -> service.updated("pid.1", config("name", "system", "kind", "micro", "vcpus", "2")));
        ConfigurationException micro = assertThrows(ConfigurationException.class,
                () -> service.updated("pid.1", config("name", "system", "kind", "micro", "hyperv", "true")));
        assertTrue(micro.getReason().contains("hyperv is for a system profile"), micro.getReason());
        assertThrows(ConfigurationException.class, () -> service.updated("pid.3", config("memory", "64M")), "no name");
        assertThrows(ConfigurationException.class, () -> service.updated("pid.3", config("name", "Bad_Name")));
        ConfigurationException twice = assertThrows(ConfigurationException.class, () -> service.updated("pid.2", config("name", "system")));
        assertTrue(twice.getReason().contains("already configured by pid.1"), twice.getReason());
        service.updated("pid.1", config("name", "system", "memory", "256M"));
        assertFalse(service.refused().containsKey("pid.1"), "a good configuration clears the refusal");
    }

    @Test
    void profilesAreBounded() throws Exception {
        for (int i = 0; i < ProfileService.MAX_PROFILES; i++) {
            service.updated("pid." + i, config("name", "p" + i));
        }
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> service.updated("pid.x", config("name", "one-more")));
        assertTrue(e.getReason().contains("already " + ProfileService.MAX_PROFILES), e.getReason());
        service.updated("pid.0", config("name", "p0", "memory", "1G"));   // a change to one held is still taken
        assertEquals(2, service.get("p0").orElseThrow().version());
    }

    @Test
    void theShippedProfilesAreValid() throws Exception {
        java.nio.file.Path conf = java.nio.file.Path.of("..", "distro", "conf");
        List<String> names = new java.util.ArrayList<>();
        try (var files = java.nio.file.Files.list(conf)) {
            for (java.nio.file.Path f : files.filter(f -> f.getFileName().toString().startsWith("org.nxia.profile-")).sorted().toList()) {
                java.util.Properties props = new java.util.Properties();
                try (var in = java.nio.file.Files.newBufferedReader(f)) {
                    props.load(in);
                }
                Hashtable<String, Object> d = new Hashtable<>();
                props.forEach((k, v) -> d.put(k.toString(), v));
                service.updated(f.getFileName().toString(), d);
                names.add(d.get("name").toString());
            }
        }
        assertEquals(List.of("isolated", "micro", "perf", "system"), names);
        assertFalse(service.get("isolated").orElseThrow().portal(), "isolated: no Portal");
        assertEquals(Profile.Kind.MICRO, service.get("micro").orElseThrow().kind());
        assertEquals(List.of(0, 1), service.get("perf").orElseThrow().placement().cpus());
        assertTrue(service.get("perf").orElseThrow().placement().hugePages());
        assertEquals(Profile.Kind.SYSTEM, service.get("system").orElseThrow().kind());
    }

    @Test
    void aCommandRightAtStartSeesEveryProfileFileFileInstallIsStillReading(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        java.nio.file.Files.writeString(dir.resolve("org.nxia.profile-a.cfg"), "name = a\n");
        java.nio.file.Files.writeString(dir.resolve("org.nxia.profile-b.config"), "name = \"b\"\n");
        java.nio.file.Files.writeString(dir.resolve("other.cfg"), "x = 1\n");
        org.osgi.framework.BundleContext context = (org.osgi.framework.BundleContext) java.lang.reflect.Proxy.newProxyInstance(
                getClass().getClassLoader(), new Class<?>[] {org.osgi.framework.BundleContext.class},
                (proxy, method, args) -> method.getName().equals("getProperty") && "felix.fileinstall.dir".equals(args[0])
                        ? dir.toString() : null);
        ProfileService watching = new ProfileService(context);
        Thread fileInstall = Thread.ofPlatform().start(() -> {
            try {
                Thread.sleep(300);
                watching.updated("org.nxia.profile~a", config("name", "a"));
                Thread.sleep(300);
                assertThrows(ConfigurationException.class, () -> watching.updated("org.nxia.profile~b", config("name", "b", "vcpus", "x")));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        List<Profile> seen = watching.list();
        fileInstall.join();
        assertEquals(List.of("a"), seen.stream().map(Profile::name).toList(), "a arrived, b was refused, other.cfg is not a profile");
        assertTrue(watching.refused().containsKey("org.nxia.profile~b"));
    }

    @Test
    void cpuListsAndRanges() {
        assertEquals(List.of(0, 1, 2, 3, 6), ProfileService.cpus("p", "0-3,6"));
        assertEquals(List.of(2, 0, 1), ProfileService.cpus("p", "2, 0-2"), "in order given, each once");
        assertEquals(List.of(), ProfileService.cpus("p", ""));
        assertEquals(4096, ProfileService.cpus("p", "0-4095").size());
    }

    @Test
    void listAndShowSayWhatIsConfiguredAndWhatWasRefused() throws Exception {
        ProfileCommands commands = new ProfileCommands(service);
        assertTrue(commands.list().startsWith("no profiles"), commands.list());
        service.updated("pid.1", config("name", "isolated", "memory", "2G", "portal", "false", "devices", "virtio-rng"));
        assertThrows(ConfigurationException.class, () -> service.updated("pid.2", config("name", "perf", "vcpus", "zero")));
        String list = commands.list();
        assertTrue(list.contains("isolated        1 system       2G     1  virtio-rng"), list);
        assertTrue(list.contains("REFUSED pid.2: perf: vcpus 'zero' is not a number"), list);
        String show = commands.show("isolated");
        assertTrue(show.contains("profile    isolated (version 1)"), show);
        assertTrue(show.contains("portal     none (no grants, no shared regions)"), show);
        assertTrue(show.contains("cpus       any (not pinned)"), show);
        assertFalse(show.contains("hyperv"), "said only when on: " + show);
        service.updated("pid.3", config("name", "windowsy", "hyperv", "true"));
        assertTrue(commands.show("windowsy").endsWith("hyperv     the guest sees a Hyper-V partition"), commands.show("windowsy"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> commands.show("perf"));
        assertTrue(e.getMessage().contains("no profile perf"), e.getMessage());
    }
}
