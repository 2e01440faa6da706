package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.CallContext;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.lsm.policy.api.GuestProcess;
import org.nxia.lsm.policy.internal.PolicyService;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Ref;
import org.nxia.portal.internal.SpscRing;
import org.nxia.portal.internal.Structures;

/**
 * A System VM process's ring session (docs/gemini-protocol.md, "Ring sessions"), on an in-memory
 * region: asked for through a broker session, it runs the process's calls under its identity;
 * every span the process names is checked against the region; a VM holds a bounded number; the
 * session ends with the process, at its lifetime, and when the VM stops mapping the region.
 */
class SystemVmRingsTest {

    /** The host service: says who called, and reads a by-reference argument in place. */
    public static final class Text {
        final AtomicReference<GuestProcess> caller = new AtomicReference<>();

        public String upper(CallContext c, String s) {
            caller.set(c.process().orElse(null));
            return s.toUpperCase(java.util.Locale.ROOT);
        }

        public long sum(MemorySegment data) {
            long s = 0;
            for (long i = 0; i < data.byteSize(); i++) {
                s += data.get(ValueLayout.JAVA_BYTE, i) & 0xff;
            }
            return s;
        }
    }

    static final Duration T = Duration.ofSeconds(5);
    static final long REGION = 8L << 20;
    static final int CAP = 4096;
    /** One session's layout: control block, then g2h, then h2g (as libnxia lays them out). */
    static final long RING = SpscRing.requiredSize(CAP);
    static final long SLOT = 16 << 10;
    static final GuestProcess P1000 = new GuestProcess(1000, 100, 42, "/usr/bin/nxia-call");

    private final PolicyService policy = new PolicyService();
    private final Text text = new Text();
    private final Arena arena = Arena.ofShared();
    private final MemorySegment region = arena.allocate(REGION, 4096);
    private final AtomicInteger rings = new AtomicInteger();
    private volatile boolean mapped = true;
    private final List<Session> clients = new ArrayList<>();
    private GeminiImpl gemini;
    private SystemVmRings service;
    private LoopbackTransport agent;
    private Session broker;
    private long nextId = 1;

    @BeforeEach
    void open() throws Exception {
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile sys\nallow out gemini.ring\nallow out text.* caller=uid:1000\n");
        policy.updated("m", config);
        gemini = new GeminiImpl(policy, Map.of("text", text), Map.of());
        service = new SystemVmRings(gemini, new Structures(), new SystemVmRings.Regions() {
            @Override
            public MemorySegment mapped(String vmId, String name) {
                return vmId.equals("vm-1") && name.equals("rings") && mapped ? region : null;
            }

            @Override
            public void ring(String vmId, String name) {
                rings.incrementAndGet();
            }
        });
        LoopbackTransport[] raw = LoopbackTransport.pair();
        broker = gemini.openSession(raw[0], "sys", "vm-1", true, () -> { });
        agent = raw[1];
        agent.inject(Wire.encode(new Wire.Hello(1, 1, "agent", new byte[0])));
        assertTrue(SessionEdgeTest.next(agent).startsWith("WELCOME"));
    }

    @AfterEach
    void close() {
        clients.forEach(c -> c.close("test over"));
        gemini.deactivate();
        arena.close();
    }

    /** Asks for a ring session as the broker forwards a process's CALL; returns the broker's call id. */
    private long ask(GuestProcess p, String region, long g2h, long g2hLen, long h2g, long h2gLen, long ctl, long lifetimeMs) {
        long id = nextId++;
        agent.inject(Wire.encode(new Wire.Call(id, "gemini", "ring", List.of(), List.of(region, g2h, g2hLen, h2g, h2gLen, ctl, lifetimeMs), p)));
        return id;
    }

    /** Formats slot {@code k}'s rings as the process does, asks for them and returns the process's end, welcomed. */
    private Session open(int k, GuestProcess p, long lifetimeMs) {
        long base = Portals.LINUX_DAX_OFFSET + k * SLOT;
        region.asSlice(base, 64).fill((byte) 0);
        SpscRing.format(region.asSlice(base + 64, RING), CAP);
        SpscRing.format(region.asSlice(base + 64 + RING, RING), CAP);
        ask(p, "rings", base + 64, RING, base + 64 + RING, RING, base, lifetimeMs);
        RingTransport end = new RingTransport(SpscRing.attach(region.asSlice(base + 64 + RING, RING)),
                SpscRing.attach(region.asSlice(base + 64, RING)), region.asSlice(base, 64), () -> null);
        Session c = gemini.client(end, new PeerHandler(), "process-" + k);
        clients.add(c);
        return c;
    }

