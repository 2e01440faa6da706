package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.HexFormat;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.CallContext;
import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.lsm.policy.internal.PolicyService;

/** Sessions over the loopback transport, with the real policy service. */
class SessionTest {

    static final Duration T = Duration.ofSeconds(5);

    /** A host service: everything a guest may call in these tests. */
    public static final class Echo {
        public long add(long a, long b) {
            return a + b;
        }

        public String concat(String a, String b) {
            return a + b;
        }

        public byte[] reverse(byte[] in) {
            byte[] out = new byte[in.length];
            for (int i = 0; i < in.length; i++) {
                out[i] = in[in.length - 1 - i];
            }
            return out;
        }

        public boolean not(boolean b) {
            return !b;
        }

        public double half(double d) {
            return d / 2;
        }

        public void nothing() {
        }

        public void fail(String why) {
            throw new IllegalStateException(why);
        }

        public void typed() {
            throw new GeminiException(ErrorCode.BAD_ARGS, "typed failure");
        }
    }

    /** A service with capabilities: open grants a READ token, read needs it. */
    public static final class Files {
        public CapabilityToken open(CallContext ctx, String name, long ttlMillis) {
            return ctx.session().grant("files", GeminiSession.READ, Duration.ofMillis(ttlMillis));
        }

        public String read(CallContext ctx) {
            ctx.require(GeminiSession.READ);
            return "contents";
        }

        public String wipe(CallContext ctx) {
            ctx.require(GeminiSession.WRITE);
            return "wiped";
        }
    }

    /** What the host calls in the guest. */
    public interface Calc {
        long add(long a, long b);

        CompletableFuture<Object> slow(long millis);
    }

    private PolicyService policy;
    private GeminiImpl gemini;
    private LoopbackTransport[] wire;
    private GeminiSession host;
    private Session guest;
    private final CountDownLatch slowInterrupted = new CountDownLatch(1);
    private final CountDownLatch slowStarted = new CountDownLatch(1);

