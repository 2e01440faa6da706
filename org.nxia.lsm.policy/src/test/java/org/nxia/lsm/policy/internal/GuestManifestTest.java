package org.nxia.lsm.policy.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Hashtable;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.nxia.lsm.policy.api.GuestConfinement;
import org.osgi.service.cm.ConfigurationException;

/** The manifest's guest lines (issue 13 §5): what programs in the profile's System VM may touch. */
class GuestManifestTest {

    static final String MANIFEST = """
            profile sysvm
            allow out echo.*
            guest path rx /usr          # programs and libraries
            guest path r /etc/hostname
            guest path rw /tmp
            guest deny-syscall 41,42
            guest deny-syscall 101
            guest unshare net,mount
            guest unshare pid,user
            """;

    @Test
    void guestLinesBecomeTheProfilesConfinement() throws ConfigurationException {
        PolicyService policy = new PolicyService();
        Hashtable<String, Object> props = new Hashtable<>();
        props.put("manifest", MANIFEST);
        policy.updated("pid1", props);
        GuestConfinement g = policy.guestConfinement("sysvm");
        assertEquals(List.of(new GuestConfinement.Path("rx", "/usr"), new GuestConfinement.Path("r", "/etc/hostname"),
                new GuestConfinement.Path("rw", "/tmp")), g.paths());
        assertEquals(List.of(41, 42, 101), List.copyOf(g.deniedSyscalls()));
        assertEquals(List.of("mount", "net", "pid", "user"), List.copyOf(g.namespaces()));
        assertNull(policy.guestConfinement("other"), "no manifest, no answer");
        props.put("manifest", "profile plain\nallow out echo.*\n");
        policy.updated("pid2", props);
        assertTrue(policy.guestConfinement("plain").isNone());
    }

    @Test
    void badGuestLinesNameTheirLine() {
        for (String[] bad : new String[][] {
                {"guest path rx usr", "must be absolute"},
                {"guest path xr /usr", "access 'xr'"},
                {"guest path q /usr", "access 'q'"},
                {"guest path rx", "expected 'guest path"},
                {"guest deny-syscall 1024", "syscall '1024'"},
                {"guest deny-syscall 41,", "syscall ''"},
                {"guest deny-syscall -1", "syscall '-1'"},
                {"guest allow /usr", "expected 'guest path"},
                {"guest unshare uts", "namespace 'uts' must be mount, net, pid or user"},
                {"guest unshare net,", "namespace ''"},
                {"guest path r /" + "a".repeat(Manifest.MAX_PATH_BYTES), "at most 4095 bytes"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Manifest.parse("profile p\n" + bad[0] + "\n", "m"), bad[0]);
            assertTrue(e.getMessage().startsWith("m:2: ") && e.getMessage().contains(bad[1]), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> Manifest.parse("guest path r /usr\nprofile p\n", "m"));
    }

    @Test
    void guestLinesAreBounded() {
        StringBuilder paths = new StringBuilder("profile p\n");
        for (int i = 0; i < Manifest.MAX_GUEST_PATHS; i++)
            paths.append("guest path r /d").append(i).append('\n');
        assertEquals(Manifest.MAX_GUEST_PATHS, Manifest.parse(paths.toString(), "m").guest().paths().size());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Manifest.parse(paths + "guest path r /one-more\n", "m"));
        assertTrue(e.getMessage().contains("more than 64 guest paths"), e.getMessage());
        StringBuilder nrs = new StringBuilder("0");
        for (int i = 1; i < Manifest.MAX_DENIED_SYSCALLS; i++)
            nrs.append(',').append(i);
        assertEquals(Set.copyOf(Manifest.parse("profile p\nguest deny-syscall " + nrs + "\n", "m").guest().deniedSyscalls()).size(),
                Manifest.MAX_DENIED_SYSCALLS);
        e = assertThrows(IllegalArgumentException.class,
                () -> Manifest.parse("profile p\nguest deny-syscall " + nrs + "\nguest deny-syscall 500\n", "m"));
        assertTrue(e.getMessage().contains("more than 128 denied syscalls"), e.getMessage());
    }
}
