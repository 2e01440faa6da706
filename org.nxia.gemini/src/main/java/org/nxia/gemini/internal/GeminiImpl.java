package org.nxia.gemini.internal;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.atomic.AtomicLong;

import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.Transport;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.lsm.policy.api.GuestProcess;
import org.osgi.framework.BundleContext;
import org.osgi.framework.Constants;
import org.osgi.framework.Filter;
import org.osgi.framework.FrameworkUtil;
import org.osgi.framework.InvalidSyntaxException;
import org.osgi.framework.ServiceReference;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.util.tracker.ServiceTracker;

/**
 * Gemini's one core: holds the sessions, the token table and the host
 * services (every OSGi service with {@value Gemini#SERVICE_PROPERTY}, tracked
 * so a bundle installed later is callable by the next call). Other bundles get
 * it through {@link BundleGemini}, which tells the policy which bundle calls;
 * this bundle's own components use it directly.
 */
@Component(service = GeminiImpl.class)
public final class GeminiImpl implements Gemini {

    /**
     * The size from which AUTO marshalling passes a byte argument by reference: the crossover
     * {@code bench gemini} measured (docs/gemini-protocol.md, "Large arguments"). The system
     * property {@value #THRESHOLD_PROPERTY} overrides it.
     */
    static final long DEFAULT_REFERENCE_THRESHOLD = 16 * 1024;
    static final String THRESHOLD_PROPERTY = "nxia.gemini.referenceThreshold";

    private final CallPolicy policy;
    private final long referenceThreshold = threshold();
    private final Tokens tokens = new Tokens(Clock.systemUTC());
    private final AtomicLong ids = new AtomicLong();
    private final Map<Long, Session> sessions = new ConcurrentHashMap<>();
    /** The open session of each VM: the doorbell looks it up on every KICK. */
    private final Map<String, Session> byVm = new ConcurrentHashMap<>();
    private final ScheduledThreadPoolExecutor timer = timer();
    private final HostHandler.Services services;
    private final ServiceTracker<Object, Entry> tracker;
    private final Map<String, Entry> byName = new ConcurrentHashMap<>();

    private record Entry(String name, Values.Exported exported, Set<String> catastrophic) {
    }

    @Activate
    public GeminiImpl(BundleContext context, @Reference CallPolicy policy) throws InvalidSyntaxException {
        this.policy = policy;
        Filter filter = FrameworkUtil.createFilter("(" + SERVICE_PROPERTY + "=*)");
        this.tracker = new ServiceTracker<>(context, filter, null) {
            @Override
            public Entry addingService(ServiceReference<Object> ref) {
                Object service = context.getService(ref);
                if (service == null) {
                    return null;
                }
                Object c = ref.getProperty(CATASTROPHIC_PROPERTY);
                Set<String> cat = c == null ? Set.of() : Set.of(String.valueOf(c).split("\\s*,\\s*"));
                Entry e = new Entry(String.valueOf(ref.getProperty(SERVICE_PROPERTY)),
                        Values.Exported.of(service, List.of((String[]) ref.getProperty(Constants.OBJECTCLASS))), cat);
                byName.put(e.name(), e);
                return e;
            }

            @Override
            public void removedService(ServiceReference<Object> ref, Entry e) {
                byName.remove(e.name(), e);
                context.ungetService(ref);
            }
        };
        this.services = mapServices();
        tracker.open(true);
    }

    /** For tests: host services from a map, no OSGi; each is registered under the interfaces its class implements (as DS does). */
    GeminiImpl(CallPolicy policy, Map<String, Object> services, Map<String, Set<String>> catastrophic) {
        this.policy = policy;
        this.tracker = null;
        services.forEach((name, s) -> byName.put(name, new Entry(name, Values.Exported.of(s,
                java.util.Arrays.stream(s.getClass().getInterfaces()).map(Class::getName).toList()),
                catastrophic.getOrDefault(name, Set.of()))));
        this.services = mapServices();
    }

    /**
     * Adds a host service of this bundle's own that needs this core (SystemVmRings): registered
     * through the service registry it would be tracked while this core activates, a cycle.
     * Callable as if registered under its class.
     */
    GeminiImpl addBuiltin(String name, Object service) {
        byName.put(name, new Entry(name, Values.Exported.of(service, List.of(service.getClass().getName())), Set.of()));
        return this;
    }

    void removeBuiltin(String name, Object service) {
        byName.computeIfPresent(name, (n, e) -> e.exported().service() == service ? null : e);
    }

    private static long threshold() {
        String p = System.getProperty(THRESHOLD_PROPERTY);
        if (p == null || p.isBlank()) {
            return DEFAULT_REFERENCE_THRESHOLD;
        }
        try {
            long v = Long.parseLong(p.strip());
            if (v >= 0) {
                return v;
            }
        } catch (NumberFormatException e) {
            // fall through to the message
        }
        throw new IllegalArgumentException(THRESHOLD_PROPERTY + "=" + p + ": give a byte count >= 0");
    }

