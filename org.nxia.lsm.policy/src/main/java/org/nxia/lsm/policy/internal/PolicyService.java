package org.nxia.lsm.policy.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Dictionary;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

import org.nxia.lsm.policy.api.AuditEntry;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.lsm.policy.api.Decision;
import org.nxia.lsm.policy.api.GuestConfinement;
import org.osgi.service.cm.ConfigurationException;
import org.osgi.service.cm.ManagedServiceFactory;
import org.osgi.service.component.annotations.Component;

/**
 * The call policy. Manifests arrive as ConfigAdmin factory configurations
 * (PID {@value #FACTORY_PID}) holding the manifest text ({@code manifest}) or
 * a path to it ({@code file}); an update replaces the manifest at once, an
 * invalid one is refused with the line and reason and the previous one stays.
 */
// WHY immediate: a delayed component's instance is dropped when no bundle uses it, and the next
// one never gets the configurations ConfigAdmin delivered before: the platform lost its manifests.
@Component(immediate = true, service = {CallPolicy.class, ManagedServiceFactory.class}, property = "service.pid=" + PolicyService.FACTORY_PID)
public final class PolicyService implements CallPolicy, ManagedServiceFactory {

    public static final String FACTORY_PID = "org.nxia.lsm.policy.manifest";
    static final int AUDIT_CAPACITY = 1024;
    /** Rate windows held at once (one per VM, caller and rated rule); ended ones are dropped to make room. */
    static final int MAX_WINDOWS = 4096;

    private static final System.Logger LOG = System.getLogger("org.nxia.lsm.policy");

    /** Configuration PID → manifest; several PIDs may not claim one profile. */
    private final Map<String, Manifest> byPid = new ConcurrentHashMap<>();
    private final Map<String, String> errors = new ConcurrentHashMap<>();
    /** Rate window key → {start nanos, calls in it, window length}. */
    private final Map<String, long[]> windows = new ConcurrentHashMap<>();
    private final ArrayDeque<AuditEntry> audit = new ArrayDeque<>();

    @Override
    public String getName() {
        return "NXIA capability manifests";
    }

    @Override
    public void updated(String pid, Dictionary<String, ?> properties) throws ConfigurationException {
        Object text = properties.get("manifest");
        Object file = properties.get("file");
        String source;
        String where;
        try {
            if (text != null) {
                source = text.toString();
                where = pid;
            } else if (file != null) {
                where = file.toString();
                source = Files.readString(Path.of(where));
            } else {
                throw new ConfigurationException("manifest", "give the manifest text ('manifest') or its path ('file')");
            }
            Manifest m = Manifest.parse(source, where);
            for (Map.Entry<String, Manifest> e : byPid.entrySet()) {
                if (!e.getKey().equals(pid) && e.getValue().profile().equals(m.profile())) {
                    throw new IllegalArgumentException(where + ": profile '" + m.profile() + "' already has a manifest (configuration "
                            + e.getKey() + ")");
                }
            }
            install(pid, m);
        } catch (IOException | IllegalArgumentException e) {
            String why = e instanceof IOException ? "cannot read manifest " + file + ": " + e.getMessage() : e.getMessage();
            errors.put(pid, why);
            LOG.log(System.Logger.Level.ERROR, "policy: manifest refused, the previous one stays: " + why);
            throw new ConfigurationException(text != null ? "manifest" : "file", why);
        }
    }

    /** Installs {@code m} under {@code pid}; its rate windows start afresh. */
    void install(String pid, Manifest m) {
        byPid.put(pid, m);
        errors.remove(pid);
        windows.clear();
        LOG.log(System.Logger.Level.INFO, "policy: manifest for profile '" + m.profile() + "' loaded (" + m.rules().size()
                + " rules, " + m.grants().size() + " grants)");
    }

    @Override
    public void deleted(String pid) {
        byPid.remove(pid);
        errors.remove(pid);
    }

    private Manifest manifest(String profile) {
        for (Manifest m : byPid.values()) {
            if (m.profile().equals(profile)) {
                return m;
            }
        }
        return null;
    }

