package org.nxia.lsm.policy.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Hashtable;

import org.junit.jupiter.api.Test;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.lsm.policy.api.CallRequest.Direction;
import org.osgi.service.cm.ConfigurationException;

/** policy:show, policy:check and policy:audit say what the policy holds and decides. */
class PolicyCommandsTest {

    private final PolicyService policy = new PolicyService();
    private final PolicyCommands commands = new PolicyCommands(policy);

    private void load(String pid, String manifest) throws ConfigurationException {
        Hashtable<String, Object> d = new Hashtable<>();
        d.put("manifest", manifest);
        policy.updated(pid, d);
    }

    @Test
    void showSaysEverythingIsDeniedWithoutAManifest() {
        String shown = commands.show();
        assertTrue(shown.startsWith("no manifests loaded: every call is denied"), shown);
        assertTrue(shown.contains(PolicyService.FACTORY_PID), shown);
    }

    @Test
    void showListsEachProfilesManifestAndEveryRefusedConfiguration() throws ConfigurationException {
        load("pid1", PolicyServiceTest.MANIFEST);
        assertThrows(ConfigurationException.class, () -> load("pid2", "profile broken\nallow sideways x.y\n"));
        String shown = commands.show();
        assertFalse(shown.contains("no manifests loaded"), shown);
        assertTrue(shown.contains("== profile web ==\n# test manifest"), shown);
        assertTrue(shown.contains("deny  out files.delete"), shown);
        assertTrue(shown.contains("REFUSED pid2: "), shown);
    }

    @Test
    void checkExplainsADecisionInEitherDirection() throws ConfigurationException {
        load("pid1", PolicyServiceTest.MANIFEST);
        assertTrue(commands.check("web", "guest:vm-1", "out", "echo", "say").startsWith("ALLOW "));
        String denied = commands.check("web", "guest:vm-1", "out", "files", "delete");
        assertTrue(denied.startsWith("DENY ") && denied.contains("line 4"), denied);
        assertTrue(commands.check("web", "host", "in", "calc", "add").startsWith("ALLOW "));
        assertTrue(commands.check("web", "guest:vm-1", "in", "calc", "add").startsWith("DENY "));
        String why = assertThrows(IllegalArgumentException.class, () -> commands.check("web", "host", "up", "calc", "add")).getMessage();
        assertTrue(why.contains("'out'") && why.contains("'in'"), why);
        assertEquals("no denials", commands.audit(), "check counts nothing");
        load("pid2", "profile sys\nallow out files.read caller=uid:1000 caller=exe:/usr/bin/cat\n");
        assertTrue(commands.check("sys", "guest:vm-1,uid:1000,exe:/usr/bin/cat", "out", "files", "read").startsWith("ALLOW "));
        assertTrue(commands.check("sys", "guest:vm-1,uid:1000", "out", "files", "read").startsWith("DENY "));
        assertTrue(commands.check("sys", "guest:vm-1,uid:0,gid:0,exe:/usr/bin/cat", "out", "files", "read").startsWith("DENY "));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> commands.check("sys", "guest:vm-1,pid:3", "out", "f", "r"))
                .getMessage().contains("expected uid:N, gid:N or exe:PATH"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> commands.check("sys", "guest:vm-1,uid:x", "out", "f", "r"))
                .getMessage().contains("not a number"));
    }

    @Test
    void auditListsTheNewestDenialsWithWhoWhatAndWhy() throws ConfigurationException {
        load("pid1", PolicyServiceTest.MANIFEST);
        policy.check(new CallRequest("web", 7, "vm-1", "guest:vm-1", Direction.GUEST_TO_HOST, "files", "delete", false));
        policy.check(new CallRequest("web", 7, "vm-1", "guest:vm-1", Direction.HOST_TO_GUEST, "calc", "add", false));
        String audit = commands.audit();
        assertEquals(2, audit.lines().count(), audit);
        assertTrue(audit.contains("guest:vm-1 session 7 profile web out files.delete: "), audit);
        assertTrue(audit.contains(" in calc.add: "), audit);
        assertEquals(1, commands.audit(1).lines().count());
    }

    @Test
    void reloadingAManifestStartsItsRateWindowsAfresh() throws ConfigurationException {
        load("pid1", "profile web\nallow out files.* rate=1/s\n");
        CallRequest r = new CallRequest("web", 1, "vm-1", "guest:vm-1", Direction.GUEST_TO_HOST, "files", "read", false);
        assertTrue(policy.check(r).allowed());
        assertTrue(policy.check(r).rateLimited());
        load("pid1", "profile web\nallow out files.* rate=1/s\n");
        assertTrue(policy.check(r).allowed(), "a new manifest, new windows");
    }

    @Test
    void aProfileHasOneManifestAndARefusedOneLeavesTheOldInPlace() throws ConfigurationException {
        load("pid1", PolicyServiceTest.MANIFEST);
        String why = assertThrows(ConfigurationException.class, () -> load("pid2", "profile web\nallow out x.y\n")).getReason();
        assertTrue(why.contains("profile 'web' already has a manifest (configuration pid1)"), why);
        assertEquals(1, policy.manifests().size());
        assertTrue(policy.manifests().get("web").contains("# test manifest"));
        load("pid1", "profile web\nallow out x.y\n");   // the same configuration may replace its own
        assertEquals("profile web\nallow out x.y\n", policy.manifests().get("web"));
    }
}
