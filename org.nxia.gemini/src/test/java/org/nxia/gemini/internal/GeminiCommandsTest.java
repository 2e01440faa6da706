package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.lsm.policy.internal.PolicyService;
import org.nxia.portal.internal.Structures;

/** The gemini:* Gogo commands: what they print, and what they refuse. */
class GeminiCommandsTest {
    static final Duration T = Duration.ofSeconds(5);

    private GeminiImpl gemini;
    private GeminiCommands commands;

    @BeforeEach
    void open() throws Exception {
        PolicyService policy = new PolicyService();
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile cmd\nallow out echo.*\nallow in calc.*\n");
        policy.updated("m", config);
        gemini = new GeminiImpl(policy, Map.of("echo", new SessionTest.Echo()), Map.of("echo", Set.of("fail")));
        commands = new GeminiCommands(gemini);
    }

    @AfterEach
    void close() {
        gemini.deactivate();
    }

    /** The columns of each data row of a table (the header row left out). */
    private static List<String[]> rows(String table) {
        String[] lines = table.split("\n");
        return java.util.Arrays.stream(lines).skip(1).map(l -> l.trim().split("\\s+")).toList();
    }

    @Test
    void anEmptyGeminiSaysSo() throws Exception {
        GeminiImpl empty = new GeminiImpl(new PolicyService(), Map.of(), Map.of());
        try {
            GeminiCommands c = new GeminiCommands(empty);
            assertEquals("no Gemini sessions (a guest opens one with nxia_gemini_open)", c.sessions());
            assertTrue(c.services().startsWith("no host services (register an OSGi service with "), c.services());
            assertEquals("no capability tokens", c.tokens());
        } finally {
            empty.deactivate();
        }
    }

    @Test
    void sessionsListEachWithItsVmPeerProfileTokensAndRegion() throws Exception {
        LoopbackTransport[] a = LoopbackTransport.pair();
        LoopbackTransport[] b = LoopbackTransport.pair();
        GeminiSession first = gemini.openSession(a[0], "cmd", "vm-one");
        Session guestA = gemini.client(a[1], new PeerHandler(), "peer-a");
        GeminiSession second = gemini.openSession(b[0], "cmd", null);
        Session guestB = gemini.client(b[1], new PeerHandler(), "peer-b");
        try (Arena arena = Arena.ofConfined()) {
            first.grant("echo", GeminiSession.READ, Duration.ofMinutes(1));
            CapabilityToken gone = first.grant("echo", GeminiSession.READ, Duration.ofMinutes(1));
            first.grant("echo", GeminiSession.READ, Duration.ofMinutes(1));
            first.revoke(gone);
            first.bindReferenceRegion("refs", new Structures().formatArena(arena.allocate(1 << 16, 64), 4096));
            String out = commands.sessions();
            assertTrue(out.startsWith("SESSION  VM"), out);
            List<String[]> rows = rows(out);
            assertEquals(2, rows.size(), out);
            assertArrayEquals(new String[] {Long.toString(first.id()), "vm-one", "peer-a", "cmd", "0", "2", "refs"}, rows.get(0), out);
            assertArrayEquals(new String[] {Long.toString(second.id()), "-", "peer-b", "cmd", "0", "0", "-"}, rows.get(1), out);
        } finally {
            guestA.close("done");
            guestB.close("done");
        }
    }

    @Test
    void servicesListTheirMethodsAndWhatIsCatastrophic() throws Exception {
        GeminiImpl two = new GeminiImpl(new PolicyService(), Map.of("echo", new SessionTest.Echo(), "plain", new SessionTest.Plain()),
                Map.of("echo", Set.of("fail")));
        try {
            assertEquals("echo: add, concat, fail, half, not, nothing, reverse, typed  (catastrophic: fail)\nplain: one\n",
                    new GeminiCommands(two).services());
        } finally {
            two.deactivate();
        }
    }

    @Test
    void callParsesItsArgumentsAndPrintsTheResultAsText() throws Exception {
        LoopbackTransport[] w = LoopbackTransport.pair();
        GeminiSession host = gemini.openSession(w[0], "cmd", null);
        Session guest = gemini.client(w[1], new PeerHandler()
                .export("calc", "add", (args, c) -> (Long) args.get(0) + (Long) args.get(1))
                .export("calc", "show", (args, c) -> args.stream().map(Wire::text).toList().toString()), "calc-guest");
        try {
            assertEquals("i64:5", commands.call(host.id(), "calc", "add", "2", "3"));
            assertEquals("str:\"[i64:-7, bool:true, bool:false, bytes:0a0b, str:\"x1\", str:\"1234567890123456789\"]\"",
                    commands.call(host.id(), "calc", "show", "-7", "true", "false", "hex:0a0b", "x1", "1234567890123456789"));
            IllegalArgumentException none = assertThrows(IllegalArgumentException.class, () -> commands.call(999, "calc", "add"));
            assertEquals("no session 999 (gemini:sessions lists them)", none.getMessage());
            assertThrows(GeminiException.class, () -> commands.call(host.id(), "calc", "missing"));
        } finally {
            guest.close("done");
        }
    }

    @Test
    void argumentsParseToTheirWireTypes() {
        assertEquals(123456789012345678L, GeminiCommands.parse("123456789012345678"));
        assertEquals(-1L, GeminiCommands.parse("-1"));
        assertEquals("1234567890123456789", GeminiCommands.parse("1234567890123456789"), "19 digits may not fit: a string");
        assertEquals("--1", GeminiCommands.parse("--1"));
        assertEquals(Boolean.TRUE, GeminiCommands.parse("true"));
        assertEquals(Boolean.FALSE, GeminiCommands.parse("false"));
        assertEquals("True", GeminiCommands.parse("True"));
        assertArrayEquals(new byte[] {(byte) 0xff, 0}, (byte[]) GeminiCommands.parse("hex:ff00"));
        assertEquals("hexff", GeminiCommands.parse("hexff"));
    }

    @Test
    void tokensShowOwnerRightsExpiryAndState() throws Exception {
        LoopbackTransport[] w = LoopbackTransport.pair();
        GeminiSession host = gemini.openSession(w[0], "cmd", null);
        Session guest = gemini.client(w[1], new PeerHandler(), "tok-guest");
        try {
            CapabilityToken live = host.grant("echo", GeminiSession.READ | GeminiSession.WRITE, Duration.ofMinutes(5));
            CapabilityToken revoked = host.grant("echo", GeminiSession.READ, Duration.ofMinutes(10));
            host.revoke(revoked);
            CapabilityToken expired = host.grant("echo", GeminiSession.READ, Duration.ofMillis(1));
            Thread.sleep(20);
            String out = commands.tokens();
            assertTrue(out.startsWith("TOKEN"), out);
            List<String[]> rows = rows(out);
            assertEquals(3, rows.size(), out);
            // earliest expiry first
            String id = Long.toString(host.id());
            assertArrayEquals(new String[] {expired.toString(), id, "echo", "0x1", rows.get(0)[4], "expired"}, rows.get(0), out);
            assertArrayEquals(new String[] {live.toString(), id, "echo", "0x" + Integer.toHexString(GeminiSession.READ | GeminiSession.WRITE),
                    rows.get(1)[4], "live"}, rows.get(1), out);
            assertArrayEquals(new String[] {revoked.toString(), id, "echo", "0x1", rows.get(2)[4], "revoked"}, rows.get(2), out);
        } finally {
            guest.close("done");
        }
    }
}
