package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ControlException.Code;

/**
 * The host's frame parser (AgentConnection.read over Wire.scan/take) and field
 * parser under random agent output: frames of random types and sizes, some
 * broken on purpose, delivered in random pieces. The only failure allowed is a
 * ControlException with the code the protocol gives; nothing is allocated for
 * a length before it is checked. -Dnxia.fuzz.cases=N runs more (default 10^5),
 * -Dnxia.fuzz.seed=S replays a run. Then the shared corpus is replayed.
 */
class WireFuzzTest {

    private static final int CASES = Integer.getInteger("nxia.fuzz.cases", 100_000);
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    /** A stream handed out in random pieces, as a socket would. */
    private static final class Pieces implements ReadableByteChannel {
        private final byte[] bytes;
        private final SplittableRandom random;
        private int off;

        Pieces(byte[] bytes, SplittableRandom random) {
            this.bytes = bytes;
            this.random = random;
        }

        @Override
        public int read(ByteBuffer dst) {
            if (off == bytes.length)
                return -1;
            int n = Math.min(dst.remaining(), Math.min(bytes.length - off, 1 + random.nextInt(random.nextBoolean() ? 16 : 70_000)));
            dst.put(bytes, off, n);
            off += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public void close() {
        }
    }

    private static int someLength(SplittableRandom r) {
        int k = r.nextInt(100);
        return k < 70 ? r.nextInt(65) : k < 90 ? r.nextInt(4097) : k < 97 ? r.nextInt(Wire.MAX_PAYLOAD + 1) : Wire.MAX_PAYLOAD;
    }

    /** Reads frames until the stream fails; returns how many were read and the failure. */
    private static Object[] drain(byte[] stream, SplittableRandom r, long caseNo) {
        ByteBuffer buf = ByteBuffer.allocate(4 + Wire.MAX_BODY).flip();
        Pieces in = new Pieces(stream, r);
        int frames = 0;
        try {
            for (;;) {
                Wire.Frame f = AgentConnection.read(in, buf);
                assertTrue(f.payload().length <= Wire.MAX_PAYLOAD);
                frames++;
                if (frames > stream.length / Wire.HEADER)
                    fail("case " + caseNo + ": more frames than the stream holds");
            }
        } catch (ControlException e) {
            return new Object[] {frames, e.code()};
        } catch (IOException | RuntimeException | Error e) {
            throw new AssertionError("case " + caseNo + ": the parser failed with " + e, e);
        }
    }

    @Test
    void randomFrameStreams() {
        long seed = Long.getLong("nxia.fuzz.seed", new Random().nextLong());
        SplittableRandom r = new SplittableRandom(seed);
        long streams = 0, fieldLists = 0;
        for (long c = 0; c < CASES; c++) {
            if (r.nextInt(4) == 0) {
                fieldsCase(r, c);
                fieldLists++;
                continue;
            }
            streams++;
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            int n = 1 + r.nextInt(8), whole = 0;
            Code want = Code.SESSION;    // a clean end between frames
            for (int i = 0; i < n; i++) {
                byte[] payload = new byte[someLength(r)];
                r.nextBytes(payload);
                byte[] frame = Wire.encode(r.nextInt(0x10000), r.nextInt(), payload);
                ByteBuffer h = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN);
                int brk = i == n - 1 && r.nextBoolean() ? 1 + r.nextInt(4) : 0;
                switch (brk) {
                    case 1 -> {    // over the limit, up to 4 GiB: must not be allocated
                        h.putInt(0, (int) (Wire.MAX_BODY + 1 + (r.nextBoolean() ? 0 : r.nextLong(0xffff_ffffL - Wire.MAX_BODY))));
                        out.write(frame, 0, 4 + r.nextInt(9));
                        want = Code.TOO_BIG;
                    }
                    case 2 -> {
                        h.putInt(0, r.nextInt(8));
                        out.write(frame, 0, 4 + r.nextInt(9));
                        want = Code.PROTOCOL;
                    }
                    case 3 -> {
                        h.putShort(6, (short) (1 + r.nextInt(0xffff)));
                        out.write(frame, 0, 8 + r.nextInt(5));
                        want = Code.PROTOCOL;
                    }
                    case 4 -> {
                        out.write(frame, 0, 1 + r.nextInt(frame.length - 1));
                        want = Code.TRUNCATED;
                    }
                    default -> {
                        out.writeBytes(frame);
                        whole++;
                    }
                }
                if (brk != 0)
                    break;
            }
            byte[] stream = out.toByteArray();
            long before = THREADS.getCurrentThreadAllocatedBytes();
            Object[] got = drain(stream, r, c);
            long allocated = THREADS.getCurrentThreadAllocatedBytes() - before - (4 + Wire.MAX_BODY);
            assertEquals(whole, got[0], "case " + c + " (seed " + seed + "): frames read");
            assertEquals(want, got[1], "case " + c + " (seed " + seed + "): how it ended");
            // Payload copies and a little per frame: nothing sized by an unchecked length
            // (after the first cases, whose figures include loading classes).
            assertTrue(c < 1000 || allocated < 2L * stream.length + 256 * 1024, "case " + c + ": " + allocated
                    + " bytes allocated for " + stream.length + " bytes of stream");
        }
        System.out.printf("WireFuzzTest: seed %d, %d cases (%d streams, %d field lists), 0 crashes%n", seed, CASES, streams, fieldLists);
    }