    /** Call timeouts; a call that completes cancels its timeout, which then leaves the queue at once. */
    private static ScheduledThreadPoolExecutor timer() {
        ScheduledThreadPoolExecutor t = new ScheduledThreadPoolExecutor(1, Thread.ofPlatform().name("gemini-timer").daemon(true).factory());
        t.setRemoveOnCancelPolicy(true);
        return t;
    }

    private HostHandler.Services mapServices() {
        return new HostHandler.Services() {
            @Override
            public Values.Exported find(String name) {
                Entry e = byName.get(name);
                return e == null ? null : e.exported();
            }

            @Override
            public boolean catastrophic(String name, String method) {
                Entry e = byName.get(name);
                return e != null && (e.catastrophic().contains(method) || e.catastrophic().contains("*"));
            }
        };
    }

    @Deactivate
    void deactivate() {
        for (Session s : List.copyOf(sessions.values())) {
            s.close("Gemini is stopping");
        }
        if (tracker != null) {
            tracker.close();
        }
        timer.shutdownNow();
    }

    @Override
    public GeminiSession open(Transport transport, String profile, String vmId) {
        return openSession(transport, profile, vmId);
    }

    @Override
    public GeminiSession open(java.nio.channels.ByteChannel stream, String profile, String vmId) {
        return openSession(new StreamTransport(stream, vmId == null ? "peer" : vmId), profile, vmId);
    }

    @Override
    public GeminiSession openBroker(java.nio.channels.ByteChannel stream, String profile, String vmId) {
        return openSession(new StreamTransport(stream, vmId == null ? "broker" : vmId), profile, vmId, true, () -> { });
    }

    Session openSession(Transport transport, String profile, String vmId) {
        return openSession(transport, profile, vmId, false, () -> { });
    }

    /** {@code onClosed} runs once when the session closes, after it is forgotten here. */
    Session openSession(Transport transport, String profile, String vmId, boolean broker, Runnable onClosed) {
        return openSession(transport, profile, vmId, broker, null, onClosed);
    }

    /**
     * A session of one System VM process over rings it formatted (SystemVmRings): under the VM's
     * manifest, every call carrying {@code owner}'s identity. It is not the VM's session (that
     * stays its broker's: {@link #sessionOfVm}), so a VM may hold several.
     */
    Session openProcessSession(Transport transport, String profile, String vmId, GuestProcess owner, Runnable onClosed) {
        return openSession(transport, profile, vmId, false, java.util.Objects.requireNonNull(owner), onClosed);
    }

    private Session openSession(Transport transport, String profile, String vmId, boolean broker, GuestProcess owner, Runnable onClosed) {
        long id = ids.incrementAndGet();
        Session s = new Session(id, transport, profile, vmId, new HostHandler(policy, services, tokens, broker, owner, closed -> {
            sessions.remove(id);
            if (vmId != null) {
                byVm.remove(vmId, closed);
            }
            onClosed.run();
        }), tokens, true, timer, referenceThreshold);
        if (vmId != null && owner == null && byVm.putIfAbsent(vmId, s) != null) {
            transport.close(); // its threads (a stream's reader and writer) end with it
            throw new IllegalStateException(vmId + " already has a Gemini session");
        }
        sessions.put(id, s);
        return s.start("", Duration.ZERO);
    }

    /** A client end (what a guest runs) over {@code transport}, for tests and the loopback benchmark. */
    Session client(Transport transport, PeerHandler handler, String name) {
        return new Session(0, transport, "", null, handler, tokens, false, timer, referenceThreshold)
                .start(name, Duration.ofSeconds(5));
    }

    @Override
    public List<GeminiSession> sessions() {
        List<GeminiSession> out = new ArrayList<>(sessions.values());
        out.sort((a, b) -> Long.compare(a.id(), b.id()));
        return out;
    }

    @Override
    public Optional<GeminiSession> session(long id) {
        return Optional.ofNullable(sessions.get(id));
    }

    @Override
    public Optional<GeminiSession> sessionOfVm(String vmId) {
        return Optional.ofNullable(byVm.get(vmId));
    }

    @Override
    public Map<String, List<String>> services() {
        Map<String, List<String>> out = new TreeMap<>();
        byName.forEach((name, e) -> out.put(name, e.exported().names()));
        return out;
    }

    /** Every token, all sessions (gemini:tokens). */
    List<org.nxia.gemini.api.TokenInfo> allTokens() {
        return tokens.of(-1);
    }

    /** Rings the doorbell of a VM's session, if it has one. */
    void wake(String vmId) {
        Session s = byVm.get(vmId);
        if (s != null) {
            s.wake();
        }
    }

    /** The host service object registered under {@code name}, or null. */
    Object hostService(String name) {
        Entry e = byName.get(name);
        return e == null ? null : e.exported().service();
    }

    Set<String> catastrophic(String service) {
        Entry e = byName.get(service);
        return e == null ? Set.of() : e.catastrophic();
    }

}
