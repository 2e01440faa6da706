package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Supplier;

import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.portal.api.Ref;

/** Each limit of the codec at its edge: the last value accepted and the first refused, both directions. */
class WireLimitsTest {

    private static final com.sun.management.ThreadMXBean MX = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private static Wire.Frame roundTrip(Wire.Frame f) {
        byte[] b = Wire.encode(f);
        Wire.Frame back = Wire.decode(b, b.length);
        assertArrayEquals(b, Wire.encode(back));
        return back;
    }

    private static GeminiException badFrame(byte[] b) {
        GeminiException e = assertThrows(GeminiException.class, () -> Wire.decode(b, b.length));
        assertEquals(ErrorCode.BAD_FRAME, e.code(), e.getMessage());
        return e;
    }

    private static ErrorCode encodeError(Wire.Frame f) {
        return assertThrows(GeminiException.class, () -> Wire.encode(f)).code();
    }

    /** A header of {@code type} with {@code id}, then {@code body}. */
    private static byte[] frame(int type, long id, byte[] body) {
        return ByteBuffer.allocate(Wire.HEADER + body.length).order(ByteOrder.LITTLE_ENDIAN)
                .put((byte) type).put((byte) Wire.VERSION).putShort((short) 0).putInt(0).putLong(id).put(body).array();
    }

    @Test
    void namesAreOneToSixtyFourOfTheAllowedCharacters() {
        for (String ok : List.of("a", "z", "A", "Z", "0", "9", "_", ".", "-", "x".repeat(Wire.MAX_NAME))) {
            assertEquals(ok, Wire.name(ok));
        }
        for (String bad : List.of("`", "{", "@", "[", "/", ":", "a b", "é", "", "x".repeat(Wire.MAX_NAME + 1))) {
            assertEquals(ErrorCode.BAD_ARGS, assertThrows(GeminiException.class, () -> Wire.name(bad)).code(), "'" + bad + "'");
        }
        assertThrows(GeminiException.class, () -> Wire.name(null));
        Wire.Call longest = new Wire.Call(1, "s".repeat(64), "m".repeat(64), List.of(), List.of());
        assertEquals(longest, roundTrip(longest));
        assertEquals(ErrorCode.BAD_ARGS, encodeError(new Wire.Call(1, "s:", "m", List.of(), List.of())));
        // a peer's CALL naming a bad method is a bad frame, not bad arguments
        byte[] body = ByteBuffer.allocate(4 + 1 + 4 + 1 + 1 + 2).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(1).put((byte) 's').putInt(1).put((byte) '!').put((byte) 0).putShort((short) 0).array();
        assertTrue(badFrame(frame(Wire.CALL, 1, body)).reason().contains("may hold only"));
    }

