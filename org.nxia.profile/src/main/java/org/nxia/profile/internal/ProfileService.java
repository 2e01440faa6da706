package org.nxia.profile.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Dictionary;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.nxia.profile.api.Profile;
import org.nxia.profile.api.ProfileRegistry;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.device.DeviceConfig;
import org.osgi.framework.BundleContext;
import org.osgi.service.cm.ConfigurationException;
import org.osgi.service.cm.ManagedServiceFactory;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;

/**
 * The profiles. Each arrives as a ConfigAdmin factory configuration (PID {@value #FACTORY_PID});
 * Felix FileInstall makes one of each {@code org.nxia.profile-NAME.cfg} in the watched directory
 * and updates it when the file changes. A valid update replaces the profile for the next VM and
 * counts its version up; an invalid one is refused with the reason and the previous one stays.
 */
// WHY immediate: a delayed component's instance is dropped when no bundle uses it, and the next
// one never gets the configurations ConfigAdmin delivered before: the platform lost its profiles.
@Component(immediate = true, service = {ProfileRegistry.class, ManagedServiceFactory.class}, property = "service.pid=" + ProfileService.FACTORY_PID)
public final class ProfileService implements ProfileRegistry, ManagedServiceFactory {

    public static final String FACTORY_PID = "org.nxia.profile";
    /** Profiles held at once: each is an administrator's configuration, but ConfigAdmin takes any number. */
    static final int MAX_PROFILES = 256;
    static final long SETTLE_MILLIS = 5_000;
    /** FileInstall's name for a factory configuration file: PID-ALIAS.cfg (or .config). */
    static final Pattern FILE = Pattern.compile(Pattern.quote(FACTORY_PID) + "-(.+)\\.(cfg|config)");

    private static final System.Logger LOG = System.getLogger("org.nxia.profile");

    /** Configuration PID → profile. */
    private final Map<String, Profile> byPid = new ConcurrentHashMap<>();
    private final Map<String, String> refused = new ConcurrentHashMap<>();
    /** Profile name → the last version given out, kept across a delete so a re-created profile does not reuse a number. */
    private final Map<String, Long> versions = new ConcurrentHashMap<>();

    /** Once every profile file present at start has arrived: no more waiting. */
    private volatile boolean settled;
    /** FileInstall's directory, or null where none is watched (tests that configure ConfigAdmin directly). */
    private volatile Path watched;

    public ProfileService() {
    }

    @Activate
    public ProfileService(BundleContext context) {
        String dir = context.getProperty("felix.fileinstall.dir");
        watched = dir == null ? null : Path.of(dir);
    }

