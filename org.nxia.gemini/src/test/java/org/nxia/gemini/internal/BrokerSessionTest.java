package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.CallContext;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.Transport;
import org.nxia.lsm.policy.api.GuestProcess;
import org.nxia.lsm.policy.internal.PolicyService;

/**
 * A System VM broker's session: its CALLs name the guest process they come from, the policy
 * matches it and the service sees it; no other session may name one.
 */
class BrokerSessionTest {

    /** Says which process called. */
    public static final class Who {
        public String who(CallContext c) {
            return c.process().map(GuestProcess::toString).orElse("no process");
        }
    }

    private final PolicyService policy = new PolicyService();
    private GeminiImpl gemini;

    @BeforeEach
    void open() throws Exception {
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile sys\nallow out who.* caller=uid:1000 caller=exe:/usr/bin/*\n");
        policy.updated("m", config);
        gemini = new GeminiImpl(policy, Map.of("who", new Who()), Map.of());
    }

    private static LoopbackTransport[] welcomed(GeminiImpl g, boolean broker) {
        LoopbackTransport[] raw = LoopbackTransport.pair();
        g.openSession(raw[0], "sys", "vm-1", broker, () -> { });
        raw[1].inject(Wire.encode(new Wire.Hello(1, 1, "agent", new byte[0])));
        assertTrue(SessionEdgeTest.next(raw[1]).startsWith("WELCOME"));
        return raw;
    }

    private static Wire.Call call(long id, GuestProcess p) {
        return new Wire.Call(id, "who", "who", List.of(), List.of(), p);
    }

    @Test
    void theBrokersCallsNameTheirProcessForThePolicyAndTheService() {
        LoopbackTransport[] raw = welcomed(gemini, true);
        raw[1].inject(Wire.encode(call(1, new GuestProcess(1000, 100, 42, "/usr/bin/nxia-call"))));
        assertEquals("RETURN id=1 value=str:\"uid=1000 gid=100 pid=42 exe=/usr/bin/nxia-call\"", SessionEdgeTest.next(raw[1]));
        raw[1].inject(Wire.encode(call(2, new GuestProcess(0, 0, 43, "/usr/bin/nxia-call"))));
        String denied = SessionEdgeTest.next(raw[1]);
        assertTrue(denied.startsWith("ERROR id=2 code=" + ErrorCode.DENIED.wire()), denied);
        assertTrue(denied.contains("uid=0 gid=0 pid=43 exe=/usr/bin/nxia-call"), "the denial names the process: " + denied);
        raw[1].inject(Wire.encode(call(3, null)));
        assertTrue(SessionEdgeTest.next(raw[1]).startsWith("ERROR id=3 code=" + ErrorCode.DENIED.wire()),
                "a call naming no process has no uid to match");
        assertEquals(43, policy.audit(10).stream().filter(e -> e.request().process() != null).findFirst().orElseThrow().request().process().pid(),
                "the audit log keeps who called");
        String shown = new GeminiCommands(gemini).sessions();
        assertTrue(shown.contains("\n         callers: uid 1000 /usr/bin/nxia-call (1), uid 0 /usr/bin/nxia-call (1)\n"),
                "gemini:sessions names the processes that called, denied ones too: " + shown);
        for (int i = 0; i < Session.MAX_CALLERS_SHOWN + 2; i++) {
            raw[1].inject(Wire.encode(call(100 + i, new GuestProcess(2000 + i, 1, 1, "/bin/p"))));
            SessionEdgeTest.next(raw[1]);
        }
        String bounded = new GeminiCommands(gemini).sessions();
        assertEquals(Session.MAX_CALLERS_SHOWN, bounded.substring(bounded.indexOf("callers: ")).split(", ").length, bounded);
        assertTrue(bounded.contains("uid 2009 /bin/p (1)\n") && !bounded.contains("uid 1000 "), "the least recent go first: " + bounded);
    }

    @Test
    void noOtherSessionMayNameAProcess() {
        LoopbackTransport[] raw = welcomed(gemini, false);
        raw[1].inject(Wire.encode(call(1, new GuestProcess(1000, 100, 42, "/usr/bin/x"))));
        assertEquals("ERROR id=1 code=1 message=\"this session is no System VM broker's: a CALL may not name a caller process\"",
                SessionEdgeTest.next(raw[1]));
        assertTrue(policy.audit(10).isEmpty(), "refused before the policy saw it");
    }

    @Test
    void theCallerBlockRoundTripsAndIsCheckedWhereItIsDecoded() {
        GuestProcess p = new GuestProcess(0xfffffffeL, 7, 9, "/bin/é");
        byte[] enc = Wire.encode(call(5, p));
        assertEquals(Wire.F_CALLER, enc[2]);
        Wire.Call back = (Wire.Call) Wire.decode(enc, enc.length);
        assertEquals(p, back.process());
        assertEquals("CALL id=5 service=who method=who tokens=[] args=[] caller=uid:4294967294,gid:7,pid:9,exe:\"/bin/é\"", Wire.text(back));
        assertNull(((Wire.Call) Wire.decode(Wire.encode(call(6, null)), Wire.encode(call(6, null)).length)).process());

        byte[] relative = Wire.encode(call(5, new GuestProcess(1, 1, 1, "bin/x")));
        assertEquals(ErrorCode.BAD_FRAME, assertThrows(GeminiException.class, () -> Wire.decode(relative, relative.length)).code());
        byte[] nul = Wire.encode(call(5, new GuestProcess(1, 1, 1, "/bin/\0x")));
        assertEquals(ErrorCode.BAD_FRAME, assertThrows(GeminiException.class, () -> Wire.decode(nul, nul.length)).code());
        assertEquals(p, ((Wire.Call) Wire.decode(Wire.encode(call(5, new GuestProcess(0xfffffffeL, 7, 9, "/bin/é"))), enc.length)).process());
        byte[] empty = Wire.encode(call(5, new GuestProcess(1, 1, 1, "")));
        assertEquals("", ((Wire.Call) Wire.decode(empty, empty.length)).process().exe(), "an exe the kernel would not give is empty");

        byte[] cancel = Wire.encode(new Wire.Cancel(5));
        cancel[2] = Wire.F_CALLER;
        assertEquals(ErrorCode.BAD_FRAME, assertThrows(GeminiException.class, () -> Wire.decode(cancel, cancel.length)).code(),
                "only a CALL carries the flag");
        byte[] other = enc.clone();
        other[2] = 2;
        assertEquals(ErrorCode.BAD_FRAME, assertThrows(GeminiException.class, () -> Wire.decode(other, other.length)).code());
        byte[] longExe = enc.clone();
        ByteBuffer.wrap(longExe).order(ByteOrder.LITTLE_ENDIAN).putInt(Wire.HEADER + 12, GuestProcess.MAX_EXE_BYTES + 1);
        assertTrue(assertThrows(GeminiException.class, () -> Wire.decode(longExe, longExe.length)).reason().contains("limit"));
        byte[] cut = java.util.Arrays.copyOf(enc, Wire.HEADER + 10);
        assertEquals(ErrorCode.BAD_FRAME, assertThrows(GeminiException.class, () -> Wire.decode(cut, cut.length)).code());
    }

    @Test
    void openBrokerGivesAStreamSessionThatTakesProcessesBoundToTheVm() throws Exception {
        java.nio.channels.Pipe up = java.nio.channels.Pipe.open();
        java.nio.channels.Pipe down = java.nio.channels.Pipe.open();
        GeminiSession s = gemini.openBroker(new StreamTransportTest.End(up.source(), down.sink()), "sys", "vm-b");
        assertEquals(s, gemini.sessionOfVm("vm-b").orElseThrow());
        StreamTransport agent = new StreamTransport(new StreamTransportTest.End(down.source(), up.sink()), "agent");
        try {
            send(agent, new Wire.Hello(1, 1, "agent", new byte[0]));
            assertTrue(SessionEdgeTest.next(agent).startsWith("WELCOME"));
            send(agent, call(9, new GuestProcess(1000, 1, 2, "/usr/bin/a")));
            assertEquals("RETURN id=9 value=str:\"uid=1000 gid=1 pid=2 exe=/usr/bin/a\"", SessionEdgeTest.next(agent));
        } finally {
            agent.close();
        }
        s.close("done");
    }

    private static void send(Transport t, Wire.Frame f) {
        byte[] b = Wire.encode(f);
        assertTrue(t.send(b, b.length));
    }
}
