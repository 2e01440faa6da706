package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.portal.api.Ref;

/**
 * A randomized fuzzer of the frame decoder: random valid frames, mutated (byte flips, boundary
 * lengths written over length fields, truncation, extension) and pure noise behind a valid header.
 * Each outcome is a frame that re-encodes to the same bytes, or BAD_FRAME; never another exception,
 * and never an allocation out of proportion to the frame (no length is trusted before it is checked).
 * {@value #CASES_PROPERTY} sets the case count (10^5 by default; 10^6 for a long run).
 */
class WireFuzzTest {
    static final String CASES_PROPERTY = "nxia.fuzz.gemini.cases";
    static final String CORPUS = "/gemini-wire-corpus.txt";
    /** Decoding a frame of n bytes may allocate at most this many bytes per input byte, plus {@link #ALLOC_SLACK}. */
    static final long ALLOC_PER_BYTE = 16;
    static final long ALLOC_SLACK = 64 * 1024;
    private static final int[] BOUNDARY = {0, 1, 16, 63, 64, 65, 255, 256, 257, 1023, 1024, 1025, 0x7fff, 0xffff, 0x10000,
            0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff};

    private static final com.sun.management.ThreadMXBean MX = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    record Seed(boolean ok, byte[] bytes, String what) {
    }