    @Override
    public Decision check(CallRequest request) {
        Decision d = decide(request, true);
        if (!d.allowed()) {
            AuditEntry e = new AuditEntry(Instant.now(), request, d.reason());
            synchronized (audit) {
                if (audit.size() == AUDIT_CAPACITY) {
                    audit.removeFirst();
                }
                audit.addLast(e);
            }
            LOG.log(System.Logger.Level.WARNING, "policy: denied " + request.who() + " -> " + request.service() + "."
                    + request.method() + " (profile " + request.profile() + ", session " + request.session() + "): " + d.reason());
        }
        return d;
    }

    @Override
    public Decision explain(CallRequest request) {
        return decide(request, false);
    }

    private Decision decide(CallRequest r, boolean count) {
        Manifest m = manifest(r.profile());
        String what = (r.direction() == CallRequest.Direction.GUEST_TO_HOST ? "out " : "in ") + r.service() + "." + r.method();
        if (m == null) {
            return Decision.deny("no manifest for profile '" + r.profile() + "' (default deny)");
        }
        for (Manifest.Rule rule : m.rules()) {
            if (!rule.matches(r)) {
                continue;
            }
            String at = "manifest '" + m.profile() + "' line " + rule.line() + " (" + rule.text() + ")";
            if (!rule.allow()) {
                return Decision.deny("denied by " + at);
            }
            if (r.catastrophic() && m.grants().stream().noneMatch(g -> g.matches(r))) {
                return Decision.deny(what + " is catastrophic and manifest '" + m.profile() + "' has no 'grant catastrophic' for it");
            }
            if (rule.perWindow() > 0 && count) {
                String refused = take(r, m, rule);
                if (refused != null) {
                    return new Decision(false, true, refused + " (" + at + ")");
                }
            }
            return Decision.allow("allowed by " + at);
        }
        return Decision.deny("no rule of manifest '" + m.profile() + "' matches " + what + " from " + r.who() + " (default deny)");
    }

    /**
     * Fixed-window counter per VM, caller and rule (not per session: reconnecting resets nothing);
     * null if the call fits, else why not.
     */
    private String take(CallRequest r, Manifest m, Manifest.Rule rule) {
        // a System VM's processes count apart by user and program (not pid: ids are reused), host bundles by name
        String who = r.process() != null ? r.caller() + "/" + r.process().uid() + "/" + r.process().exe()
                : r.bundle() != null ? r.caller() + "/" + r.bundle() : r.caller();
        String key = r.vm() + "/" + who + "/" + m.profile() + "/" + rule.line();
        long now = System.nanoTime();
        long[] w = windows.get(key);
        if (w == null) {
            if (windows.size() >= MAX_WINDOWS) {
                windows.values().removeIf(x -> ended(x, now));
                if (windows.size() >= MAX_WINDOWS) {
                    return MAX_WINDOWS + " rate windows are open at once, so no new one";
                }
            }
            w = windows.computeIfAbsent(key, k -> new long[] {now, 0, rule.windowNanos()});
        }
        synchronized (w) {
            if (ended(w, now)) {
                w[0] = now;
                w[1] = 0;
            }
            if (w[1] >= rule.perWindow()) {
                return "rate limit exceeded";
            }
            w[1]++;
            return null;
        }
    }

    private static boolean ended(long[] w, long now) {
        synchronized (w) {
            return now - w[0] >= w[2];
        }
    }

    /** Open rate windows (tests). */
    int windows() {
        return windows.size();
    }

    @Override
    public List<AuditEntry> audit(int max) {
        synchronized (audit) {
            List<AuditEntry> all = new ArrayList<>(audit);
            return List.copyOf(all.subList(Math.max(0, all.size() - max), all.size()));
        }
    }

    @Override
    public GuestConfinement guestConfinement(String profile) {
        Manifest m = manifest(profile);
        return m == null ? null : m.guest();
    }

    @Override
    public Map<String, String> manifests() {
        Map<String, String> out = new TreeMap<>();
        for (Manifest m : byPid.values()) {
            out.put(m.profile(), m.source());
        }
        return out;
    }

    /** Configurations whose last update was refused: PID → why. */
    Map<String, String> errors() {
        return new LinkedHashMap<>(errors);
    }
}