    /** Field lists: well formed now and then broken; a list is either fully accounted for or refused (null). */
    private static void fieldsCase(SplittableRandom r, long c) {
        ByteBuffer b = ByteBuffer.allocate(r.nextBoolean() ? r.nextInt(64) : r.nextInt(4096)).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            if (b.remaining() < 5 || r.nextInt(8) == 0) {
                byte[] junk = new byte[b.remaining()];
                r.nextBytes(junk);
                b.put(junk);
                break;
            }
            int len = r.nextInt(4) > 0 ? r.nextInt(b.remaining() - 4) : r.nextInt();
            b.put((byte) r.nextInt()).putInt(len);
            byte[] v = new byte[Math.min(b.remaining(), Math.max(len, 0))];
            r.nextBytes(v);
            b.put(v);
        }
        byte[] payload = b.array();
        List<Wire.Field> fields;
        try {
            fields = Wire.fields(payload);
        } catch (RuntimeException e) {
            throw new AssertionError("case " + c + ": fields() failed with " + e, e);
        }
        if (fields != null)
            assertEquals(payload.length, fields.stream().mapToInt(f -> 5 + f.value().length).sum(), "case " + c);
    }

    @Test
    void theCorpusReplays() throws IOException {
        Path file = Path.of(System.getProperty("nxia.control.corpus", "../guest/agent/test/frames-corpus.txt"));
        int replayed = 0;
        SplittableRandom r = new SplittableRandom(1);
        for (String line : Files.readAllLines(file)) {
            if (line.isEmpty() || line.startsWith("#"))
                continue;
            String hex = line.substring(line.indexOf(' ') + 1);
            Object[] got = drain(HexFormat.of().parseHex(hex), r, replayed);
            assertNotNull(got[1]);
            replayed++;
        }
        assertTrue(replayed >= 10, "only " + replayed + " corpus streams");
    }

    @Test
    void aFieldListIsTakenToItsLastByteAndNoFurther() {
        byte[] emptyLast = new Wire.Fields().put(Wire.T_ARG, "sh").put(Wire.T_CWD, new byte[0]).bytes();
        List<Wire.Field> fields = Wire.fields(emptyLast);
        assertNotNull(fields, "a last field with an empty value (5 bytes left) is whole");
        assertEquals(List.of(Wire.T_ARG, Wire.T_CWD), fields.stream().map(Wire.Field::tag).toList());
        assertEquals(0, fields.getLast().value().length);
        assertEquals(null, Wire.fields(java.util.Arrays.copyOf(emptyLast, emptyLast.length - 1)), "4 bytes of a field header");
        byte[] over = new Wire.Fields().put(Wire.T_ARG, "sh").bytes();
        ByteBuffer.wrap(over).order(ByteOrder.LITTLE_ENDIAN).putInt(1, 3);
        assertEquals(null, Wire.fields(over), "a length one past the end");
        assertEquals(List.of(), Wire.fields(new byte[0]));
    }
}
