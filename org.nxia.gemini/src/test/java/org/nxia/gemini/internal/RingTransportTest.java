package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.lsm.policy.internal.PolicyService;
import org.nxia.portal.internal.SpscRing;

/** Gemini over two Portal rings in native memory, as a guest lays them out in its RAM. */
class RingTransportTest {

    static final Duration T = Duration.ofSeconds(5);

    @Test
    void callsBothWaysOverRingsAndKillFailsThemPromptly() throws Exception {
        PolicyService policy = new PolicyService();
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile ring\nallow out *\nallow in *\n");
        policy.updated("m", config);
        GeminiImpl gemini = new GeminiImpl(policy, Map.of("echo", new SessionTest.Echo()), Map.of());
        try (Arena arena = Arena.ofShared()) {
            int cap = 4096;
            MemorySegment g2h = arena.allocate(SpscRing.requiredSize(cap), 64);
            MemorySegment h2g = arena.allocate(SpscRing.requiredSize(cap), 64);
            MemorySegment ctl = arena.allocate(64, 64);
            SpscRing.format(g2h, cap);
            SpscRing.format(h2g, cap);
            RingTransport hostEnd = new RingTransport(SpscRing.attach(g2h), SpscRing.attach(h2g), ctl, () -> null);
            RingTransport guestEnd = new RingTransport(SpscRing.attach(h2g), SpscRing.attach(g2h), arena.allocate(64, 64), () -> null);
            GeminiSession host = gemini.openSession(hostEnd, "ring", "vm-test");
            Session guest = gemini.client(guestEnd, new PeerHandler()
                    .export("calc", "add", (a, c) -> (Long) a.get(0) + (Long) a.get(1))
                    .export("calc", "block", (a, c) -> {
                        Thread.sleep(60_000);
                        return null;
                    }), "ring-guest");
            for (int i = 0; i < 1000; i++) {
                assertEquals((long) i + 1, guest.call("echo", "add", T, (long) i, 1L));
                assertEquals((long) i + 2, host.call("calc", "add", T, (long) i, 2L));
            }
            byte[] big = new byte[cap / 2 - 64];
            for (int i = 0; i < 10; i++) {
                assertEquals(big.length, ((byte[]) guest.call("echo", "reverse", T, (Object) big)).length,
                        "a frame of half the ring crosses wherever the ring's indices stand, with wrap markers on the way");
            }
            GeminiException tooBig = assertThrows(GeminiException.class, () -> guest.call("echo", "reverse", T, (Object) new byte[cap / 2]));
            assertEquals(ErrorCode.BAD_ARGS, tooBig.code());

            CompletableFuture<Object> blocked = host.callAsync("calc", "block", List.of(), Duration.ofSeconds(60));
            Thread.sleep(50);
            long start = System.nanoTime();
            hostEnd.kill("the VM vm-test was destroyed");
            ExecutionException e = assertThrows(ExecutionException.class, () -> blocked.get(2, TimeUnit.SECONDS));
            assertEquals(ErrorCode.CLOSED, ((GeminiException) e.getCause()).code());
            assertTrue(e.getCause().getMessage().contains("destroyed"), e.getCause().getMessage());
            assertTrue(System.nanoTime() - start < 1_000_000_000L);
            guest.close("done");
        } finally {
            gemini.deactivate();
        }
    }
}
