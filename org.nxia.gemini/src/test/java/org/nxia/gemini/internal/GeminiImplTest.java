package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.TokenInfo;
import org.nxia.lsm.policy.internal.PolicyService;
import org.osgi.framework.BundleContext;
import org.osgi.framework.Constants;
import org.osgi.framework.ServiceReference;

/** The Gemini service's bookkeeping: sessions by id and VM, host services from OSGi, shutdown. */
class GeminiImplTest {

    /** Answers Object's methods of a proxy as identity does. */
    private static Object identity(Object proxy, Method m, Object[] a) {
        return switch (m.getName()) {
            case "hashCode" -> System.identityHashCode(proxy);
            case "equals" -> proxy == a[0];
            case "toString" -> "proxy@" + System.identityHashCode(proxy);
            default -> null;
        };
    }

    @SuppressWarnings("unchecked")
    private static ServiceReference<Object> reference(Map<String, Object> properties) {
        return (ServiceReference<Object>) Proxy.newProxyInstance(GeminiImplTest.class.getClassLoader(), new Class<?>[] {ServiceReference.class},
                (p, m, a) -> switch (m.getName()) {
                    case "getProperty" -> properties.get((String) a[0]);
                    case "compareTo" -> 0;
                    default -> identity(p, m, a);
                });
    }

