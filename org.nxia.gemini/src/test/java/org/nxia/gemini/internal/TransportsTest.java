package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ByteChannel;
import java.nio.channels.Pipe;
import java.time.Duration;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.lsm.policy.internal.PolicyService;
import org.nxia.portal.internal.SpscRing;

/** The transports' own contracts: room, death, the sleeping flag, queued frames, stream framing and closing. */
class TransportsTest {
    static final Duration T = Duration.ofSeconds(5);
    static final int CAP = 4096;

    /** Two rings and a control block in native memory; {@code host} consumes g2h and produces h2g. */
    private record Rings(RingTransport host, RingTransport guest, MemorySegment ctl) {
        static Rings of(Arena arena, AtomicReference<String> peerState) {
            MemorySegment g2h = arena.allocate(SpscRing.requiredSize(CAP), 64);
            MemorySegment h2g = arena.allocate(SpscRing.requiredSize(CAP), 64);
            SpscRing.format(g2h, CAP);
            SpscRing.format(h2g, CAP);
            MemorySegment ctl = arena.allocate(64, 64);
            return new Rings(new RingTransport(SpscRing.attach(g2h), SpscRing.attach(h2g), ctl, peerState::get),
                    new RingTransport(SpscRing.attach(h2g), SpscRing.attach(g2h), arena.allocate(64, 64), () -> null), ctl);
        }

        int sleeping() {
            return ctl.get(ValueLayout.JAVA_INT, 0);
        }
    }

    @Test
    void aRingTransportCarriesHalfARingAndRefusesWhenFullOrDead() {
        try (Arena arena = Arena.ofShared()) {
            AtomicReference<String> vm = new AtomicReference<>();
            Rings r = Rings.of(arena, vm);
            assertEquals(CAP / 2 - 4, r.host().maxFrame());
            byte[] frame = new byte[100];
            int sent = 0;
            while (r.guest().send(frame, frame.length)) {
                sent++;
                assertTrue(sent < CAP / frame.length, "a full ring says so");
            }
            assertTrue(sent >= CAP / (frame.length + 8) - 1, "sent " + sent);
            byte[] buf = new byte[r.host().maxFrame()];
            assertEquals(frame.length, r.host().receive(buf));
            assertEquals(null, r.host().peerGone());
            vm.set("the VM stopped");
            assertEquals("the VM stopped", r.host().peerGone());
            r.host().kill("killed in a test");
            assertEquals("killed in a test", r.host().peerGone(), "its own death comes first");
            assertFalse(r.host().send(frame, 1));
            assertEquals(-1, r.host().receive(buf), "frames left in the ring are not read after kill");
            r.guest().close();
            assertFalse(r.guest().send(frame, 1), "close is kill");
            assertEquals("the transport was closed", r.guest().peerGone());
        }
    }

    @Test
    void awaitRaisesTheSleepingFlagOnlyWhileItSleepsOnAnEmptyRing() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            Rings r = Rings.of(arena, new AtomicReference<>());
            // empty: it sleeps the time given, with the flag up
            CompletableFuture<Long> slept = CompletableFuture.supplyAsync(() -> {
                long t0 = System.nanoTime();
                r.host().await(400_000_000L);
                return System.nanoTime() - t0;
            });
            long until = System.nanoTime() + 2_000_000_000L;
            while (r.sleeping() != 1 && System.nanoTime() < until) {
                Thread.onSpinWait();
            }
            assertEquals(1, r.sleeping(), "the peer sees the host asleep");
            assertTrue(slept.get(5, TimeUnit.SECONDS) >= 300_000_000L, "it slept");
            assertEquals(0, r.sleeping(), "and lowered the flag when it woke");

            // a frame waiting: no sleep, flag down
            assertTrue(r.guest().send(new byte[8], 8));
            long t0 = System.nanoTime();
            r.host().await(2_000_000_000L);
            assertTrue(System.nanoTime() - t0 < 1_000_000_000L, "a waiting frame is not slept on");
            assertEquals(0, r.sleeping());

            // the doorbell wakes it
            r.host().receive(new byte[r.host().maxFrame()]);
            AtomicReference<Thread> sleeper = new AtomicReference<>();
            CompletableFuture<Long> woken = CompletableFuture.supplyAsync(() -> {
                sleeper.set(Thread.currentThread());
                long s = System.nanoTime();
                r.host().await(10_000_000_000L);
                return System.nanoTime() - s;
            });
            until = System.nanoTime() + 2_000_000_000L;
            while (r.sleeping() != 1 && System.nanoTime() < until) {
                Thread.onSpinWait();
            }
            java.util.concurrent.locks.LockSupport.unpark(sleeper.get());
            assertTrue(woken.get(5, TimeUnit.SECONDS) < 5_000_000_000L, "unpark ends the sleep");

