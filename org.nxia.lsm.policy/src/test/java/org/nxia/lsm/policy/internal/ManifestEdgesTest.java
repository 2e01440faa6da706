package org.nxia.lsm.policy.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.nxia.lsm.policy.api.GuestConfinement;
import org.nxia.lsm.policy.api.GuestProcess;

/** The manifest's and the guest caller's bounds at their last accepted value, and the errors just past them. */
class ManifestEdgesTest {

    private static IllegalArgumentException refused(String manifest) {
        return assertThrows(IllegalArgumentException.class, () -> Manifest.parse(manifest, "m"), manifest);
    }

    @Test
    void aGuestPathOfExactlyTheLimitIsTakenAndTheLastSyscallToo() {
        String longest = "/" + "a".repeat(Manifest.MAX_PATH_BYTES - 1);
        Manifest m = Manifest.parse("profile p\nguest path r " + longest + "\nguest deny-syscall " + Manifest.MAX_SYSCALL + "\n", "m");
        assertEquals(List.of(new GuestConfinement.Path("r", longest)), m.guest().paths());
        assertEquals(Set.of(Manifest.MAX_SYSCALL), m.guest().deniedSyscalls());
        assertFalse(m.guest().isNone(), "a confinement with lines is not none");
        assertTrue(refused("profile p\nguest path r " + longest + "a\n").getMessage().contains("at most 4095 bytes"));
        assertTrue(refused("profile p\nguest deny-syscall " + (Manifest.MAX_SYSCALL + 1) + "\n").getMessage().contains("syscall '1024'"));
    }

    @Test
    void everyLineBeforeTheProfileIsRefused() {
        for (String line : new String[] {"grant catastrophic out a.b", "allow out a.b", "deny out a.b", "guest unshare net"}) {
            IllegalArgumentException e = refused(line + "\nprofile p\n");
            assertEquals("m:1: the first line must be 'profile <name>'", e.getMessage());
        }
    }

    /** A dot first or last leaves an empty service or method: the target's own error, not the glob's. */
    @Test
    void aTargetWithoutServiceOrMethodSaysWhatATargetIs() {
        for (String target : new String[] {".read", "files.", "."}) {
            IllegalArgumentException e = refused("profile p\nallow out " + target + "\n");
            assertTrue(e.getMessage().contains("target '" + target + "' must be <service>.<method>"), e.getMessage());
        }
        assertEquals(1, Manifest.parse("profile p\nallow out a.b\n", "m").rules().size(), "one character each side is enough");
    }

    @Test
    void aGuestCallersNumbersAreUnsigned32BitAndItsExeBounded() {
        long max = 0xffffffffL;
        GuestProcess p = new GuestProcess(max, max, max, "/" + "x".repeat(GuestProcess.MAX_EXE_BYTES - 1));
        assertEquals(max, p.uid());
        for (long[] bad : new long[][] {{max + 1, 0, 0}, {0, max + 1, 0}, {0, 0, max + 1}, {-1, 0, 0}, {0, -1, 0}, {0, 0, -1}}) {
            assertThrows(IllegalArgumentException.class, () -> new GuestProcess(bad[0], bad[1], bad[2], "/bin/sh"));
        }
        assertThrows(IllegalArgumentException.class, () -> new GuestProcess(0, 0, 0, "/" + "x".repeat(GuestProcess.MAX_EXE_BYTES)));
        assertThrows(IllegalArgumentException.class, () -> new GuestProcess(0, 0, 0, null));
    }
}