    /** Host services registered in OSGi with the gemini.service property are tracked, with their catastrophic methods. */
    @Test
    void hostServicesComeFromTheServiceRegistry() throws Exception {
        ServiceReference<Object> echo = reference(Map.of(Gemini.SERVICE_PROPERTY, "echo", Gemini.CATASTROPHIC_PROPERTY, "fail , typed",
                Constants.OBJECTCLASS, new String[] {Object.class.getName()}));
        ServiceReference<Object> api = reference(Map.of(Gemini.SERVICE_PROPERTY, "api",
                Constants.OBJECTCLASS, new String[] {SessionTest.Api.class.getName()}));
        ServiceReference<Object> gone = reference(Map.of(Gemini.SERVICE_PROPERTY, "gone", Constants.OBJECTCLASS, new String[] {"x"}));
        Object echoService = new SessionTest.Echo();
        List<String> events = new ArrayList<>();
        BundleContext context = (BundleContext) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {BundleContext.class},
                (p, m, a) -> switch (m.getName()) {
                    case "getAllServiceReferences", "getServiceReferences" -> {
                        events.add("query " + a[1]);
                        yield new ServiceReference<?>[] {echo, api, gone};
                    }
                    case "getService" -> a[0] == echo ? echoService : a[0] == api ? new SessionTest.ApiImpl() : null;
                    case "ungetService" -> {
                        events.add("unget " + ((ServiceReference<?>) a[0]).getProperty(Gemini.SERVICE_PROPERTY));
                        yield true;
                    }
                    case "addServiceListener", "removeServiceListener" -> {
                        events.add(m.getName());
                        yield null;
                    }
                    default -> identity(p, m, a);
                });
        GeminiImpl gemini = new GeminiImpl(context, new PolicyService());
        assertEquals(Map.of("echo", List.of("add", "concat", "fail", "half", "not", "nothing", "reverse", "typed"), "api", List.of("twice")),
                gemini.services(), "a service whose object is gone is not listed");
        assertSame(echoService, gemini.hostService("echo"));
        assertNull(gemini.hostService("gone"));
        assertEquals(Set.of("fail", "typed"), gemini.catastrophic("echo"));
        assertEquals(Set.of(), gemini.catastrophic("api"));
        assertEquals(Set.of(), gemini.catastrophic("none"));
        assertTrue(events.contains("addServiceListener"), events.toString());
        assertTrue(events.contains("query (" + Gemini.SERVICE_PROPERTY + "=*)"), events.toString());
        gemini.deactivate();
        assertTrue(events.containsAll(List.of("removeServiceListener", "unget echo", "unget api")), events.toString());
        assertEquals(Map.of(), gemini.services(), "a removed service is no longer callable");
    }

    @Test
    void sessionsAreListedByIdAndFoundByIdAndVm() throws Exception {
        GeminiImpl gemini = new GeminiImpl(new PolicyService(), Map.of("echo", new SessionTest.Echo()), Map.of());
        try {
            // ids 11 to 20 in a hash table of 16 buckets: 16 to 20 come round before 11 to 15, so the order is not the ids'
            for (int i = 1; i <= 10; i++) {
                gemini.openSession(LoopbackTransport.pair()[0], "p", null);
            }
            gemini.sessions().forEach(s -> s.close("make room"));
            List<Long> ids = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                ids.add(gemini.openSession(LoopbackTransport.pair()[0], "p", i == 3 ? "vm-3" : null).id());
            }
            assertEquals(11L, ids.getFirst());
            assertEquals(ids, gemini.sessions().stream().map(GeminiSession::id).toList());
            GeminiSession third = gemini.sessions().get(3);
            assertEquals(Optional.of(third), gemini.session(third.id()));
            assertEquals(Optional.empty(), gemini.session(12345));
            assertEquals(Optional.of(third), gemini.sessionOfVm("vm-3"));
            // the API's entry (what the platform's callers use) opens and lists a session like the internal one
            GeminiSession opened = gemini.open(LoopbackTransport.pair()[0], "p", "vm-api");
            assertEquals(Optional.of(opened), gemini.sessionOfVm("vm-api"));
            assertEquals(21L, opened.id());
            opened.close("done");
            IllegalStateException twice = assertThrows(IllegalStateException.class,
                    () -> gemini.openSession(LoopbackTransport.pair()[0], "p", "vm-3"));
            assertEquals("vm-3 already has a Gemini session", twice.getMessage());
            gemini.wake("vm-3");
            gemini.wake("no-such-vm"); // a KICK from a VM without a session is nothing

            CapabilityToken t = third.grant("echo", GeminiSession.READ, Duration.ofMinutes(1));
            assertEquals(List.of(t), gemini.allTokens().stream().map(TokenInfo::token).toList());
            third.close("done");
            assertEquals(Optional.empty(), gemini.sessionOfVm("vm-3"), "a closed session is forgotten");
            assertEquals(Optional.empty(), gemini.session(third.id()));
            assertEquals(List.of(), gemini.allTokens());
        } finally {
            gemini.deactivate();
        }
    }

    /** A calculator a guest serves, for the host's calls. */
    public interface Calc {
        long add(long a, long b);
    }

    @Test
    void aBundlesCallsIntoAGuestNameTheBundleToThePolicyAndTheAuditLog() throws Exception {
        PolicyService policy = new PolicyService();
        java.util.Hashtable<String, Object> config = new java.util.Hashtable<>();
        config.put("manifest", """
                profile p
                allow in calc.add caller=bundle:org.example.*
                """);
        policy.updated("m", config);
        GeminiImpl core = new GeminiImpl(policy, Map.of(), Map.of());
        try {
            LoopbackTransport[] wire = LoopbackTransport.pair();
            core.openSession(wire[0], "p", "vm-1");
            Session guest = core.client(wire[1], new PeerHandler().export("calc", "add", (args, ctx) -> (Long) args.get(0) + (Long) args.get(1)),
                    "guest");
            Gemini granted = new BundleGemini(core, "org.example.app");
            Gemini other = new BundleGemini(core, "org.other.app");
            GeminiSession mine = granted.sessionOfVm("vm-1").orElseThrow();
            assertEquals(5L, mine.call("calc", "add", Duration.ofSeconds(5), 2L, 3L));
            assertEquals(7L, mine.proxy(Calc.class, "calc", Duration.ofSeconds(5)).add(3, 4), "the proxy calls as the bundle too");
            assertEquals(mine, granted.sessions().getFirst(), "the same view whichever way it is found");
            GeminiSession theirs = other.session(mine.id()).orElseThrow();
            var denied = assertThrows(org.nxia.gemini.api.GeminiException.class, () -> theirs.call("calc", "add", Duration.ofSeconds(5), 1L, 1L));
            assertEquals(org.nxia.gemini.api.ErrorCode.DENIED, denied.code());
            assertTrue(denied.getMessage().contains("host (bundle org.other.app)"), denied.getMessage());
            assertEquals("org.other.app", policy.audit(1).getFirst().request().bundle());
            assertThrows(org.nxia.gemini.api.GeminiException.class,
                    () -> core.sessionOfVm("vm-1").orElseThrow().call("calc", "add", Duration.ofSeconds(5), 1L, 1L),
                    "the core's own session names no bundle, so caller=bundle: does not match");
            guest.close("done");
        } finally {
            core.deactivate();
        }
    }

    /** A bundle's view of a session is that session in everything but whom its calls name. */
    @Test
    void aBundlesViewIsTheSessionItselfButForTheCaller() throws Exception {
        PolicyService policy = new PolicyService();
        java.util.Hashtable<String, Object> config = new java.util.Hashtable<>();
        config.put("manifest", """
                profile p
                allow in calc.add caller=bundle:id-7
                """);
        policy.updated("m", config);
        GeminiImpl core = new GeminiImpl(policy, Map.of(), Map.of());
        try {
            LoopbackTransport[] wire = LoopbackTransport.pair();
            org.osgi.framework.Bundle unnamed = (org.osgi.framework.Bundle) Proxy.newProxyInstance(getClass().getClassLoader(),
                    new Class<?>[] {org.osgi.framework.Bundle.class}, (p, m, a) -> switch (m.getName()) {
                        case "getSymbolicName" -> null;
                        case "getBundleId" -> 7L;
                        default -> identity(p, m, a);
                    });
            org.osgi.service.component.ComponentContext context = (org.osgi.service.component.ComponentContext) Proxy.newProxyInstance(
                    getClass().getClassLoader(), new Class<?>[] {org.osgi.service.component.ComponentContext.class},
                    (p, m, a) -> m.getName().equals("getUsingBundle") ? unnamed : identity(p, m, a));
            Gemini gemini = new BundleGemini(context, core);
            GeminiSession view = gemini.open(wire[0], "p", "vm-1");
            Session session = core.sessionOfVm("vm-1").map(Session.class::cast).orElseThrow();
            Session guest = core.client(wire[1], new PeerHandler().export("calc", "add", (args, ctx) -> (Long) args.get(0) + (Long) args.get(1)),
                    "guest");
            assertTrue(view.toString().endsWith(" as bundle id-7"), "a bundle without a symbolic name is named by its id: " + view);
            assertEquals(session.id(), view.id());
            assertEquals(session.peer(), view.peer());
            assertEquals("p", view.profile());
            assertEquals("vm-1", view.vmId());
            assertTrue(view.isOpen());
            assertEquals(core.services(), gemini.services());
            assertEquals(session.referenceThreshold(), view.referenceThreshold());
            assertEquals(Optional.empty(), view.referenceRegion());
            assertEquals(9L, view.callAsync("calc", "add", List.of(), org.nxia.gemini.api.Marshalling.COPY, Duration.ofSeconds(5), 4L, 5L)
                    .get(5, java.util.concurrent.TimeUnit.SECONDS), "the unnamed bundle's own rule lets it call");
            assertEquals(0, view.outstanding());
            CapabilityToken token = view.grant("calc", GeminiSession.READ, Duration.ofMinutes(1));
            assertEquals(List.of(token), session.tokens().stream().map(TokenInfo::token).toList(), "granted in the session itself");
            assertEquals(session.tokens(), view.tokens());
            assertTrue(view.revoke(token));
            assertTrue(session.tokens().getFirst().revoked(), "revoked in the session itself");
            view.close("the bundle is done");
            assertFalse(session.isOpen(), "closing the view closes the session");
            assertEquals("the bundle is done", view.closeReason());
            assertEquals(session.closeReason(), view.closeReason());
            guest.close("done");
        } finally {
            core.deactivate();
        }
    }

    @Test
    void deactivatingClosesEverySessionAndItsCloseActionRunsOnce() {
        GeminiImpl gemini = new GeminiImpl(new PolicyService(), Map.of(), Map.of());
        AtomicInteger closedActions = new AtomicInteger();
        GeminiSession a = gemini.openSession(LoopbackTransport.pair()[0], "p", "vm-a", false, closedActions::incrementAndGet);
        GeminiSession b = gemini.openSession(LoopbackTransport.pair()[0], "p", null);
        gemini.deactivate();
        assertFalse(a.isOpen());
        assertFalse(b.isOpen());
        assertEquals("Gemini is stopping", a.closeReason());
        assertEquals(1, closedActions.get());
        a.close("again");
        assertEquals(1, closedActions.get());
        assertEquals(List.of(), gemini.sessions());
    }
}
