package org.nxia.portal.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.Ref;
import org.nxia.portal.api.Ring;

/** Runs guest/test/portal-vectors.txt, the cases the C implementation (make -C guest check) runs too. */
class PortalVectorsTest {

    static final Path VECTORS = Path.of("../guest/test/portal-vectors.txt");

    @Test
    void javaMatchesTheSharedVectors() throws IOException {
        List<String> lines = Files.readAllLines(VECTORS);
        int cases = 0;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = null;
            Ring ring = null;
            BlockArena blocks = null;
            for (int n = 0; n < lines.size(); n++) {
                String line = lines.get(n).strip();
                if (line.isEmpty() || line.startsWith("#")) {
                    continue;
                }
                String[] w = line.split("\\s+");
                String where = VECTORS + ":" + (n + 1) + ": " + line;
                switch (w[0]) {
                    case "spsc" -> {
                        int c = Integer.parseInt(w[1]);
                        seg = arena.allocate(SpscRing.requiredSize(c), 64);
                        ring = SpscRing.format(seg, c);
                    }
                    case "mpmc" -> {
                        int slots = Integer.parseInt(w[1]);
                        int size = Integer.parseInt(w[2]);
                        seg = arena.allocate(MpmcRing.requiredSize(slots, size), 64);
                        ring = MpmcRing.format(seg, slots, size);
                    }
                    case "arena" -> {
                        seg = arena.allocate(Long.parseLong(w[2]), 64);
                        blocks = BlockArena.format(seg, Integer.parseInt(w[1]));
                    }
                    case "offer" -> assertTrue(ring.offer(bytes(w[1])), where);
                    case "full" -> assertFalse(ring.offer(bytes(w[1])), where);
                    case "poll" -> {
                        MemorySegment into = arena.allocate(4096);
                        int len = ring.poll(into);
                        assertEquals(w[1], len == 0 ? "-" : HexFormat.of().formatHex(into.asSlice(0, len).toArray(ValueLayout.JAVA_BYTE)), where);
                    }
                    case "empty" -> assertEquals(-1, ring.poll(arena.allocate(4096)), where);
                    case "alloc" -> assertEquals(ref(w), blocks.allocate(Long.parseLong(w[1])), where);
                    case "free" -> blocks.free(ref(w, 1));
                    case "stale" -> {
                        BlockArena b = blocks;
                        Ref r = ref(w, 1);
                        assertThrows(PortalException.class, () -> b.deref(r), where);
                        assertThrows(PortalException.class, () -> b.free(r), where);
                    }
                    case "bytes" -> assertEquals(w[1], HexFormat.of().formatHex(seg.toArray(ValueLayout.JAVA_BYTE)), where);
                    case "end" -> {
                        cases++;
                        ring = null;
                        blocks = null;
                    }
                    default -> throw new AssertionError(where + ": unknown operation");
                }
            }
        }
        assertEquals(3, cases, "cases run");
    }

    private static MemorySegment bytes(String hex) {
        return MemorySegment.ofArray(hex.equals("-") ? new byte[0] : HexFormat.of().parseHex(hex));
    }

    /** {@code alloc LEN OFF GEN}: the expected Ref. */
    private static Ref ref(String[] w) {
        return new Ref(Long.parseLong(w[2]), Long.parseLong(w[1]), Integer.parseInt(w[3]));
    }

    /** {@code OFF LEN GEN} from index {@code i}. */
    private static Ref ref(String[] w, int i) {
        return new Ref(Long.parseLong(w[i]), Long.parseLong(w[i + 1]), Integer.parseInt(w[i + 2]));
    }
}
