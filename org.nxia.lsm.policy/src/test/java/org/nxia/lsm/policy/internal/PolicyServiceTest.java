package org.nxia.lsm.policy.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.lsm.policy.api.AuditEntry;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.lsm.policy.api.CallRequest.Direction;
import org.nxia.lsm.policy.api.Decision;
import org.nxia.lsm.policy.api.GuestProcess;
import org.osgi.service.cm.ConfigurationException;

class PolicyServiceTest {

    static final String MANIFEST = """
            # test manifest
            profile web
            allow out echo.*                        # the guest may echo
            deny  out files.delete
            allow out files.* rate=3/s
            allow in  calc.* caller=host
            allow out vm.destroy
            allow out vm.reboot
            grant catastrophic out vm.reboot
            """;

    private final PolicyService policy = new PolicyService();

    private static Dictionary<String, Object> props(String key, Object value) {
        Hashtable<String, Object> d = new Hashtable<>();
        d.put(key, value);
        return d;
    }

    private static CallRequest out(String service, String method) {
        return new CallRequest("web", 1, "vm-1", "guest:vm-1", Direction.GUEST_TO_HOST, service, method, false);
    }

    @Test
    void defaultDenyWithoutManifest() {
        Decision d = policy.check(out("echo", "say"));
        assertFalse(d.allowed());
        assertTrue(d.reason().contains("no manifest for profile 'web'"), d.reason());
        assertEquals(1, policy.audit(10).size());
    }

    @Test
    void rulesDecideFirstMatchWins() throws ConfigurationException {
        policy.updated("pid1", props("manifest", MANIFEST));
        assertTrue(policy.check(out("echo", "say")).allowed());
        Decision delete = policy.check(out("files", "delete"));
        assertFalse(delete.allowed());
        assertTrue(delete.reason().contains("line 4"), delete.reason());
        assertTrue(policy.check(out("files", "read")).allowed());
        Decision none = policy.check(out("net", "open"));
        assertFalse(none.allowed());
        assertTrue(none.reason().contains("default deny"), none.reason());
        assertTrue(policy.check(new CallRequest("web", 1, "vm-1", "host", Direction.HOST_TO_GUEST, "calc", "add", false)).allowed());
        assertFalse(policy.check(new CallRequest("web", 1, "vm-1", "guest:vm-1", Direction.HOST_TO_GUEST, "calc", "add", false)).allowed(),
                "caller= restricts the rule");
        assertFalse(policy.check(new CallRequest("other", 1, "vm-1", "guest:vm-1", Direction.GUEST_TO_HOST, "echo", "say", false)).allowed(),
                "another profile's manifest does not apply");
    }

    @Test
    void catastrophicNeedsAGrant() throws ConfigurationException {
        policy.updated("pid1", props("manifest", MANIFEST));
        Decision destroy = policy.check(new CallRequest("web", 1, "vm-1", "guest:vm-1", Direction.GUEST_TO_HOST, "vm", "destroy", true));
        assertFalse(destroy.allowed());
        assertTrue(destroy.reason().contains("catastrophic"), destroy.reason());
        assertTrue(policy.check(new CallRequest("web", 1, "vm-1", "guest:vm-1", Direction.GUEST_TO_HOST, "vm", "reboot", true)).allowed());
    }

    @Test
    void rateLimitsCountPerVmNotPerSession() throws ConfigurationException {
        policy.updated("pid1", props("manifest", MANIFEST));
        for (int i = 0; i < 3; i++) {
            assertTrue(policy.check(out("files", "read")).allowed());
        }
        Decision d = policy.check(out("files", "read"));
        assertFalse(d.allowed());
        assertTrue(d.rateLimited());
        assertTrue(d.reason().contains("line 5"), d.reason());
        assertFalse(policy.check(new CallRequest("web", 2, "vm-1", "guest:vm-1", Direction.GUEST_TO_HOST, "files", "read", false)).allowed(),
                "a new session of the same VM (CLOSE, then ATTACH) continues its window");
        assertTrue(policy.check(new CallRequest("web", 3, "vm-2", "guest:vm-2", Direction.GUEST_TO_HOST, "files", "read", false)).allowed(),
                "another VM has its own window");
        assertTrue(policy.explain(out("files", "read")).allowed(), "explain does not count");
    }

    @Test
    void rateWindowsAreBoundedAndEndedOnesMakeRoom() throws Exception {
        policy.updated("pid1", props("manifest", "profile web\nallow out files.* rate=1/s\n"));
        for (int i = 0; i < PolicyService.MAX_WINDOWS; i++) {
            assertTrue(policy.check(new CallRequest("web", i, "vm-" + i, "guest:vm-" + i, Direction.GUEST_TO_HOST, "files", "r", false))
                    .allowed());
        }
        assertEquals(PolicyService.MAX_WINDOWS, policy.windows());
        Decision full = policy.check(new CallRequest("web", 0, "vm-new", "guest:vm-new", Direction.GUEST_TO_HOST, "files", "r", false));
        assertFalse(full.allowed(), "at the bound, while every window is live, a new key is refused");
        assertTrue(full.rateLimited() && full.reason().contains("rate windows"), full.reason());
        Thread.sleep(1100); // every window has ended
        assertTrue(policy.check(new CallRequest("web", 0, "vm-new", "guest:vm-new", Direction.GUEST_TO_HOST, "files", "r", false))
                .allowed());
        assertEquals(1, policy.windows(), "the ended windows were dropped");
    }

