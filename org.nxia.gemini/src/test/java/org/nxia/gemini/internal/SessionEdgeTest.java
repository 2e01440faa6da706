package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.CallContext;
import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.Marshalling;
import org.nxia.gemini.api.Transport;
import org.nxia.lsm.policy.internal.PolicyService;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.Ref;
import org.nxia.portal.internal.Structures;

/**
 * A session's handling of what the peer sends at the edges (HELLO versions and auth, duplicate
 * ids, CANCEL, references by argument index), of its own sends (deadlines, interrupts, frame
 * limits, marshalling by reference), and of the futures and proxies it hands out.
 */
class SessionEdgeTest {
    static final Duration T = Duration.ofSeconds(5);

    /** A host service that reports what its call context says. */
    public static final class Ctx {
        public String where(CallContext c) {
            return c.service() + "." + c.method() + " " + c.tokens().size();
        }

        public String need(CallContext c) {
            return c.require(GeminiSession.READ).token().toString();
        }
    }

    private final SessionTest.Blocker blocker = new SessionTest.Blocker();
    private final CountDownLatch slowStarted = new CountDownLatch(1);
    private final CountDownLatch slowInterrupted = new CountDownLatch(1);
    private GeminiImpl gemini;
    private final List<Session> clients = new ArrayList<>();

    @BeforeEach
    void open() throws Exception {
        PolicyService policy = new PolicyService();
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile edge\nallow out echo.*\nallow out blk.*\nallow out ctx.*\nallow in calc.*\n");
        policy.updated("m", config);
        gemini = new GeminiImpl(policy, Map.of("echo", new SessionTest.Echo(), "blk", blocker, "ctx", new Ctx()), Map.of());
    }

    @AfterEach
    void close() {
        blocker.release.countDown();
        clients.forEach(c -> c.close("test over"));
        gemini.deactivate();
    }

    private PeerHandler calc() {
        return new PeerHandler()
                .export("calc", "how", (a, c) -> a.get(a.size() - 1) instanceof Ref ? "ref" : "copy")
                .export("calc", "len", (a, c) -> (long) ((byte[]) a.get(0)).length)
                .export("calc", "fail", (a, c) -> {
                    throw new IllegalStateException("no");
                })
                .export("calc", "slow", (a, c) -> {
                    slowStarted.countDown();
                    try {
                        Thread.sleep((Long) a.get(0));
                    } catch (InterruptedException e) {
                        slowInterrupted.countDown();
                        throw e;
                    }
                    return 1L;
                });
    }

    private Session client(Transport t) {
        Session c = gemini.client(t, calc(), "edge-guest");
        clients.add(c);
        return c;
    }