    @BeforeEach
    void open() throws Exception {
        policy = new PolicyService();
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", """
                profile test
                allow out echo.*
                allow out files.*
                allow out vm.*
                allow in  calc.*
                """);
        policy.updated("m1", config);
        gemini = new GeminiImpl(policy, Map.of("echo", new Echo(), "files", new Files(), "vm", new Echo()),
                Map.of("vm", Set.of("*")));
        wire = LoopbackTransport.pair();
        PeerHandler exports = new PeerHandler()
                .export("calc", "add", (args, ctx) -> (Long) args.get(0) + (Long) args.get(1))
                .export("calc", "slow", (args, ctx) -> {
                    slowStarted.countDown();
                    try {
                        Thread.sleep((Long) args.get(0));
                    } catch (InterruptedException e) {
                        slowInterrupted.countDown();
                        throw e;
                    }
                    return 1L;
                });
        host = gemini.openSession(wire[0], "test", null);
        guest = gemini.client(wire[1], exports, "test-guest");
        assertEquals("test-guest", host.peer());
    }

    @AfterEach
    void close() {
        guest.close("test over");
        gemini.deactivate();
    }

    @Test
    void guestCallsHostWithScalarsStringsAndBytes() {
        assertEquals(42L, guest.call("echo", "add", T, 40L, 2));
        assertEquals("ab", guest.call("echo", "concat", T, "a", "b"));
        assertArrayEquals(new byte[] {3, 2, 1}, (byte[]) guest.call("echo", "reverse", T, new byte[] {1, 2, 3}));
        assertEquals(false, guest.call("echo", "not", T, true));
        assertEquals(1.25, guest.call("echo", "half", T, 2.5));
        assertNull(guest.call("echo", "nothing", T), "void returns null");
    }

    @Test
    void hostCallsGuestThroughATypedProxy() throws Exception {
        Calc calc = host.proxy(Calc.class, "calc", T);
        assertEquals(5L, calc.add(2, 3));
        assertEquals(1L, calc.slow(1).get(5, TimeUnit.SECONDS));
    }

    private static ErrorCode code(Runnable r) {
        return assertThrows(GeminiException.class, r::run).code();
    }

    @Test
    void errorsAreTyped() {
        GeminiException failed = assertThrows(GeminiException.class, () -> guest.call("echo", "fail", T, "boom"));
        assertEquals(ErrorCode.FAILED, failed.code());
        assertTrue(failed.getMessage().contains("boom"), failed.getMessage());
        assertEquals(ErrorCode.BAD_ARGS, code(() -> guest.call("echo", "typed", T)));
        assertEquals(ErrorCode.NO_METHOD, code(() -> guest.call("echo", "nope", T)));
        assertEquals(ErrorCode.BAD_ARGS, code(() -> guest.call("echo", "add", T, "x", 1L)));
        assertEquals(ErrorCode.BAD_ARGS, code(() -> guest.call("echo", "add", T, 1L)));
        assertEquals(ErrorCode.NO_METHOD, code(() -> host.call("calc", "missing", T)));
    }

    @Test
    void deniedCallsCarryTheReasonAndAreAudited() {
        GeminiException e = assertThrows(GeminiException.class, () -> guest.call("net", "open", T));
        assertEquals(ErrorCode.DENIED, e.code());
        assertTrue(e.getMessage().contains("no rule of manifest 'test' matches out net.open"), e.getMessage());
        var audit = policy.audit(10);
        assertEquals("net", audit.get(audit.size() - 1).request().service());
        assertTrue(audit.get(audit.size() - 1).request().caller().startsWith("peer:test-guest"));
        GeminiException cat = assertThrows(GeminiException.class, () -> guest.call("vm", "add", T, 1L, 2L));
        assertEquals(ErrorCode.DENIED, cat.code());
        assertTrue(cat.getMessage().contains("catastrophic"), cat.getMessage());
        GeminiException out = assertThrows(GeminiException.class, () -> host.call("other", "thing", T));
        assertEquals(ErrorCode.DENIED, out.code(), "host-to-guest calls are checked too");
    }

    @Test
    void timeoutsFailTheCallAndCancelItInThePeer() throws Exception {
        GeminiException e = assertThrows(GeminiException.class, () -> host.call("calc", "slow", Duration.ofMillis(100), 10_000L));
        assertEquals(ErrorCode.TIMEOUT, e.code());
        assertTrue(slowInterrupted.await(5, TimeUnit.SECONDS), "the CANCEL reached the guest function");
        assertEquals(5L, host.call("calc", "add", T, 2L, 3L), "the session still works");
    }

    @Test
    void cancellationReachesThePeer() throws Exception {
        CompletableFuture<Object> f = host.callAsync("calc", "slow", List.of(), T, 10_000L);
        assertTrue(slowStarted.await(5, TimeUnit.SECONDS));
        assertTrue(f.cancel(true));
        ExecutionException e = assertThrows(ExecutionException.class, f::get);
        assertEquals(ErrorCode.CANCELLED, ((GeminiException) e.getCause()).code());
        assertTrue(slowInterrupted.await(5, TimeUnit.SECONDS));
    }

    @Test
    void tokensAreCheckedOnEveryUse() throws Exception {
        CapabilityToken t = (CapabilityToken) guest.call("files", "open", T, "a", 60_000L);
        assertEquals("contents", guest.callAsync("files", "read", List.of(t), T).get());
        assertEquals(ErrorCode.TOKEN, code(() -> guest.call("files", "read", T)), "no token");
        assertEquals(ErrorCode.TOKEN, tokenError(guest, "wipe", t), "token lacks WRITE");
        CapabilityToken forged = new CapabilityToken(t.high() ^ 1, t.low());
        assertEquals(ErrorCode.TOKEN, tokenError(guest, "read", forged));

        CapabilityToken shortLived = (CapabilityToken) guest.call("files", "open", T, "a", 1L);
        Thread.sleep(20);
        GeminiException expired = assertThrows(GeminiException.class, () -> join(guest, "read", shortLived));
        assertTrue(expired.getMessage().contains("expired"), expired.getMessage());

        assertTrue(host.revoke(t));
        GeminiException revoked = assertThrows(GeminiException.class, () -> join(guest, "read", t));
        assertTrue(revoked.getMessage().contains("revoked"), revoked.getMessage());

        // another session presents this session's token
        CapabilityToken mine = (CapabilityToken) guest.call("files", "open", T, "a", 60_000L);
        LoopbackTransport[] w2 = LoopbackTransport.pair();
        gemini.openSession(w2[0], "test", null);
        Session other = gemini.client(w2[1], new PeerHandler(), "other-guest");
        GeminiException stolen = assertThrows(GeminiException.class, () -> join(other, "read", mine));
        assertEquals(ErrorCode.TOKEN, stolen.code());
        assertTrue(stolen.getMessage().contains("another session"), stolen.getMessage());
        other.close("done");
    }

    private static Object join(Session s, String method, CapabilityToken t) {
        try {
            return s.callAsync("files", method, List.of(t), T).get();
        } catch (ExecutionException e) {
            throw (GeminiException) e.getCause();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    private static ErrorCode tokenError(Session s, String method, CapabilityToken t) {
        return assertThrows(GeminiException.class, () -> join(s, method, t)).code();
    }

    @Test
    void malformedFramesGetAnErrorReplyAndTheSessionLives() throws Exception {
        LoopbackTransport[] raw = LoopbackTransport.pair();
        GeminiSession s = gemini.openSession(raw[0], "test", null);
        byte[] buf = new byte[LoopbackTransport.MAX_FRAME];
        raw[1].inject(HexFormat.of().parseHex("06010000000000000700000000000000")); // CANCEL before HELLO
        assertEquals("ERROR id=7 code=3 message=\"say HELLO first\"", next(raw[1], buf));
        raw[1].inject(Wire.encode(new Wire.Hello(1, 1, "raw", new byte[0])));
        assertTrue(next(raw[1], buf).startsWith("WELCOME"));
        raw[1].inject(HexFormat.of().parseHex("040100000000000009000000000000000102")); // bool 2
        assertEquals("ERROR id=9 code=1 message=\"bool value 2 (must be 0 or 1)\"", next(raw[1], buf));
        raw[1].inject(new byte[] {1, 2, 3});
        assertTrue(next(raw[1], buf).startsWith("ERROR id=0 code=1"));
        raw[1].inject(Wire.encode(new Wire.Call(5, "echo", "add", List.of(), List.of(1L, 2L))));
        assertEquals("RETURN id=5 value=i64:3", next(raw[1], buf));
        assertTrue(s.isOpen());
        s.close("done");
    }

    private static String next(LoopbackTransport t, byte[] buf) {
        long end = System.nanoTime() + 5_000_000_000L;
        while (System.nanoTime() < end) {
            int n = t.receive(buf);
            if (n >= 0) {
                return Wire.text(Wire.decode(buf, n));
            }
            t.await(1_000_000);
        }
        throw new AssertionError("no frame within 5 s");
    }

    @Test
    void closingTheSessionFailsOutstandingCallsAndRevokesTokens() throws Exception {
        CapabilityToken t = (CapabilityToken) guest.call("files", "open", T, "a", 60_000L);
        CompletableFuture<Object> f = host.callAsync("calc", "slow", List.of(), T, 10_000L);
        assertTrue(slowStarted.await(5, TimeUnit.SECONDS));
        host.close("operator closed it");
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(1, TimeUnit.SECONDS));
        GeminiException g = (GeminiException) e.getCause();
        assertEquals(ErrorCode.CLOSED, g.code());
        assertTrue(g.getMessage().contains("operator closed it"), g.getMessage());
        assertTrue(host.tokens().isEmpty() || host.tokens().stream().allMatch(i -> i.revoked()));
        assertFalse(gemini.sessions().contains(host));
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (guest.isOpen() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertFalse(guest.isOpen(), "the peer got CLOSE");
        assertEquals(ErrorCode.CLOSED, code(() -> guest.call("echo", "add", T, 1L, 2L)));
        assertTrue(t != null);
    }

    /** The CLOSE frame must go out before the transport closes, even when the receiver is busy spinning. */
    @Test
    void theHostsCloseAlwaysReachesThePeer() throws Exception {
        for (int i = 0; i < 50; i++) {
            LoopbackTransport[] w = LoopbackTransport.pair();
            GeminiSession h = gemini.openSession(w[0], "test", null);
            Session g = gemini.client(w[1], new PeerHandler(), "peer-" + i);
            assertEquals(3L, g.call("echo", "add", T, 1L, 2L));
            h.close("round " + i);
            long deadline = System.nanoTime() + 2_000_000_000L;
            while (g.isOpen() && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals("the peer closed the session: round " + i, g.closeReason());
        }
    }

    @Test
    void peerDeathFailsOutstandingCallsPromptly() throws Exception {
        CompletableFuture<Object> f = host.callAsync("calc", "slow", List.of(), Duration.ofSeconds(30), 10_000L);
        assertTrue(slowStarted.await(5, TimeUnit.SECONDS));
        long start = System.nanoTime();
        wire[0].peerDied("the VM stopped: killed in a test");
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(2, TimeUnit.SECONDS));
        assertEquals(ErrorCode.CLOSED, ((GeminiException) e.getCause()).code());
        assertTrue(e.getCause().getMessage().contains("killed in a test"));
        assertTrue(System.nanoTime() - start < 1_000_000_000L);
    }
}
