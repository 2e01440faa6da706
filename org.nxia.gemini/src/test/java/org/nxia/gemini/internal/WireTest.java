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

    @Test
    void unencodableValuesAreBadArgs() {
        GeminiException e = assertThrows(GeminiException.class,
                () -> Wire.encode(new Wire.Return(1, new Object())));
        assertEquals(ErrorCode.BAD_ARGS, e.code());
        assertThrows(GeminiException.class, () -> Wire.name("no spaces"));
    }
}
