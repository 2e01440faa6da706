package org.nxia.shell.systemvm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.nxia.control.api.Confinement;
import org.nxia.control.api.Confinement.PathRule;
import org.nxia.lsm.policy.api.AuditEntry;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.lsm.policy.api.Decision;
import org.nxia.lsm.policy.api.GuestConfinement;

/** vm:exec -p PROFILE confines its program as the profile's manifest says (its 'guest' lines). */
class ManifestConfinementTest {

    /** A policy that knows one profile's guest lines. */
    record Policy(String profile, GuestConfinement guest) implements CallPolicy {
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
            return p.equals(profile) ? guest : null;
        }
    }

    @Test
    void theManifestsGuestLinesBecomeTheExecsConfinement() {
        CallPolicy policy = new Policy("sysvm", new GuestConfinement(
                List.of(new GuestConfinement.Path("rx", "/usr"), new GuestConfinement.Path("rw", "/tmp")), Set.of(41), Set.of("net", "pid")));
        Confinement c = SystemVmCommands.confinement(policy, "sysvm");
        assertEquals(List.of(PathRule.of("/usr", "rx"), PathRule.of("/tmp", "rw")), c.paths());
        assertEquals(Set.of(41), c.deniedSyscalls());
        assertEquals(Set.of(Confinement.Namespace.NET, Confinement.Namespace.PID), c.namespaces());
    }

    @Test
    void noPolicyNoManifestOrNoGuestLinesConfineNothing() {
        assertEquals(Confinement.NONE, SystemVmCommands.confinement(null, "sysvm"));
        assertEquals(Confinement.NONE, SystemVmCommands.confinement(new Policy("other", GuestConfinement.NONE), "sysvm"));
        assertEquals(Confinement.NONE, SystemVmCommands.confinement(new Policy("sysvm", GuestConfinement.NONE), "sysvm"));
    }

    @Test
    void aLineTheAgentWouldRefuseIsRefusedHere() {
        CallPolicy policy = new Policy("sysvm", new GuestConfinement(List.of(new GuestConfinement.Path("rx", "usr")), Set.of(), Set.of()));
        assertThrows(IllegalArgumentException.class, () -> SystemVmCommands.confinement(policy, "sysvm"));
    }
}
