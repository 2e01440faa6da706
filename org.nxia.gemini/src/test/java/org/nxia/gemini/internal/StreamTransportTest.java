package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ByteChannel;
import java.nio.channels.Pipe;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.lsm.policy.internal.PolicyService;

/** Sessions over a byte stream (the vsock framing), with the real policy service. */
class StreamTransportTest {

    static final Duration T = Duration.ofSeconds(5);

    public static final class Echo {
        public long add(long a, long b) {
            return a + b;
        }
    }

    /** One end of a full-duplex stream made of two pipes. */
    record End(Pipe.SourceChannel in, Pipe.SinkChannel out) implements ByteChannel {
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

    private GeminiImpl gemini;
    private End hostEnd;
    private End guestEnd;

    @BeforeEach
    void open() throws Exception {
        PolicyService policy = new PolicyService();
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile test\nallow out echo.*\nallow in calc.*\n");
        policy.updated("m1", config);
        gemini = new GeminiImpl(policy, Map.of("echo", new Echo()), Map.of("echo", Set.of()));
        Pipe a = Pipe.open();
        Pipe b = Pipe.open();
        hostEnd = new End(a.source(), b.sink());
        guestEnd = new End(b.source(), a.sink());
    }

    @AfterEach
    void close() {
        gemini.deactivate();
    }

    @Test
    void callsCrossBothWaysAndTheStreamsEndClosesTheSession() throws Exception {
        GeminiSession host = gemini.open(hostEnd, "test", "vm-7");
        Session guest = gemini.client(new StreamTransport(guestEnd, "guest"),
                new PeerHandler().export("calc", "add", (a, c) -> (Long) a.get(0) + (Long) a.get(1)), "stream-guest");
        assertEquals("stream-guest", host.peer());
        for (int i = 0; i < 200; i++) {
            assertEquals((long) i + 1, guest.call("echo", "add", T, (long) i, 1L));
            assertEquals((long) i + 2, host.call("calc", "add", T, (long) i, 2L));
        }
        GeminiException tooBig = assertThrows(GeminiException.class,
                () -> host.call("calc", "add", T, new byte[StreamTransport.MAX_FRAME], 1L));
        assertEquals(ErrorCode.BAD_ARGS, tooBig.code());
        assertEquals(host, gemini.sessionOfVm("vm-7").orElseThrow());
        guestEnd.close(); // the VM died
        long end = System.nanoTime() + T.toNanos();
        while (host.isOpen() && System.nanoTime() < end) {
            Thread.sleep(5);
        }
        assertFalse(host.isOpen());
        assertTrue(host.closeReason().contains("closed the stream"), host.closeReason());
        assertTrue(gemini.sessionOfVm("vm-7").isEmpty());
    }

    @Test
    void aBrokenFrameLengthEndsTheSessionAndAFrameBeforeHelloIsRefused() throws Exception {
        GeminiSession host = gemini.open(hostEnd, "test", null);
        ByteBuffer call = frame(Wire.encode(new Wire.Cancel(3)));
        while (call.hasRemaining()) {
            guestEnd.write(call);
        }
        ByteBuffer reply = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        while (reply.hasRemaining()) {
            guestEnd.read(reply);
        }
        ByteBuffer body = ByteBuffer.allocate(reply.getInt(0));
        while (body.hasRemaining()) {
            guestEnd.read(body);
        }
        Wire.Error e = (Wire.Error) Wire.decode(body.array(), body.capacity());
        assertEquals(ErrorCode.AUTH, e.code(), "say HELLO first");
        ByteBuffer huge = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 1 << 30);
        guestEnd.write(huge);
        long end = System.nanoTime() + T.toNanos();
        while (host.isOpen() && System.nanoTime() < end) {
            Thread.sleep(5);
        }
        assertFalse(host.isOpen());
        assertTrue(host.closeReason().contains("framing"), host.closeReason());
    }

    private static List<Thread> streamThreads(String name) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("gemini-stream-" + name)).toList();
    }

    /**
     * The guest says HELLO and then never reads: host sends fail by their deadline (BUSY, not a
     * hang), close returns at once, and no stream thread is left behind.
     */
    @Test
    void aPeerThatStopsReadingCannotHangTheHost() throws Exception {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            GeminiSession host = gemini.open(hostEnd, "test", "vm-deaf");
            ByteBuffer hello = frame(Wire.encode(new Wire.Hello(1, 1, "deaf", new byte[0])));
            while (hello.hasRemaining()) {
                guestEnd.write(hello);
            }
            long end = System.nanoTime() + T.toNanos();
            while (host.peer().isEmpty() && System.nanoTime() < end) {
                Thread.sleep(5);
            }
            assertEquals("deaf", host.peer());
            assertEquals(2, streamThreads("vm-deaf").size(), "a reader and a writer");
            byte[] big = new byte[StreamTransport.MAX_FRAME - 1024];
            GeminiException failed = null;
            long start = 0;
            List<CompletableFuture<Object>> calls = new ArrayList<>();
            for (int i = 0; i < 1000 && failed == null; i++) { // the pipe and the queue fill; then a send finds no room
                start = System.nanoTime();
                CompletableFuture<Object> f = host.callAsync("calc", "add", List.of(), T, (Object) big);
                calls.add(f);
                if (f.isCompletedExceptionally()) {
                    failed = (GeminiException) assertThrows(ExecutionException.class, f::get).getCause();
                }
            }
            long waited = System.nanoTime() - start;
            assertNotNull(failed, "a send to a peer that does not read failed");
            assertEquals(ErrorCode.BUSY, failed.code(), failed.getMessage());
            assertTrue(failed.getMessage().contains("stopped reading"), failed.getMessage());
            assertTrue(waited < 2 * Session.SEND_GIVE_UP_NANOS, "it failed by its deadline: " + waited / 1_000_000 + " ms");
            assertTrue(calls.size() <= StreamTransport.QUEUED + 64, "the queue is bounded: " + calls.size() + " sends took");
            start = System.nanoTime();
            host.close("the guest stopped reading");
            long closing = System.nanoTime() - start;
            assertTrue(closing < 500_000_000L, "close does not wait on the peer: " + closing / 1_000_000 + " ms");
            for (CompletableFuture<Object> f : calls) {
                assertTrue(f.isDone(), "every call is over once the session closed");
            }
            end = System.nanoTime() + T.toNanos();
            while (!streamThreads("vm-deaf").isEmpty() && System.nanoTime() < end) {
                Thread.sleep(5);
            }
            assertEquals(List.of(), streamThreads("vm-deaf"), "no stream thread is left stuck");
            System.out.println("a peer that stopped reading: " + calls.size() + " sends queued, the next failed after "
                    + waited / 1_000_000 + " ms; close took " + closing / 1_000_000 + " ms");
        });
    }

    private static ByteBuffer frame(byte[] f) {
        ByteBuffer b = ByteBuffer.allocate(4 + f.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(f.length).put(f).flip();
        return b;
    }
}