    private static List<CapabilityToken> tokens(int n) {
        List<CapabilityToken> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new CapabilityToken(i, -i));
        }
        return out;
    }

    @Test
    void aCallCarriesAtMostEightTokensAndThirtyTwoArguments() {
        Wire.Call full = new Wire.Call(9, "s", "m", tokens(Wire.MAX_TOKENS), Collections.nCopies(Wire.MAX_ARGS, 1L));
        assertEquals(Wire.text(full), Wire.text(roundTrip(full)));
        assertEquals(ErrorCode.BAD_ARGS, encodeError(new Wire.Call(9, "s", "m", tokens(Wire.MAX_TOKENS + 1), List.of())));
        assertEquals(ErrorCode.BAD_ARGS, encodeError(new Wire.Call(9, "s", "m", List.of(), Collections.nCopies(Wire.MAX_ARGS + 1, 1L))));

        // the peer's side: counts one over, with every byte they promise present
        ByteBuffer nine = ByteBuffer.allocate(5 + 5 + 1 + 9 * 16 + 2).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(1).put((byte) 's').putInt(1).put((byte) 'm').put((byte) 9);
        nine.position(nine.position() + 9 * 16).putShort((short) 0);
        assertTrue(badFrame(frame(Wire.CALL, 1, nine.array())).reason().startsWith("9 tokens (at most 8)"));
        ByteBuffer args = ByteBuffer.allocate(5 + 5 + 1 + 2 + 33).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(1).put((byte) 's').putInt(1).put((byte) 'm').put((byte) 0).putShort((short) 33);
        assertTrue(badFrame(frame(Wire.CALL, 1, args.array())).reason().startsWith("33 arguments (at most 32)"));
    }

    @Test
    void referencesNeedAnOffsetFromZeroAndALengthFromOne() {
        Wire.Return least = new Wire.Return(3, new Ref(0, 1, -1));
        assertEquals("RETURN id=3 value=ref:0,1,4294967295", Wire.text(roundTrip(least)));
        for (long[] bad : new long[][] {{-1, 1}, {0, 0}, {5, -1}}) {
            byte[] body = ByteBuffer.allocate(21).order(ByteOrder.LITTLE_ENDIAN).put((byte) Wire.T_REF).putLong(bad[0]).putLong(bad[1])
                    .putInt(0).array();
            assertTrue(badFrame(frame(Wire.RETURN, 3, body)).reason().contains("needs offset >= 0 and length >= 1"));
        }
    }

    @Test
    void lengthsAreCheckedAgainstTheLimitAndTheFrame() {
        Wire.Hello most = new Wire.Hello(1, 1, "p".repeat(Wire.MAX_PEER), new byte[Wire.MAX_AUTH]);
        Wire.Hello back = (Wire.Hello) roundTrip(most);
        assertEquals(most.peer(), back.peer());
        assertEquals(Wire.MAX_AUTH, back.auth().length);
        assertEquals(ErrorCode.BAD_ARGS, encodeError(new Wire.Hello(1, 1, "p".repeat(Wire.MAX_PEER + 1), new byte[0])));
        assertEquals(ErrorCode.BAD_ARGS, encodeError(new Wire.Hello(1, 1, "p", new byte[Wire.MAX_AUTH + 1])));

        // a peer name of 65 bytes, all present: over the limit
        byte[] over = ByteBuffer.allocate(4 + 4 + 65 + 4).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 1).putShort((short) 1)
                .putInt(65).put("p".repeat(65).getBytes(StandardCharsets.US_ASCII)).putInt(0).array();
        assertEquals("length 65 exceeds the limit 64", badFrame(frame(Wire.HELLO, 0, over)).reason());
        // a peer name of exactly the limit that the frame does not hold: over the frame, not the limit
        byte[] shortOf = ByteBuffer.allocate(4 + 4 + 10).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 1).putShort((short) 1)
                .putInt(64).array();
        assertEquals("length 64 exceeds the frame", badFrame(frame(Wire.HELLO, 0, shortOf)).reason());
        // a string that ends exactly where the frame does
        byte[] exact = ByteBuffer.allocate(4 + 3).order(ByteOrder.LITTLE_ENDIAN).putInt(3).put("bye".getBytes(StandardCharsets.US_ASCII))
                .array();
        assertEquals(new Wire.Close("bye"), Wire.decode(frame(Wire.CLOSE, 0, exact), Wire.HEADER + exact.length));
        assertEquals("length 4 exceeds the frame", badFrame(frame(Wire.CLOSE, 0, ByteBuffer.allocate(7).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(4).array())).reason());
        assertEquals("length 4294967295 exceeds the frame", badFrame(frame(Wire.CLOSE, 0, ByteBuffer.allocate(4)
                .order(ByteOrder.LITTLE_ENDIAN).putInt(-1).array())).reason());
    }

    @Test
    void theIdOfAFrameNeedsAWholeHeader() {
        byte[] f = frame(Wire.CANCEL, 0x0102030405060708L, new byte[0]);
        assertEquals(0x0102030405060708L, Wire.idOf(f, Wire.HEADER));
        assertEquals(0, Wire.idOf(f, Wire.HEADER - 1));
    }

    @Test
    void longMessagesAreCutToTheLimitNotRefused() {
        String limit = "a".repeat(Wire.MAX_MESSAGE);
        assertEquals(limit, ((Wire.Error) roundTrip(new Wire.Error(1, ErrorCode.FAILED, limit))).message(), "the limit itself is kept");
        Wire.Error cut = (Wire.Error) roundTrip(new Wire.Error(1, ErrorCode.FAILED, "a".repeat(Wire.MAX_MESSAGE + 1)));
        assertEquals("a".repeat(1025 - 1025 / 8), cut.message(), "an eighth off at a time");
        Wire.Close closed = (Wire.Close) roundTrip(new Wire.Close("é".repeat(Wire.MAX_MESSAGE)));
        assertTrue(closed.reason().getBytes(StandardCharsets.UTF_8).length <= Wire.MAX_MESSAGE);
        assertEquals("é".repeat(461), closed.reason(), "cut by bytes, not characters: 1024, 896, 784, 686, 601, 526, 461");
        assertEquals("", ((Wire.Close) roundTrip(new Wire.Close(null))).reason());
        assertEquals("x".repeat(Wire.MAX_MESSAGE), ((Wire.Close) roundTrip(new Wire.Close("x".repeat(Wire.MAX_MESSAGE)))).reason());
    }

    /** Bytes this thread allocates while {@code encoding} runs. */
    private static long allocated(Supplier<byte[]> encoding, int[] length) {
        long before = MX.getCurrentThreadAllocatedBytes();
        byte[] b = encoding.get();
        long after = MX.getCurrentThreadAllocatedBytes();
        length[0] = b.length;
        return after - before;
    }

    /**
     * A frame's buffer is sized exactly up front: one large argument is written once, not grown and
     * copied (which would allocate it twice or more). The UTF-8 estimate is exact for every width.
     */
    @Test
    void aLargeFrameIsWrittenIntoOneBufferOfItsExactSize() {
        byte[] big = new byte[1 << 20];
        int[] len = new int[1];
        Wire.encode(new Wire.Return(1, big)); // warm up
        long call = allocated(() -> Wire.encode(new Wire.Call(1, "svc", "method", tokens(2), List.of(big, 7, "é"))), len);
        assertTrue(call < len[0] + 64 * 1024, "a " + len[0] + "-byte CALL allocated " + call + " bytes");
        long ret = allocated(() -> Wire.encode(new Wire.Return(1, big)), len);
        assertTrue(ret < len[0] + 64 * 1024, "a " + len[0] + "-byte RETURN allocated " + ret + " bytes");

        // every UTF-8 width, and the boundaries between them
        StringBuilder s = new StringBuilder();
        String edges = "\u007f\u0080\u07ff\u0800\ud7ff\ue000\uffff\ud83d\ude00\u0000";
        while (s.length() < 200_000) {
            s.append(edges);
        }
        String text = s.toString();
        int utf8 = text.getBytes(StandardCharsets.UTF_8).length;
        Wire.encode(new Wire.Return(1, text));
        long str = allocated(() -> Wire.encode(new Wire.Return(1, text)), len);
        assertEquals(Wire.HEADER + 5 + utf8, len[0]);
        // the string's own UTF-8 bytes once, the frame once
        long own = allocated(() -> text.getBytes(StandardCharsets.UTF_8), new int[1]);
        assertTrue(str - own < len[0] + 64 * 1024, "a " + len[0] + "-byte RETURN of a string allocated " + str + " bytes, "
                + own + " of them its UTF-8 bytes");
        assertEquals(text, ((Wire.Return) roundTrip(new Wire.Return(1, text))).value());
        long args = allocated(() -> Wire.encode(new Wire.Call(1, "s", "m", List.of(), List.of(text, true, 1, (short) 2, (byte) 3, 4L,
                1.5, 2.5f, new Ref(1, 2, 3), new CapabilityToken(1, 2)))), len);
        assertTrue(args - own < len[0] + 64 * 1024, "a " + len[0] + "-byte CALL of every type allocated " + args + " bytes");
    }

    @Test
    void aLoneSurrogateEncodesAsUtf8Does() {
        for (String odd : List.of("ab\ud83d", "\ud83dx", "\ude00")) {
            Wire.Return r = (Wire.Return) roundTrip(new Wire.Return(2, odd));
            assertEquals(new String(odd.getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8), r.value());
        }
    }

    @Test
    void smallIntegersWidenAndFloatsGoAsDoubles() {
        Wire.Call c = (Wire.Call) roundTrip(new Wire.Call(1, "s", "m", List.of(), List.of((short) -2, (byte) 7, 1.5f, false)));
        assertEquals(List.of(-2, 7, 1.5, false), c.args());
    }
}