    /** The next frame {@code t} receives within 5 s, as canonical text. */
    static String next(Transport t) {
        byte[] buf = new byte[t.maxFrame()];
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
    void helloIsCheckedForVersionAuthAndRepetition() {
        LoopbackTransport[] raw = LoopbackTransport.pair();
        GeminiSession s = gemini.openSession(raw[0], "edge", null);
        raw[1].inject(new byte[0]);
        assertEquals("ERROR id=0 code=1 message=\"frame of 0 bytes is shorter than the 16-byte header\"", next(raw[1]));
        raw[1].inject(Wire.encode(new Wire.Hello(2, 3, "future", new byte[0])));
        assertEquals("ERROR id=0 code=2 message=\"this host speaks version 1 only\"", next(raw[1]));
        raw[1].inject(Wire.encode(new Wire.Hello(0, 0, "past", new byte[0])));
        assertEquals("ERROR id=0 code=2 message=\"this host speaks version 1 only\"", next(raw[1]));
        raw[1].inject(Wire.encode(new Wire.Hello(1, 1, "claims", new byte[] {1})));
        assertEquals("ERROR id=0 code=3 message=\"this transport takes no auth bytes: the session is bound to its VM\"", next(raw[1]));
        assertEquals("", s.peer(), "no HELLO was accepted yet");
        raw[1].inject(Wire.encode(new Wire.Hello(0, 2, "", new byte[0])));
        assertEquals("WELCOME id=0 version=1 max_frame=" + LoopbackTransport.MAX_FRAME + " session=" + s.id(), next(raw[1]));
        assertEquals("anonymous", s.peer());
        raw[1].inject(Wire.encode(new Wire.Hello(1, 1, "again", new byte[0])));
        assertEquals("ERROR id=0 code=1 message=\"unexpected HELLO\"", next(raw[1]));
        assertEquals("anonymous", s.peer());
        s.close("done");
    }

    @Test
    void callIdsAreUniqueInFlightAndCancelIsAnswered() {
        LoopbackTransport[] raw = LoopbackTransport.pair();
        GeminiSession s = gemini.openSession(raw[0], "edge", null);
        raw[1].inject(Wire.encode(new Wire.Hello(1, 1, "raw", new byte[0])));
        assertTrue(next(raw[1]).startsWith("WELCOME"));
        raw[1].inject(Wire.encode(new Wire.Call(5, "blk", "hold", List.of(), List.of())));
        long until = System.nanoTime() + 5_000_000_000L;
        while (blocker.started.get() == 0 && System.nanoTime() < until) {
            Thread.onSpinWait();
        }
        assertEquals(1, s.outstanding());
        raw[1].inject(Wire.encode(new Wire.Call(5, "echo", "add", List.of(), List.of(1L, 2L))));
        assertEquals("ERROR id=5 code=1 message=\"call id 5 is already in flight\"", next(raw[1]));
        raw[1].inject(Wire.encode(new Wire.Cancel(99))); // nothing in flight by that id: no answer
        raw[1].inject(Wire.encode(new Wire.Cancel(5)));
        assertEquals("ERROR id=5 code=10 message=\"cancelled by the caller\"", next(raw[1]));
        raw[1].inject(Wire.encode(new Wire.Call(7, "echo", "add", List.of(), List.of(1L, new Ref(192, 8, 0)))));
        assertEquals("ERROR id=7 code=15 message=\"echo.add argument 2 is a reference, but session " + s.id()
                + " has no reference region\"", next(raw[1]));
        s.close("done");
    }

    @Test
    void aServedCallKnowsItsNameAndTokens() throws Exception {
        LoopbackTransport[] w = LoopbackTransport.pair();
        GeminiSession host = gemini.openSession(w[0], "edge", null);
        Session guest = client(w[1]);
        assertEquals("ctx.where 0", guest.call("ctx", "where", T));
        CapabilityToken rw = host.grant("ctx", GeminiSession.READ | GeminiSession.WRITE, Duration.ofMinutes(1));
        CapabilityToken other = host.grant("echo", GeminiSession.READ, Duration.ofMinutes(1));
        assertEquals("ctx.where 2", guest.callAsync("ctx", "where", List.of(rw, other), T).get());
        assertEquals(rw.toString(), guest.callAsync("ctx", "need", List.of(other, rw), T).get(), "a token with more rights will do");
        ExecutionException e = assertThrows(ExecutionException.class, () -> guest.callAsync("ctx", "need", List.of(other), T).get());
        assertEquals(ErrorCode.TOKEN, ((GeminiException) e.getCause()).code(), "a token for another service will not");
    }

    @Test
    void bothEndsCountACallInFlight() throws Exception {
        LoopbackTransport[] w = LoopbackTransport.pair();
        GeminiSession host = gemini.openSession(w[0], "edge", null);
        Session guest = client(w[1]);
        CompletableFuture<Object> f = host.callAsync("calc", "slow", List.of(), T, 10_000L);
        assertTrue(slowStarted.await(5, TimeUnit.SECONDS));
        assertEquals(1, host.outstanding(), "outgoing");
        assertEquals(1, guest.outstanding(), "incoming");
        assertTrue(f.cancel(true));
        assertTrue(slowInterrupted.await(5, TimeUnit.SECONDS));
    }

    /** The future a call returns is a CompletableFuture in every respect: completing it twice does nothing. */
    @Test
    void theCallsFutureCompletesOnce() throws Exception {
        LoopbackTransport[] w = LoopbackTransport.pair();
        GeminiSession host = gemini.openSession(w[0], "edge", null);
        client(w[1]);
        CompletableFuture<Object> f = host.callAsync("calc", "slow", List.of(), T, 10_000L);
        assertTrue(f.complete("mine"));
        assertFalse(f.complete("again"));
        assertFalse(f.completeExceptionally(new IllegalStateException()));
        assertFalse(f.cancel(true), "a completed call cannot be cancelled");
        assertEquals("mine", f.get());
        CompletableFuture<Object> g = host.callAsync("calc", "slow", List.of(), T, 10_000L);
        assertTrue(g.completeExceptionally(new IllegalStateException("x")));
        assertFalse(g.complete("late"));
        assertTrue(g.isCompletedExceptionally());
    }

    public interface Calc {
        long len(byte[] b);
    }

    @Test
    void aProxyAnswersObjectsMethodsItself() {
        LoopbackTransport[] w = LoopbackTransport.pair();
        GeminiSession host = gemini.openSession(w[0], "edge", null);
        client(w[1]);
        Calc calc = host.proxy(Calc.class, "calc", T);
        Calc other = host.proxy(Calc.class, "calc", T);
        assertEquals(3L, calc.len(new byte[3]));
        assertEquals("gemini proxy Calc for calc in session " + host.id(), calc.toString());
        assertEquals(System.identityHashCode(calc), calc.hashCode());
        assertTrue(calc.equals(calc));
        assertFalse(calc.equals(other));
        assertThrows(IllegalArgumentException.class, () -> host.proxy(SessionTest.Echo.class, "echo", T));
    }

    @Test
    void interruptsAreKeptAndCancelTheCall() throws Exception {
        LoopbackTransport[] w = LoopbackTransport.pair();
        GeminiSession host = gemini.openSession(w[0], "edge", null);
        client(w[1]);
        assertFalse(((Session) host).awaitClosed(Duration.ofMillis(10)), "open");

        Thread.currentThread().interrupt();
        CompletableFuture<Object> f = host.callAsync("calc", "len", List.of(), T, (Object) new byte[1]);
        assertTrue(Thread.interrupted(), "the interrupt is kept");
        ExecutionException e = assertThrows(ExecutionException.class, f::get);
        assertEquals("interrupted while waiting to send", ((GeminiException) e.getCause()).reason());

        AtomicReference<Object> outcome = new AtomicReference<>();
        Thread caller = Thread.ofPlatform().start(() -> {
            try {
                outcome.set(host.call("calc", "slow", T, 10_000L));
            } catch (GeminiException x) {
                outcome.set(x.code() + " " + x.reason() + " " + Thread.currentThread().isInterrupted());
            }
        });
        assertTrue(slowStarted.await(5, TimeUnit.SECONDS));
        caller.interrupt();
        caller.join(5000);
        assertEquals("CANCELLED interrupted true", outcome.get());
        assertTrue(slowInterrupted.await(5, TimeUnit.SECONDS), "the peer got CANCEL");

        Thread.currentThread().interrupt();
        host.close("closed while interrupted");
        assertTrue(Thread.interrupted(), "close keeps the interrupt");
        assertTrue(((Session) host).awaitClosed(Duration.ofMillis(10)));
    }

    /** Wraps a transport: sends refused until {@code openAt}, a smaller frame limit, receive failing on demand. */
    private static final class Shaped implements Transport {
        final Transport inner;
        final int maxFrame;
        volatile long openAt;
        volatile boolean full;
        volatile RuntimeException failure;

        Shaped(Transport inner, int maxFrame, long delayNanos) {
            this.inner = inner;
            this.maxFrame = maxFrame;
            this.openAt = System.nanoTime() + delayNanos;
        }

        @Override
        public boolean send(byte[] frame, int length) {
            return !full && System.nanoTime() - openAt >= 0 && inner.send(frame, length);
        }

        @Override
        public int receive(byte[] buffer) {
            RuntimeException f = failure;
            if (f != null) {
                throw f;
            }
            return inner.receive(buffer);
        }

        @Override
        public int maxFrame() {
            return maxFrame;
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

    /** HELLO and WELCOME wait for a transport that has no room yet, as long as their deadlines allow. */
    @Test
    void sendsWaitForRoomUntilTheirDeadline() {
        LoopbackTransport[] w = LoopbackTransport.pair();
        GeminiSession host = gemini.openSession(new Shaped(w[0], LoopbackTransport.MAX_FRAME, 300_000_000L), "edge", null);
        Session guest = client(new Shaped(w[1], LoopbackTransport.MAX_FRAME, 100_000_000L));
        assertEquals("edge-guest", host.peer());
        assertEquals(3L, guest.call("echo", "add", T, 1L, 2L));
    }

    @Test
    void aStalledPeerIsReportedWithTheTimeItTookNoFrame() {
        LoopbackTransport[] w = LoopbackTransport.pair();
        Shaped shaped = new Shaped(w[0], LoopbackTransport.MAX_FRAME, 0);
        GeminiSession host = gemini.openSession(shaped, "edge", null);
        client(w[1]);
        shaped.full = true;
        ExecutionException e = assertThrows(ExecutionException.class, () -> host.callAsync("calc", "len", List.of(), T, (Object) new byte[1]).get());
        String why = ((GeminiException) e.getCause()).reason();
        Matcher m = Pattern.compile("session " + host.id() + ": the peer took no frame for (\\d+) ms \\(it stopped reading\\)").matcher(why);
        assertTrue(m.matches(), why);
        long ms = Long.parseLong(m.group(1));
        assertTrue(ms >= 900 && ms < 10_000, why);
    }

    @Test
    void aTransportFailureClosesTheSessionSayingWhat() throws Exception {
        LoopbackTransport[] w = LoopbackTransport.pair();
        Shaped shaped = new Shaped(w[0], LoopbackTransport.MAX_FRAME, 0);
        GeminiSession host = gemini.openSession(shaped, "edge", null);
        client(w[1]);
        shaped.failure = new IllegalStateException("boom");
        assertTrue(((Session) host).awaitClosed(T));
        assertEquals("transport failed: java.lang.IllegalStateException: boom", host.closeReason());
    }

    @Test
    void aFrameOfExactlyTheTransportsLimitGoes() {
        LoopbackTransport[] w = LoopbackTransport.pair();
        GeminiSession host = gemini.openSession(new Shaped(w[0], 600, 0), "edge", null);
        client(w[1]);
        // 16 header + 8 "calc" + 7 "len" + 1 + 2 + 5 + n
        assertEquals(561L, host.call("calc", "len", T, (Object) new byte[561]));
        GeminiException e = assertThrows(GeminiException.class, () -> host.call("calc", "len", T, (Object) new byte[562]));
        assertEquals("a frame of 601 bytes exceeds the transport's 600-byte limit", e.reason());
    }

    /** A client whose server never answers, or answers with an error, or with another version. */
    @Test
    void aClientStartFailsAsItsServerAnswers() throws Exception {
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
        try {
            LoopbackTransport[] w = LoopbackTransport.pair();
            GeminiException e = assertThrows(GeminiException.class, () -> new Session(0, w[1], "", null, new PeerHandler(),
                    new Tokens(Clock.systemUTC()), false, timer, 1 << 14).start("lonely", Duration.ofMillis(200)));
            assertEquals(ErrorCode.TIMEOUT, e.code());
            assertEquals("no WELCOME within 200 ms", e.reason());
            assertEquals("HELLO id=0 version=1..1 peer=\"lonely\" auth=", next(w[0]));
            assertEquals("CLOSE id=0 reason=\"no WELCOME within 200 ms\"", next(w[0]), "it closed the session");

            assertEquals("AUTH go away", startAgainst(timer, new Wire.Error(0, ErrorCode.AUTH, "go away"), null));
            assertEquals("VERSION server chose version 2", startAgainst(timer, new Wire.Welcome(2, 4096, 1), null));
            assertEquals("started", startAgainst(timer, new Wire.Error(5, ErrorCode.FAILED, "not about the HELLO"),
                    new Wire.Welcome(1, 4096, 1)));

            LoopbackTransport[] x = LoopbackTransport.pair();
            AtomicReference<String> outcome = new AtomicReference<>();
            Thread t = Thread.ofPlatform().start(() -> {
                try {
                    new Session(0, x[1], "", null, new PeerHandler(), new Tokens(Clock.systemUTC()), false, timer, 1 << 14)
                            .start("waiting", T);
                    outcome.set("started");
                } catch (GeminiException g) {
                    outcome.set(g.code() + " " + g.reason() + " " + Thread.currentThread().isInterrupted());
                }
            });
            assertTrue(next(x[0]).startsWith("HELLO"));
            t.interrupt();
            t.join(5000);
            assertEquals("CANCELLED interrupted while waiting for WELCOME true", outcome.get());
        } finally {
            timer.shutdownNow();
        }
    }

    /** Starts a client, answers its HELLO with {@code first} (then {@code second}); how the start ended. */
    private static String startAgainst(ScheduledExecutorService timer, Wire.Frame first, Wire.Frame second) throws Exception {
        LoopbackTransport[] w = LoopbackTransport.pair();
        Session c = new Session(0, w[1], "", null, new PeerHandler(), new Tokens(Clock.systemUTC()), false, timer, 1 << 14);
        CompletableFuture<String> started = CompletableFuture.supplyAsync(() -> {
            try {
                c.start("client", Duration.ofSeconds(3));
                return "started";
            } catch (GeminiException g) {
                return g.code() + " " + g.reason();
            }
        });
        assertTrue(next(w[0]).startsWith("HELLO"));
        long t0 = System.nanoTime();
        w[0].inject(Wire.encode(first));
        if (second != null) {
            w[0].inject(Wire.encode(second));
        }
        String outcome = started.get(5, TimeUnit.SECONDS);
        assertTrue(System.nanoTime() - t0 < 2_000_000_000L, "answered, not timed out: " + outcome);
        c.close("done");
        return outcome;
    }

    /** Marshalling by reference: which arguments go, what the messages say, and that every block lent comes back. */
    @Test
    void referencesAreLentAndAllReturned() throws Exception {
        try (Arena memory = Arena.ofShared()) {
            LoopbackTransport[] w = LoopbackTransport.pair();
            GeminiSession host = gemini.openSession(new Shaped(w[0], 8192, 0), "edge", null);
            Session guest = client(w[1]);
            GeminiException none = assertThrows(GeminiException.class,
                    () -> host.call("calc", "how", Marshalling.REFERENCE, T, 1L, new byte[8]));
            assertEquals(ErrorCode.BAD_REF, none.code());
            assertTrue(none.reason().startsWith("session " + host.id() + " has no reference region for argument 2 "), none.reason());

            var region = memory.allocate(4 * 8192 + 4096, 64);
            PortalArena arena = new Structures().formatArena(region, 8192);
            host.bindReferenceRegion("refs", arena);
            guest.bindReferenceRegion("refs", new Structures().attachArena(region));
            assertEquals(java.util.Optional.of("refs"), host.referenceRegion());
            // AUTO: a copy that would leave under 1 KiB of the 8 KiB frame for the rest goes by reference
            assertEquals("copy", host.call("calc", "how", T, (Object) new byte[8192 - 1024]));
            assertEquals("ref", host.call("calc", "how", T, (Object) new byte[8192 - 1024 + 1]));

            GeminiException big = assertThrows(GeminiException.class,
                    () -> host.call("calc", "how", Marshalling.REFERENCE, T, new byte[100], new byte[8193]));
            assertTrue(big.reason().startsWith("argument 2 (8193 bytes) cannot go by reference: "), big.reason());
            assertAllBlocksFree(arena, "the first argument's block came back when the second could not go");

            assertEquals(ErrorCode.FAILED, assertThrows(GeminiException.class,
                    () -> host.call("calc", "fail", Marshalling.REFERENCE, T, (Object) new byte[100])).code());
            assertAllBlocksFree(arena, "a failed call's block came back");

            byte[] data = new byte[100];
            Object[] args = {data};
            assertEquals("ref", host.call("calc", "how", Marshalling.REFERENCE, T, args));
            assertSame(data, args[0], "the caller's array is not changed");
            assertAllBlocksFree(arena, "a returned call's block came back");
        }
    }

    private static void assertAllBlocksFree(PortalArena arena, String why) {
        List<Ref> taken = new ArrayList<>();
        try {
            for (int i = 0; i < 4; i++) {
                taken.add(arena.allocate(8192));
            }
        } catch (RuntimeException e) {
            throw new AssertionError(why + ": only " + taken.size() + " of 4 blocks free", e);
        } finally {
            taken.forEach(arena::free);
        }
    }

    /** An idle session's poller sleeps on its transport: it does not spin a core. */
    @Test
    void anIdlePollerSleeps() throws Exception {
        LoopbackTransport[] w = LoopbackTransport.pair();
        GeminiSession host = gemini.openSession(w[0], "edge", null);
        client(w[1]);
        Thread poller = Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().equals("gemini-session-" + host.id())).findFirst().orElseThrow();
        var mx = ManagementFactory.getThreadMXBean();
        Thread.sleep(50);
        long cpu = mx.getThreadCpuTime(poller.threadId());
        long t0 = System.nanoTime();
        Thread.sleep(500);
        long used = mx.getThreadCpuTime(poller.threadId()) - cpu;
        long wall = System.nanoTime() - t0;
        assertNotEquals(-1, cpu);
        assertTrue(used < wall / 5, "an idle poller used " + used / 1_000_000 + " ms of CPU in " + wall / 1_000_000 + " ms");
    }
}
