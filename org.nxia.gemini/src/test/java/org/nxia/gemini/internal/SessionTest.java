package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
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
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.CallContext;
import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.TokenInfo;
import org.nxia.gemini.api.Transport;
import org.nxia.lsm.policy.api.AuditEntry;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.lsm.policy.api.Decision;
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

        /** Holds until {@link #later} opens, then uses its token: what a call still running at close sees. */
        final CountDownLatch holding = new CountDownLatch(1);
        final CountDownLatch later = new CountDownLatch(1);
        final AtomicReference<Object> lateOutcome = new AtomicReference<>();

        public String readLater(CallContext ctx) {
            holding.countDown();
            awaitUninterruptibly(later);
            try {
                lateOutcome.set(ctx.require(GeminiSession.READ));
            } catch (GeminiException e) {
                lateOutcome.set(e);
            }
            return "late";
        }
    }

    /** Blocks every call until released, ignoring interrupts (CANCEL), and counts how many run at once. */
    public static final class Blocker {
        final CountDownLatch release = new CountDownLatch(1);
        final AtomicInteger started = new AtomicInteger();
        final AtomicInteger running = new AtomicInteger();
        final AtomicInteger most = new AtomicInteger();

        public void hold() {
            started.incrementAndGet();
            most.accumulateAndGet(running.incrementAndGet(), Math::max);
            awaitUninterruptibly(release);
            running.decrementAndGet();
        }
    }

    static void awaitUninterruptibly(CountDownLatch latch) {
        boolean interrupted = false;
        while (true) {
            try {
                latch.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** A declared service interface, and an implementation with more public methods than it declares. */
    public interface Api {
        long twice(long x);
    }

    public static class Base {
        public String inherited() {
            return "inherited";
        }
    }

    public static final class ApiImpl extends Base implements Api {
        @Override
        public long twice(long x) {
            return 2 * x;
        }

        public String secret() {
            return "secret";
        }

        @Override
        public String toString() {
            return "impl";
        }
    }

    /** A service registered under no interface: its own declared methods only. */
    public static final class Plain extends Base {
        public long one() {
            return 1;
        }

        @Override
        public int hashCode() {
            return 7;
        }

        @Override
        public boolean equals(Object o) {
            return o == this;
        }
    }

    /** What the host calls in the guest. */
    public interface Calc {
        long add(long a, long b);

        CompletableFuture<Object> slow(long millis);
    }

    private PolicyService policy;
    private final Files files = new Files();
    private final Blocker blocker = new Blocker();
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
                allow out blk.*
                allow out api.*
                allow out plain.*
                allow out secret.* caller=peer:*
                allow out rated.* rate=3/m
                allow in  calc.*
                """);
        policy.updated("m1", config);
        gemini = new GeminiImpl(policy, Map.of("echo", new Echo(), "files", files, "vm", new Echo(), "blk", blocker,
                "api", new ApiImpl(), "plain", new Plain(), "secret", new Echo(), "rated", new Echo()), Map.of("vm", Set.of("*")));
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
        assertEquals("unauthenticated", audit.get(audit.size() - 1).request().caller(), "no VM: the HELLO name is no identity");
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
        raw[1].inject(HexFormat.of().parseHex("06010000000000000700000000000000")); // CANCEL before HELLO
        assertEquals("ERROR id=7 code=3 message=\"say HELLO first\"", SessionEdgeTest.next(raw[1]));
        raw[1].inject(Wire.encode(new Wire.Hello(1, 1, "raw", new byte[0])));
        assertTrue(SessionEdgeTest.next(raw[1]).startsWith("WELCOME"));
        raw[1].inject(HexFormat.of().parseHex("040100000000000009000000000000000102")); // bool 2
        assertEquals("ERROR id=9 code=1 message=\"bool value 2 (must be 0 or 1)\"", SessionEdgeTest.next(raw[1]));
        raw[1].inject(new byte[] {1, 2, 3});
        assertTrue(SessionEdgeTest.next(raw[1]).startsWith("ERROR id=0 code=1"));
        raw[1].inject(Wire.encode(new Wire.Call(5, "echo", "add", List.of(), List.of(1L, 2L))));
        assertEquals("RETURN id=5 value=i64:3", SessionEdgeTest.next(raw[1]));
        assertTrue(s.isOpen());
        s.close("done");
    }

    @Test
    void closingTheSessionFailsOutstandingCallsAndRevokesTokens() throws Exception {
        CapabilityToken t = (CapabilityToken) guest.call("files", "open", T, "a", 60_000L);
        CapabilityToken u = (CapabilityToken) guest.call("files", "open", T, "b", 60_000L);
        List<TokenInfo> live = host.tokens(); // captured before the close: what it must revoke
        assertEquals(Set.of(t, u), Set.copyOf(live.stream().map(TokenInfo::token).toList()));
        assertTrue(live.stream().noneMatch(TokenInfo::revoked));
        CompletableFuture<Object> late = guest.callAsync("files", "readLater", List.of(t), T);
        assertTrue(files.holding.await(5, TimeUnit.SECONDS), "a call holding the token runs across the close");
        CompletableFuture<Object> f = host.callAsync("calc", "slow", List.of(), T, 10_000L);
        assertTrue(slowStarted.await(5, TimeUnit.SECONDS));
        host.close("operator closed it");
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(1, TimeUnit.SECONDS));
        GeminiException g = (GeminiException) e.getCause();
        assertEquals(ErrorCode.CLOSED, g.code());
        assertTrue(g.getMessage().contains("operator closed it"), g.getMessage());
        files.later.countDown();
        long until = System.nanoTime() + 5_000_000_000L;
        while (files.lateOutcome.get() == null && System.nanoTime() < until) {
            Thread.sleep(5);
        }
        GeminiException refused = assertInstanceOf(GeminiException.class, files.lateOutcome.get(),
                "the token a running call holds is refused once its session closed");
        assertEquals(ErrorCode.TOKEN, refused.code());
        for (TokenInfo i : live) {
            assertFalse(host.revoke(i.token()), "no live token " + i.token() + " is left to revoke");
            assertTrue(gemini.allTokens().stream().noneMatch(x -> x.token().equals(i.token())), "token " + i.token() + " is gone");
        }
        assertTrue(host.tokens().isEmpty());
        assertFalse(gemini.sessions().contains(host));
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (guest.isOpen() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertFalse(guest.isOpen(), "the peer got CLOSE");
        assertEquals(ErrorCode.CLOSED, code(() -> guest.call("echo", "add", T, 1L, 2L)));
        assertTrue(late.isCompletedExceptionally(), "the running call's caller learnt of the close, not of a result");
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

    /** Platform threads of this JVM now. */
    private static int threads() {
        return ManagementFactory.getThreadMXBean().getThreadCount();
    }

    /**
     * CALL then CANCEL, over and over, against a service that ignores the interrupt: a cancelled call
     * keeps its slot until its worker has finished, so no more than MAX_INCOMING ever run.
     */
    @Test
    void callAndCancelInALoopCannotExceedTheInFlightBound() throws Exception {
        int before = threads();
        int peak = before;
        int busy = 0;
        for (int i = 0; i < 4 * Session.MAX_INCOMING; i++) {
            int started = blocker.started.get();
            CompletableFuture<Object> f = guest.callAsync("blk", "hold", List.of(), T);
            long until = System.nanoTime() + 2_000_000_000L;
            while (blocker.started.get() == started && !f.isDone() && System.nanoTime() < until) {
                Thread.onSpinWait();
            }
            if (f.isDone()) {
                ExecutionException e = assertThrows(ExecutionException.class, f::get);
                assertEquals(ErrorCode.BUSY, ((GeminiException) e.getCause()).code(), e.getCause().getMessage());
                busy++;
            } else {
                assertTrue(f.cancel(true));
            }
            peak = Math.max(peak, threads());
            assertTrue(host.outstanding() <= Session.MAX_INCOMING, "outstanding " + host.outstanding());
        }
        assertEquals(Session.MAX_INCOMING, blocker.most.get(), "the service ran at most MAX_INCOMING calls at once");
        assertEquals(Session.MAX_INCOMING, blocker.started.get(), "a call beyond the bound never started");
        assertEquals(3 * Session.MAX_INCOMING, busy, "every call beyond the bound got BUSY while the cancelled ones still ran");
        blocker.release.countDown();
        long until = System.nanoTime() + 5_000_000_000L;
        while (host.outstanding() > 0 && System.nanoTime() < until) {
            Thread.sleep(5);
        }
        assertEquals(0, host.outstanding(), "each slot is freed when its worker ends");
        assertEquals(3L, guest.call("echo", "add", T, 1L, 2L));
        int after = threads();
        System.out.println("CALL+CANCEL x" + 4 * Session.MAX_INCOMING + ": platform threads " + before + " -> peak " + peak
                + " -> " + after + "; service concurrency at most " + blocker.most.get() + ", BUSY " + busy);
        assertTrue(peak - before < 16, "workers are virtual threads: platform threads " + before + " -> " + peak);
    }

    /** A policy that holds calls to "gated" until released, as a slow check would. */
    private record Gate(CallPolicy delegate, CountDownLatch entered, CountDownLatch open) implements CallPolicy {
        @Override
        public Decision check(CallRequest request) {
            if (request.service().equals("gated")) {
                entered.countDown();
                awaitUninterruptibly(open);
            }
            return delegate.check(request);
        }

        @Override
        public Decision explain(CallRequest request) {
            return delegate.explain(request);
        }

        @Override
        public List<AuditEntry> audit(int max) {
            return delegate.audit(max);
        }

        @Override
        public Map<String, String> manifests() {
            return delegate.manifests();
        }
    }

    public static final class Counter {
        final AtomicInteger calls = new AtomicInteger();

        public long touch() {
            return calls.incrementAndGet();
        }
    }

    @Test
    void aCallCancelledBeforeItRunsNeverReachesTheService() throws Exception {
        PolicyService p = new PolicyService();
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile gate\nallow out gated.*\n");
        p.updated("g", config);
        Gate gate = new Gate(p, new CountDownLatch(1), new CountDownLatch(1));
        Counter counter = new Counter();
        GeminiImpl g = new GeminiImpl(gate, Map.of("gated", counter), Map.of());
        try {
            LoopbackTransport[] w = LoopbackTransport.pair();
            GeminiSession h = g.openSession(w[0], "gate", null);
            Session c = g.client(w[1], new PeerHandler(), "gate-guest");
            CompletableFuture<Object> f = c.callAsync("gated", "touch", List.of(), T);
            assertTrue(gate.entered().await(5, TimeUnit.SECONDS));
            assertTrue(f.cancel(true));
            Thread.sleep(200); // the host's poller takes the CANCEL
            gate.open().countDown();
            long until = System.nanoTime() + 5_000_000_000L;
            while (h.outstanding() > 0 && System.nanoTime() < until) {
                Thread.sleep(5);
            }
            assertEquals(0, h.outstanding());
            assertEquals(0, counter.calls.get(), "the cancelled call never invoked the service");
            assertEquals(1L, c.call("gated", "touch", T), "an uncancelled call does");
            c.close("done");
        } finally {
            g.deactivate();
        }
    }

    /** A transport whose sends can be refused, as a ring the peer stopped draining. */
    private static final class Stalling implements Transport {
        final Transport inner;
        volatile boolean full;

        Stalling(Transport inner) {
            this.inner = inner;
        }

        @Override
        public boolean send(byte[] frame, int length) {
            return !full && inner.send(frame, length);
        }

        @Override
        public int receive(byte[] buffer) {
            return inner.receive(buffer);
        }

        @Override
        public int maxFrame() {
            return inner.maxFrame();
        }

        @Override
        public void await(long nanos) {
            inner.await(nanos);
        }

        @Override
        public String peerGone() {
            return inner.peerGone();
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    @Test
    void aFullTransportFailsTheSendAtItsDeadlineWithoutSpinningAndTheTimeoutCoversIt() throws Exception {
        LoopbackTransport[] w = LoopbackTransport.pair();
        Stalling stalling = new Stalling(w[0]);
        GeminiSession h = gemini.openSession(stalling, "test", null);
        Session c = gemini.client(w[1], new PeerHandler().export("calc", "add", (a, x) -> 1L), "stalled");
        assertEquals(1L, h.call("calc", "add", T));
        stalling.full = true;
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        long cpu = mx.getCurrentThreadCpuTime();
        long start = System.nanoTime();
        CompletableFuture<Object> f = h.callAsync("calc", "add", List.of(), Duration.ofSeconds(30));
        long waited = System.nanoTime() - start;
        long spent = mx.getCurrentThreadCpuTime() - cpu;
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(0, TimeUnit.SECONDS));
        GeminiException busy = (GeminiException) e.getCause();
        assertEquals(ErrorCode.BUSY, busy.code(), busy.getMessage());
        assertTrue(busy.getMessage().contains("stopped reading"), busy.getMessage());
        assertTrue(waited >= Session.SEND_GIVE_UP_NANOS * 9 / 10 && waited < 3 * Session.SEND_GIVE_UP_NANOS, "waited " + waited);
        System.out.println("a send to a full transport: gave up after " + waited / 1_000_000 + " ms, " + spent / 1_000_000
                + " ms of CPU");
        assertTrue(spent < Session.SEND_GIVE_UP_NANOS / 5, "the sender parks, it does not spin: " + spent / 1_000_000 + " ms of CPU");

        start = System.nanoTime();
        CompletableFuture<Object> quick = h.callAsync("calc", "add", List.of(), Duration.ofMillis(200));
        e = assertThrows(ExecutionException.class, () -> quick.get(5, TimeUnit.SECONDS));
        assertEquals(ErrorCode.TIMEOUT, ((GeminiException) e.getCause()).code(), e.getCause().getMessage());
        assertTrue(System.nanoTime() - start < 800_000_000L, "the call's timeout covers its send");

        start = System.nanoTime();
        h.close("stalled peer");
        assertTrue(System.nanoTime() - start < 200_000_000L, "close does not wait on the peer");
        c.close("done");
    }

    @Test
    void anUnboundPeerCannotClaimAPeerIdentity() {
        GeminiException e = assertThrows(GeminiException.class, () -> guest.call("secret", "add", T, 1L, 2L));
        assertEquals(ErrorCode.DENIED, e.code(), "'caller=peer:*' does not match a name said in HELLO");
        assertEquals("unauthenticated", policy.audit(1).get(0).request().caller());
    }

    @Test
    void onlyTheDeclaredInterfaceIsCallable() {
        assertEquals(8L, guest.call("api", "twice", T, 4L));
        for (String m : List.of("secret", "inherited", "toString", "hashCode", "getClass", "notify", "wait")) {
            assertEquals(ErrorCode.NO_METHOD, code(() -> guest.call("api", m, T)), "api." + m);
        }
        assertEquals(1L, guest.call("plain", "one", T));
        for (String m : List.of("inherited", "hashCode", "equals", "toString", "getClass")) {
            GeminiException x = assertThrows(GeminiException.class, () -> guest.call("plain", m, T));
            assertEquals(ErrorCode.NO_METHOD, x.code(), "plain." + m + ": " + x.getMessage());
        }
        assertEquals(List.of("twice"), gemini.services().get("api"));
        assertEquals(List.of("one"), gemini.services().get("plain"));
    }

    @Test
    void reconnectingDoesNotResetTheRateWindow() {
        LoopbackTransport[] w = LoopbackTransport.pair();
        gemini.openSession(w[0], "test", "vm-rated");
        Session first = gemini.client(w[1], new PeerHandler(), "rated");
        for (int i = 0; i < 3; i++) {
            assertEquals(3L, first.call("rated", "add", T, 1L, 2L));
        }
        assertEquals(ErrorCode.RATE_LIMITED, code(() -> first.call("rated", "add", T, 1L, 2L)));
        first.close("reconnect");
        long until = System.nanoTime() + 5_000_000_000L;
        while (gemini.sessionOfVm("vm-rated").isPresent() && System.nanoTime() < until) {
            Thread.onSpinWait();
        }
        LoopbackTransport[] w2 = LoopbackTransport.pair();
        gemini.openSession(w2[0], "test", "vm-rated");
        Session second = gemini.client(w2[1], new PeerHandler(), "rated");
        assertEquals(ErrorCode.RATE_LIMITED, code(() -> second.call("rated", "add", T, 1L, 2L)),
                "a new session of the same VM continues the window");
        second.close("done");
    }

    @Test
    void aSessionHoldsABoundedNumberOfTokens() {
        List<CapabilityToken> minted = new java.util.ArrayList<>();
        for (int i = 0; i < Tokens.MAX_PER_SESSION; i++) {
            minted.add(host.grant("files", GeminiSession.READ, Duration.ofMinutes(1)));
        }
        GeminiException full = assertThrows(GeminiException.class, () -> host.grant("files", GeminiSession.READ, Duration.ofMinutes(1)));
        assertEquals(ErrorCode.BUSY, full.code(), full.getMessage());
        assertEquals(Tokens.MAX_PER_SESSION, host.tokens().size());
        assertTrue(host.revoke(minted.getFirst()));
        host.grant("files", GeminiSession.READ, Duration.ofMinutes(1)); // the revoked one made room
        assertEquals(Tokens.MAX_PER_SESSION, host.tokens().size());
        assertTrue(host.tokens().stream().noneMatch(t -> t.token().equals(minted.getFirst())));
        host.close("done");
        assertEquals(List.of(), gemini.allTokens(), "a closed session's tokens are gone");
    }
}