    private String refusal(long g2h, long g2hLen, long h2g, long h2gLen, long ctl) {
        ask(P1000, "rings", g2h, g2hLen, h2g, h2gLen, ctl, 60_000);
        String answer = SessionEdgeTest.next(agent);
        assertTrue(answer.startsWith("ERROR id=" + (nextId - 1) + " code=" + ErrorCode.BAD_ARGS.wire()), answer);
        return answer;
    }

    @Test
    void aProcessCallsOverItsRingsUnderItsOwnIdentity() throws Exception {
        Session p = open(0, P1000, 60_000);
        for (int i = 0; i < 200; i++) {
            assertEquals("HI" + i, p.call("text", "upper", T, "hi" + i));
        }
        assertEquals(P1000, text.caller.get(), "the host service sees the process the broker vouched for");
        Session other = open(1, new GuestProcess(0, 0, 43, "/usr/bin/nxia-call"));
        GeminiException denied = assertThrows(GeminiException.class, () -> other.call("text", "upper", T, "x"));
        assertEquals(ErrorCode.DENIED, denied.code(), "the manifest's caller=uid:1000 holds on the ring as through the broker");
        assertTrue(denied.getMessage().contains("uid=0"), denied.getMessage());
        assertEquals(2, service.sessionsOf("vm-1"));
        assertTrue(gemini.sessionOfVm("vm-1").orElseThrow() == broker, "the VM's session stays its broker's");
        assertTrue(new GeminiCommands(gemini).sessions().contains("uid 1000 /usr/bin/nxia-call (200)"),
                "gemini:sessions names the ring session's process");
    }

    private Session open(int k, GuestProcess p) {
        return open(k, p, 60_000);
    }