    static List<Seed> corpus() throws IOException {
        List<Seed> out = new ArrayList<>();
        try (InputStream in = WireFuzzTest.class.getResourceAsStream(CORPUS)) {
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (line.isBlank() || line.startsWith("#")) {
                    continue;
                }
                String[] w = line.split("\\s+", 3);
                out.add(new Seed(w[0].equals("ok"), HexFormat.of().parseHex(w[1]), w.length > 2 ? w[2] : ""));
            }
        }
        return out;
    }

    @Test
    void theCorpusReplaysToItsRecordedOutcomes() throws IOException {
        List<Seed> seeds = corpus();
        assertTrue(seeds.size() >= 30, "corpus entries: " + seeds.size());
        for (Seed s : seeds) {
            if (s.ok()) {
                assertArrayEquals(s.bytes(), Wire.encode(Wire.decode(s.bytes(), s.bytes().length)), s.what());
            } else {
                GeminiException e = assertThrows(GeminiException.class, () -> Wire.decode(s.bytes(), s.bytes().length), s.what());
                assertEquals(ErrorCode.BAD_FRAME, e.code(), s.what());
            }
        }
    }

    @Test
    void randomAndMutatedFramesDecodeOrAreBadFrames() throws IOException {
        int cases = Integer.getInteger(CASES_PROPERTY, 100_000);
        long seed = Long.getLong("nxia.fuzz.seed", 12);
        Random r = new Random(seed);
        List<byte[]> seeds = new ArrayList<>();
        for (Seed s : corpus()) {
            seeds.add(s.bytes());
        }
        int decoded = 0;
        int bad = 0;
        long worstAlloc = 0;
        List<String> crashes = new ArrayList<>();
        for (int i = 0; i < cases; i++) {
            byte[] frame = switch (r.nextInt(4)) {
                case 0 -> Wire.encode(randomFrame(r));
                case 1 -> mutate(r, Wire.encode(randomFrame(r)));
                case 2 -> mutate(r, seeds.get(r.nextInt(seeds.size())));
                default -> noise(r);
            };
            int len = frame.length;
            long before = MX.getCurrentThreadAllocatedBytes();
            try {
                Wire.Frame f = Wire.decode(frame, len);
                decoded++;
                byte[] again = Wire.encode(f);
                if (!Arrays.equals(again, 0, again.length, frame, 0, len)) {
                    crashes.add("case " + i + ": decoded but re-encodes differently: " + HexFormat.of().formatHex(frame, 0, len));
                }
            } catch (GeminiException e) {
                if (e.code() != ErrorCode.BAD_FRAME) {
                    crashes.add("case " + i + ": " + e.code() + " " + e.getMessage() + ": " + HexFormat.of().formatHex(frame, 0, len));
                }
                bad++;
            } catch (RuntimeException | Error e) {
                crashes.add("case " + i + ": " + e + ": " + HexFormat.of().formatHex(frame, 0, Math.min(len, 256)));
            }
            long alloc = MX.getCurrentThreadAllocatedBytes() - before;
            worstAlloc = Math.max(worstAlloc, alloc - ALLOC_PER_BYTE * len);
            if (alloc > ALLOC_PER_BYTE * len + ALLOC_SLACK) {
                crashes.add("case " + i + ": decoding " + len + " bytes allocated " + alloc + " bytes");
            }
            if (crashes.size() > 10) {
                break;
            }
        }
        System.out.println("Gemini frame fuzzer (seed " + seed + "): " + cases + " cases, " + decoded + " decoded, " + bad
                + " BAD_FRAME, " + crashes.size() + " crashes; worst allocation beyond " + ALLOC_PER_BYTE + " B/input byte: "
                + worstAlloc + " B");
        assertEquals(List.of(), crashes);
        assertTrue(decoded > cases / 10 && bad > cases / 10, "both outcomes are exercised: " + decoded + " / " + bad);
    }

    private static String name(Random r) {
        String chars = "abcXYZ019_.-";
        StringBuilder s = new StringBuilder();
        for (int i = 1 + r.nextInt(r.nextInt(8) == 0 ? Wire.MAX_NAME : 8); i > 0; i--) {
            s.append(chars.charAt(r.nextInt(chars.length())));
        }
        return s.toString();
    }

    private static String text(Random r, int max) {
        StringBuilder s = new StringBuilder();
        for (int i = r.nextInt(Math.min(max, 40) + 1); i > 0; i--) {
            s.append(r.nextInt(10) == 0 ? (char) (0xa0 + r.nextInt(0x2000)) : (char) ('a' + r.nextInt(26)));
        }
        String t = s.toString();
        while (t.getBytes(StandardCharsets.UTF_8).length > max) {
            t = t.substring(1);
        }
        return t;
    }

    private static byte[] bytes(Random r, int max) {
        byte[] b = new byte[r.nextInt(max + 1)];
        r.nextBytes(b);
        return b;
    }

    private static Object value(Random r) {
        return switch (r.nextInt(9)) {
            case 0 -> null;
            case 1 -> r.nextBoolean();
            case 2 -> r.nextInt();
            case 3 -> r.nextLong();
            case 4 -> Double.longBitsToDouble(r.nextLong());
            case 5 -> text(r, 200);
            case 6 -> bytes(r, 300);
            case 7 -> new Ref(r.nextLong() & Long.MAX_VALUE, 1 + (r.nextLong() & 0xffffffL), r.nextInt());
            default -> new CapabilityToken(r.nextLong(), r.nextLong());
        };
    }

    static Wire.Frame randomFrame(Random r) {
        long id = r.nextInt(4) == 0 ? r.nextLong() : r.nextInt(1000);
        return switch (r.nextInt(7)) {
            case 0 -> new Wire.Hello(r.nextInt(3), r.nextInt(3), text(r, Wire.MAX_PEER), bytes(r, Wire.MAX_AUTH));
            case 1 -> new Wire.Welcome(r.nextInt(3), r.nextInt(), r.nextLong());
            case 2 -> {
                List<CapabilityToken> tokens = new ArrayList<>();
                for (int i = r.nextInt(Wire.MAX_TOKENS + 1); i > 0; i--) {
                    tokens.add(new CapabilityToken(r.nextLong(), r.nextLong()));
                }
                List<Object> args = new ArrayList<>();
                for (int i = r.nextInt(r.nextInt(4) == 0 ? Wire.MAX_ARGS + 1 : 5); i > 0; i--) {
                    args.add(value(r));
                }
                yield new Wire.Call(id, name(r), name(r), tokens, args);
            }
            case 3 -> new Wire.Return(id, value(r));
            case 4 -> new Wire.Error(id, ErrorCode.values()[r.nextInt(ErrorCode.values().length)], text(r, Wire.MAX_MESSAGE));
            case 5 -> new Wire.Cancel(id);
            default -> new Wire.Close(text(r, Wire.MAX_MESSAGE));
        };
    }

    /** Flips bytes, writes boundary lengths over 4-byte fields, truncates or extends. */
    static byte[] mutate(Random r, byte[] in) {
        byte[] b = in.clone();
        for (int k = 1 + r.nextInt(4); k > 0; k--) {
            switch (r.nextInt(5)) {
                case 0 -> b[r.nextInt(b.length)] = (byte) r.nextInt(256);
                case 1 -> {
                    if (b.length >= 4) {
                        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(r.nextInt(b.length - 3), BOUNDARY[r.nextInt(BOUNDARY.length)]);
                    }
                }
                case 2 -> b = Arrays.copyOf(b, r.nextInt(b.length + 1));
                case 3 -> {
                    byte[] tail = bytes(r, 64);
                    byte[] longer = Arrays.copyOf(b, b.length + tail.length);
                    System.arraycopy(tail, 0, longer, b.length, tail.length);
                    b = longer;
                }
                default -> b[r.nextInt(b.length)] ^= (byte) (1 << r.nextInt(8));
            }
            if (b.length == 0) {
                return b;
            }
        }
        return b;
    }

    /** A valid header for a random type, then random bytes. */
    static byte[] noise(Random r) {
        byte[] b = bytes(r, 256);
        byte[] out = Arrays.copyOf(new byte[Wire.HEADER], Wire.HEADER + b.length);
        out[0] = (byte) (1 + r.nextInt(7));
        out[1] = Wire.VERSION;
        System.arraycopy(b, 0, out, Wire.HEADER, b.length);
        return out;
    }
}