            // dead: neither sleeps nor touches the control block
            r.host().kill("gone");
            t0 = System.nanoTime();
            r.host().await(2_000_000_000L);
            assertTrue(System.nanoTime() - t0 < 1_000_000_000L, "a dead transport does not sleep");
            assertEquals(0, r.sleeping());
        }
    }

    @Test
    void aFrameTakenByAwaitIsReceivedFirstAndNoneIsLost() {
        LoopbackTransport[] w = LoopbackTransport.pair();
        assertTrue(w[0].send(new byte[] {1}, 1));
        assertTrue(w[0].send(new byte[] {2, 2}, 2));
        w[1].await(1_000_000);
        w[1].await(1_000_000);
        byte[] buf = new byte[8];
        assertEquals(1, w[1].receive(buf));
        assertEquals(1, buf[0]);
        assertEquals(2, w[1].receive(buf));
        assertEquals(2, buf[0]);
        assertEquals(-1, w[1].receive(buf));

        long t0 = System.nanoTime();
        w[1].await(300_000_000L);
        assertTrue(System.nanoTime() - t0 >= 250_000_000L, "await on an empty queue waits for a frame");

        Thread.currentThread().interrupt();
        t0 = System.nanoTime();
        w[1].await(2_000_000_000L);
        assertTrue(Thread.interrupted(), "an interrupted wait keeps the interrupt");
        assertTrue(System.nanoTime() - t0 < 1_000_000_000L);

        int sent = 0;
        while (w[0].send(new byte[1], 1)) {
            sent++;
        }
        assertEquals(256, sent, "a loopback queue holds 256 frames");
        w[1].close();
        assertFalse(w[1].send(new byte[1], 1), "a closed end sends nothing");
    }

    /** One end of a stream over two pipes, wrapped so a test can slow or split its reads and writes. */
    private static class End implements ByteChannel {
        final Pipe.SourceChannel in;
        final Pipe.SinkChannel out;

        End(Pipe.SourceChannel in, Pipe.SinkChannel out) {
            this.in = in;
            this.out = out;
        }

        static End[] pair() throws IOException {
            Pipe a = Pipe.open();
            Pipe b = Pipe.open();
            return new End[] {new End(a.source(), b.sink()), new End(b.source(), a.sink())};
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            return in.read(dst);
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            return out.write(src);
        }

        @Override
        public boolean isOpen() {
            return in.isOpen() && out.isOpen();
        }

        @Override
        public void close() throws IOException {
            in.close();
            out.close();
        }
    }

    private static void write(ByteChannel c, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            c.write(b);
        }
    }

    private static byte[] readFrame(ByteChannel c) throws IOException {
        ByteBuffer n = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        while (n.hasRemaining()) {
            if (c.read(n) < 0) {
                return null;
            }
        }
        ByteBuffer f = ByteBuffer.allocate(n.getInt(0));
        while (f.hasRemaining()) {
            if (c.read(f) < 0) {
                return null;
            }
        }
        return f.array();
    }

    private static ByteBuffer length(int n) {
        return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, n);
    }

    private static GeminiImpl gemini() throws Exception {
        PolicyService policy = new PolicyService();
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile test\nallow out echo.*\n");
        policy.updated("m", config);
        return new GeminiImpl(policy, Map.of("echo", new SessionTest.Echo()), Map.of());
    }

    private static String reply(ByteChannel c) throws IOException {
        byte[] f = readFrame(c);
        return f == null ? "end of stream" : Wire.text(Wire.decode(f, f.length));
    }

    /** An empty frame and one of exactly the largest length are frames (refused as such), not broken framing. */
    @Test
    void framesFromZeroToTheLargestLengthAreFrames() throws Exception {
        GeminiImpl gemini = gemini();
        try {
            End[] e = End.pair();
            GeminiSession host = gemini.open(e[0], "test", null);
            write(e[1], length(0));
            assertEquals("ERROR id=0 code=1 message=\"frame of 0 bytes is shorter than the 16-byte header\"", reply(e[1]));
            write(e[1], length(StreamTransport.MAX_FRAME));
            write(e[1], ByteBuffer.allocate(StreamTransport.MAX_FRAME));
            assertEquals("ERROR id=0 code=1 message=\"frame version 0 (this side speaks 1)\"", reply(e[1]));
            assertTrue(host.isOpen(), host.closeReason());
            write(e[1], length(StreamTransport.MAX_FRAME + 1));
            long until = System.nanoTime() + T.toNanos();
            while (host.isOpen() && System.nanoTime() < until) {
                Thread.sleep(5);
            }
            assertEquals("transport failed: the peer broke the stream's framing: a frame length of " + (StreamTransport.MAX_FRAME + 1)
                    + " bytes (at most " + StreamTransport.MAX_FRAME + ")", host.closeReason());
        } finally {
            gemini.deactivate();
        }
    }

    /** A read may return 0 bytes (a non-blocking channel with nothing yet): that is not the end of the stream. */
    @Test
    void aReadOfNothingIsNotTheEnd() throws Exception {
        GeminiImpl gemini = gemini();
        try {
            End[] e = End.pair();
            gemini.open(e[0], "test", null);
            AtomicInteger empty = new AtomicInteger();
            End dribbling = new End(e[1].in, e[1].out) {
                private boolean skip;

                @Override
                public int read(ByteBuffer dst) throws IOException {
                    skip = !skip;
                    if (skip) {
                        empty.incrementAndGet();
                        return 0;
                    }
                    return super.read(dst);
                }
            };
            Session guest = gemini.client(new StreamTransport(dribbling, "dribble"), new PeerHandler(), "dribbler");
            assertEquals(3L, guest.call("echo", "add", T, 1L, 2L));
            assertTrue(empty.get() > 2);
            guest.close("done");
        } finally {
            gemini.deactivate();
        }
    }

    private static List<Thread> streamThreads(String name) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("gemini-stream-" + name)).toList();
    }

    /** close lets the writer put out what was sent before it (a slow stream included), then closes the stream. */
    @Test
    void closeFlushesWhatWasSentThenClosesTheStream() throws Exception {
        End[] e = End.pair();
        End slow = new End(e[0].in, e[0].out) {
            @Override
            public int write(ByteBuffer src) throws IOException {
                try {
                    Thread.sleep(10); // well inside close's grace, after close would have cut the stream without it
                } catch (InterruptedException x) {
                    throw new java.io.InterruptedIOException();
                }
                return super.write(src);
            }
        };
        StreamTransport t = new StreamTransport(slow, "slow");
        assertTrue(t.send(new byte[] {7, 8, 9}, 3));
        t.close();
        assertFalse(slow.isOpen(), "close closes the stream");
        assertArrayEquals(new byte[] {7, 8, 9}, readFrame(e[1]), "the frame sent before close went out");
        assertEquals(null, readFrame(e[1]), "and then the stream ended");
        assertFalse(t.send(new byte[] {1}, 1), "nothing is sent after close");

        End[] f = End.pair();
        StreamTransport u = new StreamTransport(f[0], "interrupted");
        Thread.currentThread().interrupt();
        u.close();
        assertTrue(Thread.interrupted(), "a close interrupted while it waits keeps the interrupt");
        assertFalse(f[0].isOpen());
    }

    /** A reader held by a full queue (nobody receives) ends when the transport closes. */
    @Test
    void closeEndsAReaderHeldByAFullQueue() throws Exception {
        End[] e = End.pair();
        StreamTransport t = new StreamTransport(e[0], "full");
        byte[] frame = Wire.encode(new Wire.Cancel(1));
        for (int i = 0; i < StreamTransport.QUEUED + 2; i++) {
            ByteBuffer b = ByteBuffer.allocate(4 + frame.length).order(ByteOrder.LITTLE_ENDIAN).putInt(frame.length).put(frame).flip();
            write(e[1], b);
        }
        Thread.sleep(100);
        assertEquals(2, streamThreads("full").size());
        t.close();
        long until = System.nanoTime() + T.toNanos();
        while (!streamThreads("full").isEmpty() && System.nanoTime() < until) {
            Thread.sleep(5);
        }
        assertEquals(List.of(), streamThreads("full"), "no stream thread is left");
        assertEquals(frame.length, t.receive(new byte[StreamTransport.MAX_FRAME]), "the frames read before are still there");
    }

    /** A stream the peer closed takes no more frames. */
    @Test
    void aStreamThePeerClosedTakesNoFrames() throws Exception {
        End[] e = End.pair();
        StreamTransport t = new StreamTransport(e[0], "ended");
        e[1].close();
        long until = System.nanoTime() + T.toNanos();
        while (t.peerGone() == null && System.nanoTime() < until) {
            Thread.sleep(5);
        }
        assertEquals("the peer closed the stream", t.peerGone());
        assertFalse(t.send(new byte[] {1}, 1));
        t.close();
    }
}