    @Test
    void theRegionsDoorbellRingsOnlyWhileTheProcessSaysItSleeps() throws Exception {
        Session p = open(0, P1000);
        p.call("text", "upper", T, "awake");
        assertEquals(0, rings.get(), "a polling process is not rung");
        region.set(ValueLayout.JAVA_INT, Portals.LINUX_DAX_OFFSET + RingTransport.GUEST_SLEEPING, 1);
        p.call("text", "upper", T, "asleep");
        // The host rings after it publishes the answer, so the process can read it first: wait.
        long deadline = System.nanoTime() + T.toNanos();
        while (rings.get() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertTrue(rings.get() >= 1, "the answer rang the region's doorbell");
    }

    @Test
    void referencesCrossThroughTheBrokersArena() throws Exception {
        MemorySegment room = arena.allocate(64 << 10, 4096);
        PortalArena refs = new Structures().formatArena(room, 16 << 10);
        broker.bindReferenceRegion("gemini", refs);
        long b = Portals.LINUX_DAX_OFFSET;
        ask(P1000, "gemini", b + 64, RING, b + 64 + RING, RING, b, 1000);
        assertTrue(SessionEdgeTest.next(agent).contains("holds the VM's reference arena"), "no rings over the arena every process shares");
        Session p = open(0, P1000);
        Ref r = refs.allocate(10_000);
        refs.deref(r).fill((byte) 3);
        assertEquals(30_000L, p.call("text", "sum", T, r), "the host reads the process's block in place");
    }

    @Test
    void everySpanIsCheckedAgainstTheRegion() {
        long b = Portals.LINUX_DAX_OFFSET;
        assertTrue(refusal(0, RING, b + 64 + RING, RING, b).contains("past its first 2 MiB"),
                "Linux's first 2 MiB are its own");
        assertTrue(refusal(b + 64, RING, REGION - RING + 64, RING, b).contains("within region rings"), "the h2g ring runs past the end");
        refusal(b + 64, RING, Long.MAX_VALUE - 63, RING, b);
        refusal(b + 64, RING, b + 64 + RING, -RING, b);
        refusal(b + 64, RING, b + 64 + RING, RING, b + 8);
        refusal(b + 64, 64, b + 64 + RING, RING, b);
        refusal(b + 64, (2L << 30), b + 64 + RING, RING, b);
        assertTrue(refusal(b + 64, RING, b + 64 + 64, RING, b).contains("overlap"));
        assertTrue(refusal(b + 64, RING, b + 64 + RING, RING, b).contains("no ring where the process said"),
                "rings nobody formatted are refused by the ring's untrusted-header checks");
        ask(P1000, "other", b + 64, RING, b + 64 + RING, RING, b, 1000);
        assertTrue(SessionEdgeTest.next(agent).contains("does not map region other"));
        ask(P1000, "rings", b + 64, RING, b + 64 + RING, RING, b, 0);
        assertTrue(SessionEdgeTest.next(agent).contains("lifetime 0 ms"));
        ask(null, "rings", b + 64, RING, b + 64 + RING, RING, b, 1000);
        assertTrue(SessionEdgeTest.next(agent).contains("System VM process's"), "a broker's call that names no process gets none");
        assertEquals(0, service.sessionsOf("vm-1"));
    }

    @Test
    void onlyABrokersProcessMayAskAndNoneMayTakeAnothersRings() throws Exception {
        LoopbackTransport[] raw = LoopbackTransport.pair();
        gemini.openSession(raw[0], "sys", "vm-2", false, () -> { });
        raw[1].inject(Wire.encode(new Wire.Hello(1, 1, "micro", new byte[0])));
        SessionEdgeTest.next(raw[1]);
        raw[1].inject(Wire.encode(new Wire.Call(1, "gemini", "ring", List.of(), List.of("rings", 1L, 1L, 1L, 1L, 1L, 1L))));
        assertTrue(SessionEdgeTest.next(raw[1]).startsWith("ERROR id=1 code="), "no process, no ring session");

        open(0, P1000).call("text", "upper", T, "mine");
        long b = Portals.LINUX_DAX_OFFSET;
        assertTrue(refusal(b + 64, RING, b + 64 + RING, RING, b).contains("belong to ring session"),
                "another process cannot have the host serve (and read) a live session's rings");
    }

    @Test
    void aVmHoldsABoundedNumberOfRingSessions() throws Exception {
        for (int k = 0; k < SystemVmRings.MAX_PER_VM; k++) {
            open(k, P1000).call("text", "upper", T, "k" + k);
        }
        long base = Portals.LINUX_DAX_OFFSET + SystemVmRings.MAX_PER_VM * SLOT;
        SpscRing.format(region.asSlice(base + 64, RING), CAP);
        SpscRing.format(region.asSlice(base + 64 + RING, RING), CAP);
        long id = ask(P1000, "rings", base + 64, RING, base + 64 + RING, RING, base, 60_000);
        String busy = SessionEdgeTest.next(agent);
        assertTrue(busy.startsWith("ERROR id=" + id + " code=" + ErrorCode.BUSY.wire()), busy);
        assertEquals(SystemVmRings.MAX_PER_VM, service.sessionsOf("vm-1"));
    }

    @Test
    void theSessionEndsWithItsProcessItsLifetimeAndTheRegion() throws Exception {
        Session p = open(0, P1000);
        p.call("text", "upper", T, "alive");
        long start = System.nanoTime();
        agent.inject(Wire.encode(new Wire.Cancel(1))); // the broker: the process's connection closed
        assertTrue(SessionEdgeTest.next(agent).startsWith("ERROR id=1 code=" + ErrorCode.CANCELLED.wire()));
        waitUntil(() -> !p.isOpen() && service.sessionsOf("vm-1") == 0);
        assertTrue(System.nanoTime() - start < 1_000_000_000L, "ended promptly");
        assertTrue(p.closeReason().contains("the process ended"), p.closeReason());
        assertThrows(GeminiException.class, () -> p.call("text", "upper", T, "dead"));

        Session q = open(1, P1000, 300);
        q.call("text", "upper", T, "brief");
        String ended = SessionEdgeTest.next(agent);
        assertTrue(ended.startsWith("RETURN id=2") && ended.contains("its lifetime ran out"), ended);
        waitUntil(() -> !q.isOpen());

        Session r = open(2, P1000);
        r.call("text", "upper", T, "mapped");
        mapped = false;
        assertTrue(SessionEdgeTest.next(agent).contains("no longer maps region rings"));
        waitUntil(() -> !r.isOpen());
        assertFalse(r.isOpen());
    }

    private static void waitUntil(java.util.function.BooleanSupplier done) throws InterruptedException {
        long end = System.nanoTime() + 5_000_000_000L;
        while (!done.getAsBoolean()) {
            assertTrue(System.nanoTime() < end, "not within 5 s");
            Thread.sleep(5);
        }
    }
}