    /**
     * Waits, at most {@link #SETTLE_MILLIS}, until every profile file in FileInstall's directory
     * has reached this service (taken or refused): FileInstall reads them on its own thread, and a
     * command run right at start-up ({@code ./nxia exec}) must see them all.
     */
    private void settle() {
        Path dir = watched;
        if (settled || dir == null) {
            return;
        }
        Set<String> expected = new HashSet<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.map(f -> FILE.matcher(f.getFileName().toString())).filter(Matcher::matches)
                    .forEach(m -> expected.add(FACTORY_PID + "~" + m.group(1)));
        } catch (IOException e) {
            settled = true;   // no directory: nothing to wait for
            return;
        }
        long deadline = System.nanoTime() + SETTLE_MILLIS * 1_000_000;
        while (System.nanoTime() < deadline) {
            Set<String> seen = new HashSet<>(byPid.keySet());
            seen.addAll(refused.keySet());
            if (seen.containsAll(expected)) {
                break;
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        settled = true;
    }

    @Override
    public String getName() {
        return "NXIA VM profiles";
    }

    @Override
    public synchronized void updated(String pid, Dictionary<String, ?> properties) throws ConfigurationException {
        try {
            Profile p = parse(properties);
            for (Map.Entry<String, Profile> e : byPid.entrySet()) {
                if (!e.getKey().equals(pid) && e.getValue().name().equals(p.name())) {
                    throw new IllegalArgumentException("profile '" + p.name() + "' is already configured by " + e.getKey());
                }
            }
            Profile before = byPid.get(pid);
            if (before == null && byPid.size() >= MAX_PROFILES) {
                throw new IllegalArgumentException("already " + MAX_PROFILES + " profiles");
            }
            if (before != null && before.name().equals(p.name()) && before.sameSettings(p)) {
                refused.remove(pid);
                return;   // FileInstall touched the file: nothing changed, the version stays
            }
            long version = versions.merge(p.name(), 1L, Long::sum);
            byPid.put(pid, p.withVersion(version));
            refused.remove(pid);
            // the first version of each is the start-up load: said quietly; a change is news
            LOG.log(version == 1 ? System.Logger.Level.DEBUG : System.Logger.Level.INFO, "profile " + p.name() + " v" + version + " (" + pid + ")");
        } catch (IllegalArgumentException e) {
            refused.put(pid, e.getMessage());
            LOG.log(System.Logger.Level.ERROR, "profile configuration " + pid + " refused, the previous one stays: " + e.getMessage());
            throw new ConfigurationException(null, e.getMessage());
        }
    }

    @Override
    public synchronized void deleted(String pid) {
        byPid.remove(pid);
        refused.remove(pid);
    }

    @Override
    public List<Profile> list() {
        settle();
        List<Profile> all = new ArrayList<>(byPid.values());
        all.sort(Comparator.comparing(Profile::name));
        return all;
    }

    @Override
    public Optional<Profile> get(String name) {
        settle();
        return byPid.values().stream().filter(p -> p.name().equals(name)).findFirst();
    }

    @Override
    public Map<String, String> refused() {
        settle();
        return Map.copyOf(refused);
    }

    /** A profile (version 1) from a configuration's properties; every value is checked. */
    static Profile parse(Dictionary<String, ?> properties) {
        String name = string(properties, "name", null);
        if (name == null) {
            throw new IllegalArgumentException("a profile needs a 'name'");
        }
        String kindText = string(properties, "kind", "system");
        Profile.Kind kind = switch (kindText) {
            case "system" -> Profile.Kind.SYSTEM;
            case "micro" -> Profile.Kind.MICRO;
            default -> throw new IllegalArgumentException(name + ": kind '" + kindText + "' is not 'system' or 'micro'");
        };
        long memory = size(name, string(properties, "memory", kind == Profile.Kind.SYSTEM ? "512M" : "16M"), kind);
        int vcpus = integer(name, "vcpus", string(properties, "vcpus", "1"));
        List<DeviceConfig> devices = new ArrayList<>();
        for (String spec : strings(properties, "devices")) {
            try {
                devices.add(DeviceConfig.parse(spec));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(name + ": device '" + spec + "': " + e.getMessage());
            }
        }
        String manifest = string(properties, "manifest", name);
        boolean portal = bool(name, "portal", string(properties, "portal", "true"));
        List<Integer> cpus = cpus(name, string(properties, "cpus", ""));
        boolean hugePages = bool(name, "hugepages", string(properties, "hugepages", "false"));
        boolean overcommit = bool(name, "overcommit", string(properties, "overcommit", "true"));
        boolean hyperv = bool(name, "hyperv", string(properties, "hyperv", "false"));
        return new Profile(name, 1, kind, memory, vcpus, devices, manifest, portal,
                new Profile.Placement(cpus, hugePages, overcommit), hyperv);
    }

    private static String string(Dictionary<String, ?> properties, String key, String absent) {
        Object v = properties.get(key);
        return v == null ? absent : v.toString().strip();
    }

    /** A list property: an array or collection (typed .config files), or one string split at ';'. */
    private static List<String> strings(Dictionary<String, ?> properties, String key) {
        Object v = properties.get(key);
        List<String> out = new ArrayList<>();
        if (v instanceof Object[] a) {
            for (Object o : a) {
                out.add(String.valueOf(o));
            }
        } else if (v instanceof Iterable<?> i) {
            i.forEach(o -> out.add(String.valueOf(o)));
        } else if (v != null) {
            out.addAll(List.of(v.toString().split(";")));
        }
        out.replaceAll(String::strip);
        out.removeIf(String::isEmpty);
        if (out.size() > 64) {
            throw new IllegalArgumentException(key + ": more than 64 entries");
        }
        return out;
    }

    private static long size(String name, String text, Profile.Kind kind) {
        long bytes;
        try {
            bytes = VmProfile.parseSize(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name + ": memory '" + text + "': " + e.getMessage());
        }
        long min = kind == Profile.Kind.SYSTEM ? 64 * VmProfile.MIB : VmProfile.MIN_MEMORY;
        if (bytes < min || bytes > VmProfile.MAX_MEMORY || bytes % (2 * VmProfile.MIB) != 0) {
            throw new IllegalArgumentException(name + ": memory '" + text + "' is not a multiple of 2M from "
                    + (min / VmProfile.MIB) + "M to " + (VmProfile.MAX_MEMORY / VmProfile.MIB) + "M");
        }
        return bytes;
    }

    private static int integer(String name, String key, String text) {
        try {
            return Integer.parseInt(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + ": " + key + " '" + text + "' is not a number");
        }
    }

    private static boolean bool(String name, String key, String text) {
        return switch (text) {
            case "true" -> true;
            case "false" -> false;
            default -> throw new IllegalArgumentException(name + ": " + key + " '" + text + "' is not true or false");
        };
    }

    /** "0-3,6": host CPUs 0, 1, 2, 3 and 6. */
    static List<Integer> cpus(String name, String text) {
        java.util.Set<Integer> cpus = new java.util.LinkedHashSet<>();
        if (text.isEmpty()) {
            return List.of();
        }
        for (String part : text.split(",")) {
            String[] range = part.strip().split("-", -1);
            try {
                int from = Integer.parseInt(range[0].strip());
                int to = range.length == 2 ? Integer.parseInt(range[1].strip()) : from;
                if (range.length > 2 || from < 0 || to < from || to >= 4096) {
                    throw new NumberFormatException();
                }
                for (int c = from; c <= to; c++) {
                    cpus.add(c);
                }
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(name + ": cpus '" + text + "' is not a list of host CPUs and ranges (0-3,6) within 0..4095");
            }
        }
        return List.copyOf(cpus);
    }
}
