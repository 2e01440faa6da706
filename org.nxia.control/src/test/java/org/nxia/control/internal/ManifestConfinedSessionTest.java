package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

import org.junit.jupiter.api.Test;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.Confinement;
import org.nxia.control.api.Confinement.PathRule;
import org.nxia.control.api.ExecRequest;
import org.nxia.lsm.policy.api.AuditEntry;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.lsm.policy.api.Decision;
import org.nxia.lsm.policy.api.GuestConfinement;

/** A manifest's guest lines as a program's confinement, and the session that applies them by default. */
class ManifestConfinedSessionTest {

    /** A policy that knows one profile's guest lines (read at each call). */
    static CallPolicy policy(String profile, Supplier<GuestConfinement> guest) {
        return new CallPolicy() {
            @Override
            public Decision check(CallRequest request) {
                throw new UnsupportedOperationException();
            }

            @Override
            public Decision explain(CallRequest request) {
                throw new UnsupportedOperationException();
            }

            @Override
            public List<AuditEntry> audit(int max) {
                return List.of();
            }

            @Override
            public Map<String, String> manifests() {
                return Map.of();
            }

            @Override
            public GuestConfinement guestConfinement(String p) {
                return p.equals(profile) ? guest.get() : null;
            }
        };
    }

    @Test
    void theManifestsGuestLinesBecomeTheConfinement() {
        CallPolicy policy = policy("sysvm", () -> new GuestConfinement(
                List.of(new GuestConfinement.Path("rx", "/usr"), new GuestConfinement.Path("rw", "/tmp")), Set.of(41), Set.of("net", "pid", "user")));
        Confinement c = ManifestConfinedSession.of(policy, "sysvm");
        assertEquals(List.of(PathRule.of("/usr", "rx"), PathRule.of("/tmp", "rw")), c.paths());
        assertEquals(Set.of(41), c.deniedSyscalls());
        assertEquals(Set.of(Confinement.Namespace.NET, Confinement.Namespace.PID, Confinement.Namespace.USER), c.namespaces());
    }

    @Test
    void noPolicyNoManifestOrNoGuestLinesConfineNothing() {
        assertEquals(Confinement.NONE, ManifestConfinedSession.of(null, "sysvm"));
        assertEquals(Confinement.NONE, ManifestConfinedSession.of(policy("other", () -> GuestConfinement.NONE), "sysvm"));
        assertEquals(Confinement.NONE, ManifestConfinedSession.of(policy("sysvm", () -> GuestConfinement.NONE), "sysvm"));
    }

    @Test
    void aLineTheAgentWouldRefuseIsRefusedHere() {
        CallPolicy policy = policy("sysvm", () -> new GuestConfinement(List.of(new GuestConfinement.Path("rx", "usr")), Set.of(), Set.of()));
        assertThrows(IllegalArgumentException.class, () -> ManifestConfinedSession.of(policy, "sysvm"));
    }

    /** What reaches the agent: the manifest's confinement when the request has none, else the request's own. */
    @Test
    void startAndExecTakeTheManifestsConfinementOnlyForARequestWithout() throws Exception {
        List<ExecRequest> seen = new ArrayList<>();
        List<String> calls = new ArrayList<>();
        boolean[] init = {true};
        org.nxia.control.api.Execution started = (org.nxia.control.api.Execution) Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {org.nxia.control.api.Execution.class}, (p, m, a) -> null);
        AgentSession agent = (AgentSession) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {AgentSession.class},
                (p, m, a) -> {
                    calls.add(m.getName());
                    if (m.getName().equals("exec") || m.getName().equals("start")) {
                        seen.add((ExecRequest) a[0]);
                    }
                    return switch (m.getName()) {
                        case "agent" -> "nxia-agent 0.1";
                        case "agentIsInit" -> init[0];
                        case "start" -> started;
                        default -> null;
                    };
                });
        Confinement manifest = Confinement.NONE.denying(41);
        AgentSession s = new ManifestConfinedSession(agent, () -> manifest);
        s.exec(ExecRequest.of("true"));
        assertSame(started, s.start(ExecRequest.of("true"), (err, d, o, l) -> { }));
        Confinement own = Confinement.NONE.denying(42);
        s.exec(ExecRequest.of("true").withConfinement(own));
        assertEquals(List.of(manifest, manifest, own), seen.stream().map(ExecRequest::confinement).toList());
        assertEquals("nxia-agent 0.1", s.agent());
        assertEquals(true, s.agentIsInit());
        init[0] = false;
        assertEquals(false, s.agentIsInit());
        s.configure(null);
        s.quiesce();
        s.resume();
        s.resume(null);
        s.shutdown();
        s.close();
        assertEquals(List.of("exec", "start", "exec", "agent", "agentIsInit", "agentIsInit", "configure", "quiesce", "resume", "resume", "shutdown", "close"),
                calls, "everything else goes to the session as it is");
        assertSame(manifest, seen.getFirst().confinement());
    }
}
