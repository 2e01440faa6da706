package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Hashtable;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.Marshalling;
import org.nxia.lsm.policy.internal.PolicyService;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.internal.Structures;
import org.nxia.portal.api.Ref;

/** Large arguments by Portal reference over the loopback transport, both sides on one shared arena. */
class ReferenceTest {

    private static final PortalStructures STRUCTURES = new Structures();

    static final Duration T = Duration.ofSeconds(5);

    /** A host service that reports how each argument arrived and sums it. */
    public static final class Sums {
        public String how(Object v) {
            return v instanceof Ref ? "ref" : v instanceof byte[] ? "copy" : "other";
        }

        public long sum(byte[] data) {
            return ReferenceTest.sum(MemorySegment.ofArray(data));
        }

        public long sumInPlace(MemorySegment data) {
            return ReferenceTest.sum(data);
        }
    }

    static long sum(MemorySegment s) {
        long h = s.byteSize();
        for (long i = 0; i < s.byteSize(); i++) {
            h = h * 31 + s.get(ValueLayout.JAVA_BYTE, i);
        }
        return h;
    }

    static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 7 + 3);
        }
        return b;
    }

    private final Arena memory = Arena.ofShared();
    private GeminiImpl gemini;
    private GeminiSession host;
    private Session guest;
    private PortalArena hostArena;
    private PortalArena guestArena;

    @BeforeEach
    void open() throws Exception {
        PolicyService policy = new PolicyService();
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile test\nallow out sums.*\nallow in calc.*\n");
        policy.updated("m1", config);
        gemini = new GeminiImpl(policy, Map.of("sums", new Sums()), Map.of("sums", Set.of()));
        LoopbackTransport[] wire = LoopbackTransport.pair();
        PeerHandler exports = new PeerHandler()
                .export("calc", "how", (args, ctx) -> args.get(0) instanceof Ref ? "ref" : "copy")
                .export("calc", "sum", (args, ctx) -> args.get(0) instanceof Ref r
                        ? sum(ctx.read(r)) : sum(MemorySegment.ofArray((byte[]) args.get(0))));
        host = gemini.openSession(wire[0], "test", null);
        guest = gemini.client(wire[1], exports, "test-guest");
        MemorySegment region = memory.allocate(4 * 1024 * 1024 + 4096, 64);
        hostArena = STRUCTURES.formatArena(region, 1024 * 1024);
        guestArena = STRUCTURES.attachArena(region);
        host.bindReferenceRegion("shared", hostArena);
        guest.bindReferenceRegion("shared", guestArena);
    }

    @AfterEach
    void close() {
        guest.close("test over");
        gemini.deactivate();
        memory.close();
    }

    @Test
    void autoGoesByReferenceFromTheThresholdAndCopiesBelowIt() {
        long t = host.referenceThreshold();
        assertEquals(GeminiImpl.DEFAULT_REFERENCE_THRESHOLD, t);
        assertEquals("copy", host.call("calc", "how", T, (Object) new byte[(int) t - 1]));
        assertEquals("ref", host.call("calc", "how", T, (Object) new byte[(int) t]));
        assertEquals("copy", host.call("calc", "how", Marshalling.COPY, T, (Object) new byte[(int) t]));
        assertEquals("ref", host.call("calc", "how", Marshalling.REFERENCE, T, (Object) new byte[16]));
        assertEquals("ref", guest.call("sums", "how", Marshalling.REFERENCE, T, (Object) new byte[16]));
        assertEquals("copy", guest.call("sums", "how", T, (Object) new byte[16]));
    }

    @Test
    void theCalleeReadsTheSameBytesEitherWayBothDirections() {
        byte[] data = pattern(300_000);
        long expected = sum(MemorySegment.ofArray(data));
        for (Marshalling m : Marshalling.values()) {
            assertEquals(expected, host.call("calc", "sum", m, T, (Object) data), "H->L " + m);
            assertEquals(expected, guest.call("sums", "sum", m, T, (Object) data), "L->H byte[] " + m);
            assertEquals(expected, guest.call("sums", "sumInPlace", m, T, (Object) data), "L->H in place " + m);
        }
    }

    @Test
    void blocksAreFreedWhenTheCallEndsSoTheArenaNeverFills() {
        byte[] data = pattern(1024 * 1024); // one whole block each
        for (int i = 0; i < 20; i++) { // the arena has 4 blocks
            host.call("calc", "sum", Marshalling.REFERENCE, T, (Object) data);
        }
        java.util.List<Ref> taken = new java.util.ArrayList<>();
        for (int i = 0; i < 4; i++) {
            taken.add(hostArena.allocate(1));
        }
        GeminiException full = assertThrows(GeminiException.class,
                () -> host.call("calc", "sum", Marshalling.REFERENCE, T, (Object) data));
        assertEquals(ErrorCode.BAD_REF, full.code());
        assertTrue(full.getMessage().contains("arena full"), full.getMessage());
        assertEquals("copy", host.call("calc", "how", T, (Object) data), "AUTO falls back to a copy");
        taken.forEach(hostArena::free);
    }

    @Test
    void referencesOutsideTheRegionOrStaleAreBadRefBothWays() {
        Ref outside = new Ref(1L << 40, 16, 0);
        GeminiException e = assertThrows(GeminiException.class, () -> guest.call("sums", "sumInPlace", T, outside));
        assertEquals(ErrorCode.BAD_REF, e.code());
        assertTrue(e.getMessage().contains("outside"), e.getMessage());
        assertEquals(ErrorCode.BAD_REF, assertThrows(GeminiException.class, () -> host.call("calc", "sum", T, outside)).code());

        Ref stale = guestArena.allocate(64);
        guestArena.free(stale);
        e = assertThrows(GeminiException.class, () -> guest.call("sums", "sum", T, stale));
        assertEquals(ErrorCode.BAD_REF, e.code());
        assertTrue(e.getMessage().contains("stale") || e.getMessage().contains("generation"), e.getMessage());

        Ref live = guestArena.allocate(64);
        guestArena.deref(live).fill((byte) 1);
        assertEquals(sum(MemorySegment.ofArray(filled(64))), guest.call("sums", "sumInPlace", T, live), "a live block is read in place");
        guestArena.free(live);
        assertEquals(0L, host.call("calc", "sum", Marshalling.COPY, T, (Object) new byte[0]), "the session still works");
        assertTrue(host.isOpen());
    }

    @Test
    void aSessionWithoutARegionRefusesReferences() {
        LoopbackTransport[] wire = LoopbackTransport.pair();
        GeminiSession bare = gemini.openSession(wire[0], "test", null);
        Session peer = gemini.client(wire[1], new PeerHandler().export("calc", "how", (a, c) -> "x"), "bare");
        try {
            GeminiException e = assertThrows(GeminiException.class,
                    () -> bare.call("calc", "how", Marshalling.REFERENCE, T, (Object) new byte[8]));
            assertEquals(ErrorCode.BAD_REF, e.code());
            assertEquals(ErrorCode.BAD_REF, assertThrows(GeminiException.class,
                    () -> peer.call("sums", "sum", T, new Ref(192, 8, 0))).code());
            assertEquals("x", bare.call("calc", "how", T, (Object) new byte[1 << 20]), "AUTO copies without a region");
        } finally {
            peer.close("done");
        }
    }

    private static byte[] filled(int n) {
        byte[] b = new byte[n];
        java.util.Arrays.fill(b, (byte) 1);
        return b;
    }
}
