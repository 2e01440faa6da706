package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ByteChannel;
import java.nio.channels.Pipe;
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

    private static ByteBuffer frame(byte[] f) {
        ByteBuffer b = ByteBuffer.allocate(4 + f.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(f.length).put(f).flip();
        return b;
    }
}
