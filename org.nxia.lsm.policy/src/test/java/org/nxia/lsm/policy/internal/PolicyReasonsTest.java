package org.nxia.lsm.policy.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Hashtable;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.lsm.policy.api.CallRequest.Direction;
import org.nxia.lsm.policy.api.Decision;
import org.osgi.service.cm.ConfigurationException;

/** What a refusal says: an operator reads these in the audit log and in ConfigAdmin's errors. */
class PolicyReasonsTest {

    @TempDir
    Path tmp;

    private static Hashtable<String, Object> props(String key, Object value) {
        Hashtable<String, Object> d = new Hashtable<>();
        d.put(key, value);
        return d;
    }

    private static CallRequest call(Direction direction, String service, String method) {
        return new CallRequest("p", 1, "vm-1", "guest:vm-1", direction, service, method, false);
    }

    @Test
    void aDenialNamesTheCallsDirectionAndTheRateLimitItsLimit() throws ConfigurationException {
        PolicyService policy = new PolicyService();
        policy.updated("pid", props("manifest", "profile p\nallow out files.* rate=1/s\n"));
        assertEquals("no rule of manifest 'p' matches out net.open from guest:vm-1 (default deny)",
                policy.check(call(Direction.GUEST_TO_HOST, "net", "open")).reason());
        assertEquals("no rule of manifest 'p' matches in net.open from guest:vm-1 (default deny)",
                policy.check(call(Direction.HOST_TO_GUEST, "net", "open")).reason());
        assertTrue(policy.check(call(Direction.GUEST_TO_HOST, "files", "read")).allowed());
        Decision limited = policy.check(call(Direction.GUEST_TO_HOST, "files", "read"));
        assertTrue(limited.rateLimited());
        assertEquals("rate limit exceeded (manifest 'p' line 2 (allow out files.* rate=1/s))", limited.reason());
    }

    @Test
    void aManifestFileThatCannotBeReadIsToldApartFromABadOne() throws Exception {
        PolicyService policy = new PolicyService();
        Path missing = tmp.resolve("missing.manifest");
        ConfigurationException unreadable = assertThrows(ConfigurationException.class, () -> policy.updated("pid", props("file", missing.toString())));
        assertEquals("file", unreadable.getProperty(), "the property at fault is the file's");
        assertTrue(unreadable.getReason().startsWith("cannot read manifest " + missing + ": "), unreadable.getReason());

        Path bad = Files.writeString(tmp.resolve("bad.manifest"), "profile p\nfrobnicate\n");
        ConfigurationException invalid = assertThrows(ConfigurationException.class, () -> policy.updated("pid", props("file", bad.toString())));
        assertEquals("file", invalid.getProperty());
        assertFalse(invalid.getReason().startsWith("cannot read"), invalid.getReason());
        assertTrue(invalid.getReason().startsWith(bad + ":2: unknown keyword 'frobnicate'"), invalid.getReason());

        ConfigurationException inline = assertThrows(ConfigurationException.class, () -> policy.updated("pid", props("manifest", "profile p\nfrobnicate\n")));
        assertEquals("manifest", inline.getProperty(), "text given inline: the property at fault is 'manifest'");
        assertEquals("NXIA capability manifests", policy.getName(), "the name ConfigAdmin's tools show for the factory");
    }
}