    private static CallRequest fromProcess(String method, long uid, String exe) {
        return new CallRequest("sys", 1, "vm-1", "guest:vm-1", Direction.GUEST_TO_HOST, "files", method, false,
                new GuestProcess(uid, 100, 42, exe));
    }

    @Test
    void callerRulesMatchASystemVmProcessByUidGidAndExeAndAllMustHold() throws ConfigurationException {
        policy.updated("pid1", props("manifest", """
                profile sys
                allow out files.read caller=uid:1000 caller=exe:/usr/bin/*
                allow out files.stat caller=gid:100
                allow out files.list caller=guest:vm-*
                allow out files.rated caller=uid:0 rate=1/s
                """));
        assertTrue(policy.check(fromProcess("read", 1000, "/usr/bin/cat")).allowed());
        assertFalse(policy.check(fromProcess("read", 1001, "/usr/bin/cat")).allowed(), "uid:1000 must hold too");
        assertFalse(policy.check(fromProcess("read", 1000, "/tmp/cat")).allowed(), "exe:/usr/bin/* must hold too");
        assertTrue(policy.check(fromProcess("stat", 5, "/x")).allowed(), "gid:100");
        assertTrue(policy.check(fromProcess("list", 5, "/x")).allowed(), "the VM's own name still matches");
        assertFalse(policy.check(new CallRequest("sys", 1, "vm-1", "guest:vm-1", Direction.GUEST_TO_HOST, "files", "read", false)).allowed(),
                "a call with no process has no uid");
        assertTrue(policy.check(fromProcess("rated", 0, "/bin/a")).allowed());
        assertTrue(policy.check(fromProcess("rated", 0, "/bin/b")).allowed(), "another program has its own rate window");
        Decision again = policy.check(fromProcess("rated", 0, "/bin/a"));
        assertTrue(again.rateLimited(), again.reason());
        AuditEntry last = policy.audit(1).get(0);
        assertEquals(1000, policy.audit(10).stream().filter(e -> e.request().process() != null && e.request().process().exe().equals("/tmp/cat"))
                .findFirst().orElseThrow().request().process().uid());
        assertTrue(last.request().who().contains("uid=0 gid=100 pid=42 exe=/bin/a"), last.request().who());
        Manifest.Invalid bad = assertThrows(Manifest.Invalid.class, () -> Manifest.parse("profile p\nallow out a.b caller=exe:/bin/a b\n", "m"));
        assertTrue(bad.getMessage().contains("unknown option 'b'"), bad.getMessage());
        assertThrows(Manifest.Invalid.class, () -> Manifest.parse("profile p\nallow out a.b caller=exe:/bin/$x\n", "m"));
        assertThrows(Manifest.Invalid.class, () -> Manifest.parse("profile p\nallow out a.b" + " caller=uid:1".repeat(Manifest.MAX_CALLERS + 1) + "\n", "m"));
        assertEquals(Manifest.MAX_CALLERS, Manifest.parse("profile p\nallow out a.b" + " caller=uid:1".repeat(Manifest.MAX_CALLERS) + "\n", "m")
                .rules().get(0).callers().size());
    }

    @Test
    void hostCallsMatchByTheCallingBundleAndCountPerBundle() throws ConfigurationException {
        policy.updated("pid1", props("manifest", """
                profile sys
                allow in calc.add caller=bundle:org.example.*
                allow in calc.sub caller=host
                allow in calc.rated caller=host rate=1/s
                """));
        assertTrue(policy.check(fromBundle("add", "org.example.app")).allowed());
        Decision other = policy.check(fromBundle("add", "org.other.app"));
        assertFalse(other.allowed(), "another bundle is not org.example.*");
        assertTrue(other.reason().contains("host (bundle org.other.app)"), other.reason());
        assertFalse(policy.check(new CallRequest("sys", 1, "vm-1", "host", Direction.HOST_TO_GUEST, "calc", "add", false)).allowed(),
                "host code that no bundle is known for has no bundle: facet");
        assertTrue(policy.check(fromBundle("sub", "org.other.app")).allowed(), "caller=host still matches every bundle");
        assertTrue(policy.check(fromBundle("rated", "org.a")).allowed());
        assertTrue(policy.check(fromBundle("rated", "org.b")).allowed(), "another bundle has its own rate window");
        assertTrue(policy.check(fromBundle("rated", "org.a")).rateLimited());
        AuditEntry e = policy.audit(10).stream().filter(a -> "org.other.app".equals(a.request().bundle())).findFirst().orElseThrow();
        assertEquals("host (bundle org.other.app)", e.request().who());
        assertEquals(List.of("bundle:org.other.app"), e.request().facets());
        PolicyCommands commands = new PolicyCommands(policy);
        assertTrue(commands.check("sys", "host,bundle:org.example.x", "in", "calc", "add").startsWith("ALLOW"));
        assertTrue(commands.check("sys", "host,bundle:org.other", "in", "calc", "add").startsWith("DENY"));
    }

