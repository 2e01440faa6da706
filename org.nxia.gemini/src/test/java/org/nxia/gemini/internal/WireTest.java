package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;

/** The codec against the test vectors of docs/gemini-protocol.md (the C test reads the same file). */
class WireTest {

    record Vector(String name, byte[] bytes, String text) {
    }

    static List<Vector> vectors(String kind) throws IOException {
        List<String> lines = Files.readAllLines(Path.of("..", "docs", "gemini-protocol.md"));
        List<Vector> out = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String[] w = lines.get(i).split(" ");
            if (w[0].equals(kind) && w.length == 3) {
                String text = kind.equals("vector") ? lines.get(i + 1).substring("  = ".length()) : null;
                out.add(new Vector(w[1], HexFormat.of().parseHex(w[2]), text));
            }
        }
        return out;
    }

    @Test
    void vectorsDecodeToTheirTextAndReencodeToTheirBytes() throws IOException {
        List<Vector> vs = vectors("vector");
        assertTrue(vs.size() >= 9, "vectors found: " + vs.size());
        for (Vector v : vs) {
            Wire.Frame f = Wire.decode(v.bytes(), v.bytes().length);
            assertEquals(v.text(), Wire.text(f), v.name());
            assertArrayEquals(v.bytes(), Wire.encode(f), v.name());
        }
    }

    @Test
    void rejectedVectorsAreBadFrames() throws IOException {
        List<Vector> vs = vectors("rejected");
        assertTrue(vs.size() >= 15, "rejected vectors found: " + vs.size());
        for (Vector v : vs) {
            GeminiException e = assertThrows(GeminiException.class, () -> Wire.decode(v.bytes(), v.bytes().length), v.name());
            assertEquals(ErrorCode.BAD_FRAME, e.code(), v.name());
        }
    }

    /** Random mutations of valid frames: decode either succeeds or says BAD_FRAME, never anything else. */
    @Test
    void mutatedFramesNeverEscape() throws IOException {
        Random r = new Random(7);
        for (Vector v : vectors("vector")) {
            for (int i = 0; i < 2000; i++) {
                byte[] b = v.bytes().clone();
                int flips = 1 + r.nextInt(4);
                for (int k = 0; k < flips; k++) {
                    b[r.nextInt(b.length)] = (byte) r.nextInt(256);
                }
                int len = r.nextInt(4) == 0 ? r.nextInt(b.length + 1) : b.length;
                try {
                    Wire.decode(b, len);
                } catch (GeminiException e) {
                    assertEquals(ErrorCode.BAD_FRAME, e.code());
                }
            }
        }
    }

    /** The {@code deref} lines: reference checks against the arena the document describes. */
    @Test
    void referenceVectorsAreCheckedAsBothEndsDo() throws IOException {
        java.lang.foreign.MemorySegment region = java.lang.foreign.Arena.ofAuto().allocate(1024, 64);
        org.nxia.portal.api.PortalArena arena = new org.nxia.portal.internal.Structures().formatArena(region, 64);
        assertEquals(192, arena.allocate(64).offset());
        org.nxia.portal.api.Ref freed = arena.allocate(64);
        assertEquals(256, freed.offset());
        arena.free(freed);
        int n = 0;
        for (String line : Files.readAllLines(Path.of("..", "docs", "gemini-protocol.md"))) {
            String[] w = line.split(" ");
            if (!w[0].equals("deref") || w.length != 4) {
                continue;
            }
            n++;
            String[] r = w[2].split(",");
            org.nxia.portal.api.Ref ref = new org.nxia.portal.api.Ref(Long.parseLong(r[0]), Long.parseLong(r[1]), Integer.parseInt(r[2]));
            if (w[3].equals("ok")) {
                assertEquals(ref.length(), Session.deref(arena, "test", ref, w[1]).byteSize(), w[1]);
                assertEquals(region.address() + ref.offset(), Session.deref(arena, "test", ref, w[1]).address(), w[1]);
            } else {
                GeminiException e = assertThrows(GeminiException.class, () -> Session.deref(arena, "test", ref, w[1]), w[1]);
                assertEquals(ErrorCode.BAD_REF, e.code(), w[1]);
            }
        }
        assertTrue(n >= 8, "deref vectors found: " + n);
    }

    @Test
    void unencodableValuesAreBadArgs() {
        GeminiException e = assertThrows(GeminiException.class,
                () -> Wire.encode(new Wire.Return(1, new Object())));
        assertEquals(ErrorCode.BAD_ARGS, e.code());
        assertThrows(GeminiException.class, () -> Wire.name("no spaces"));
    }
}
