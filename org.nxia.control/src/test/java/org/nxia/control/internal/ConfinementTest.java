package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;

import org.junit.jupiter.api.Test;
import org.nxia.control.api.Confinement;
import org.nxia.control.api.Confinement.Access;
import org.nxia.control.api.Confinement.PathRule;
import org.nxia.control.api.ExecRequest;

/** The confinement's checks and its EXEC fields (docs/control-protocol.md, FS_RULE and DENY_SYSCALLS). */
class ConfinementTest {

    @Test
    void pathRulesAreAbsoluteBoundedAndAllowSomething() {
        assertEquals(Set.of(Access.READ, Access.EXECUTE), PathRule.of("/usr", "xr").access());
        assertEquals(5, PathRule.of("/usr", "rx").bits());
        assertEquals(7, PathRule.of("/", "rwx").bits());
        assertThrows(IllegalArgumentException.class, () -> PathRule.of("usr", "r"));
        assertThrows(IllegalArgumentException.class, () -> PathRule.of("/a\0b", "r"));
        assertThrows(IllegalArgumentException.class, () -> PathRule.of("/usr", ""));
        assertThrows(IllegalArgumentException.class, () -> PathRule.of("/usr", "rq"));
        assertThrows(IllegalArgumentException.class, () -> new PathRule("/usr", Set.of()));
        String longest = "/" + "a".repeat(Confinement.MAX_PATH_BYTES - 1);
        PathRule.of(longest, "r");
        assertThrows(IllegalArgumentException.class, () -> PathRule.of(longest + "a", "r"));
        // bytes of UTF-8, not characters
        assertThrows(IllegalArgumentException.class, () -> PathRule.of("/" + "é".repeat(2048), "r"));
    }

    @Test
    void countsAndNumbersAreBounded() {
        List<PathRule> rules = Collections.nCopies(Confinement.MAX_PATH_RULES, PathRule.of("/usr", "r"));
        new Confinement(rules, Set.of());
        List<PathRule> more = new java.util.ArrayList<>(rules);
        more.add(PathRule.of("/etc", "r"));
        assertThrows(IllegalArgumentException.class, () -> new Confinement(more, Set.of()));
        Set<Integer> most = Set.copyOf(IntStream.range(0, Confinement.MAX_DENIED_SYSCALLS).boxed().toList());
        new Confinement(List.of(), most);
        assertThrows(IllegalArgumentException.class, () -> new Confinement(List.of(),
                Set.copyOf(IntStream.rangeClosed(0, Confinement.MAX_DENIED_SYSCALLS).boxed().toList())));
        assertThrows(IllegalArgumentException.class, () -> Confinement.NONE.denying(-1));
        assertThrows(IllegalArgumentException.class, () -> Confinement.NONE.denying(Confinement.MAX_SYSCALL + 1));
        assertEquals(List.of(2, 41, 59), List.copyOf(Confinement.NONE.denying(59, 2, 41).deniedSyscalls()));
    }

    @Test
    void execRequestKeepsItsConfinement() {
        ExecRequest r = ExecRequest.of("cat");
        assertTrue(r.confinement().isNone());
        assertTrue(new ExecRequest(List.of("cat"), Map.of(), null, null, null).confinement().isNone());
        Confinement c = Confinement.paths(PathRule.of("/usr", "rx")).denying(41);
        ExecRequest confined = r.withConfinement(c).withEnv("A", "1").withCwd("/").withPty(24, 80);
        assertEquals(c, confined.confinement());
        assertEquals("paths=[rx /usr] deny=[41]", c.toString());
        assertEquals("paths=[rx /usr] deny=[41] unshare=[NET]", c.unsharing(Confinement.Namespace.NET).toString());
        assertTrue(!Confinement.NONE.unsharing(Confinement.Namespace.MOUNT).isNone());
    }

    @Test
    void fieldsOnTheWire() {
        Wire.Fields f = new Wire.Fields();
        Wire.putConfinement(f, Confinement.paths(PathRule.of("/usr", "rx"), PathRule.of("/tmp", "w")).denying(42, 41));
        assertEquals("0a" + "08000000" + "05000000" + "2f757372"
                + "0a" + "08000000" + "02000000" + "2f746d70"
                + "0b" + "08000000" + "29000000" + "2a000000", HexFormat.of().formatHex(f.bytes()));
        Wire.Fields ns = new Wire.Fields();
        Wire.putConfinement(ns, Confinement.NONE.unsharing(Confinement.Namespace.NET, Confinement.Namespace.MOUNT));
        assertEquals("0c" + "04000000" + "03000000", HexFormat.of().formatHex(ns.bytes()));
        Wire.Fields pid = new Wire.Fields();
        Wire.putConfinement(pid, Confinement.NONE.unsharing(Confinement.Namespace.PID));
        assertEquals("0c" + "04000000" + "04000000", HexFormat.of().formatHex(pid.bytes()));
        Wire.Fields none = new Wire.Fields();
        Wire.putConfinement(none, Confinement.NONE);
        assertEquals(0, none.bytes().length);
    }
}