    private static CallRequest fromBundle(String method, String bundle) {
        return new CallRequest("sys", 1, "vm-1", "host", Direction.HOST_TO_GUEST, "calc", method, false, null, bundle);
    }

    @Test
    void aGuestProcessIsCheckedAndNamesItsFacets() {
        GuestProcess p = new GuestProcess(0xffffffffL, 0, 1, "/bin/sh");
        assertEquals(List.of("uid:4294967295", "gid:0", "exe:/bin/sh"), p.facets());
        assertThrows(IllegalArgumentException.class, () -> new GuestProcess(-1, 0, 0, ""));
        assertThrows(IllegalArgumentException.class, () -> new GuestProcess(0, 1L << 32, 0, ""));
        assertThrows(IllegalArgumentException.class, () -> new GuestProcess(0, 0, 1L << 32, ""));
        assertThrows(IllegalArgumentException.class, () -> new GuestProcess(0, 0, 0, null));
        assertThrows(IllegalArgumentException.class, () -> new GuestProcess(0, 0, 0, "/".repeat(GuestProcess.MAX_EXE_BYTES + 1)));
        assertEquals("uid=1 gid=2 pid=3 exe=?", new GuestProcess(1, 2, 3, "").toString());
    }

    @Test
    void everyDenialIsAudited() throws ConfigurationException {
        policy.updated("pid1", props("manifest", MANIFEST));
        policy.check(out("files", "delete"));
        policy.check(out("echo", "say"));
        List<AuditEntry> a = policy.audit(10);
        assertEquals(1, a.size());
        assertEquals("guest:vm-1", a.get(0).request().caller());
        assertEquals("delete", a.get(0).request().method());
        for (int i = 0; i < PolicyService.AUDIT_CAPACITY + 10; i++) {
            policy.check(out("nope", "x" + i));
        }
        assertEquals(PolicyService.AUDIT_CAPACITY, policy.audit(Integer.MAX_VALUE).size(), "the audit log is bounded");
    }

    @Test
    void invalidManifestIsRefusedWithLineAndOldOneStays() throws ConfigurationException {
        policy.updated("pid1", props("manifest", MANIFEST));
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> policy.updated("pid1", props("manifest", "profile web\nallow sideways echo.*\n")));
        assertTrue(e.getReason().contains("pid1:2: direction 'sideways'"), e.getReason());
        assertTrue(policy.check(out("echo", "say")).allowed(), "the previous manifest stays in force");
        assertTrue(policy.errors().get("pid1").contains("sideways"));
    }

    @Test
    void updatesReloadAndDeletesRemove() throws ConfigurationException {
        policy.updated("pid1", props("manifest", MANIFEST));
        policy.updated("pid1", props("manifest", "profile web\ndeny out echo.*\n"));
        assertFalse(policy.check(out("echo", "say")).allowed());
        policy.deleted("pid1");
        assertTrue(policy.manifests().isEmpty());
    }

    @Test
    void manifestsLoadFromFiles(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("web.manifest");
        Files.writeString(f, MANIFEST);
        policy.updated("pid2", props("file", f.toString()));
        assertTrue(policy.check(out("echo", "say")).allowed());
        assertThrows(ConfigurationException.class, () -> policy.updated("pid3", props("file", dir.resolve("missing").toString())));
        assertThrows(ConfigurationException.class, () -> policy.updated("pid4", props("manifest", MANIFEST)),
                "two configurations may not claim one profile");
    }

    @Test
    void parserErrorsNameTheLine() {
        String[][] bad = {
                {"allow out a.b", "first line must be 'profile"},
                {"profile p\nprofile q", "second 'profile'"},
                {"profile p\nfrobnicate", "unknown keyword 'frobnicate'"},
                {"profile p\nallow out nodot", "must be <service>.<method>"},
                {"profile p\nallow out a.b rate=0/s", "rate '0/s'"},
                {"profile p\ndeny out a.b rate=1/s", "deny rule takes no rate"},
                {"profile p\nallow out a.b colour=red", "unknown option"},
                {"profile p\ngrant out a.b", "grant catastrophic"},
                {"profile p\nallow out a(.b", "may hold only"},
                {"# nothing", "no 'profile"},
        };
        for (String[] b : bad) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Manifest.parse(b[0], "m"));
            assertTrue(e.getMessage().contains(b[1]), e.getMessage());
            assertTrue(e.getMessage().startsWith("m:"), e.getMessage());
        }
    }

    @Test
    void globs() {
        Manifest m = Manifest.parse("profile p\nallow out fi*s.re*d\nallow out *\n", "m");
        assertTrue(m.rules().get(0).service().matcher("files").matches());
        assertFalse(m.rules().get(0).service().matcher("file").matches());
        assertTrue(m.rules().get(0).method().matcher("read").matches());
        assertTrue(m.rules().get(1).service().matcher("any.thing").matches());
    }
}
