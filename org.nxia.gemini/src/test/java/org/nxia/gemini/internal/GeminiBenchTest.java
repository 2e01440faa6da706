package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The crossover rule of bench gemini (docs/gemini-protocol.md, "Benchmarks"). */
class GeminiBenchTest {

    @Test
    void crossoverIsTheSmallestSizeFromWhichReferencesWinByTheMarginEverAfter() {
        assertEquals(1, GeminiBench.crossover(new double[][] {{1, 1.01}, {1, 1.2}, {1, 3}}), "1.01x is a tie");
        assertEquals(2, GeminiBench.crossover(new double[][] {{1, 2}, {1, 0.9}, {1, 3}}), "a loss in between resets it");
        assertEquals(0, GeminiBench.crossover(new double[][] {{1, 1.05}, {1, 2}}));
        assertEquals(-1, GeminiBench.crossover(new double[][] {{1, 2}, {1, 1}}), "copies win at the largest size");
    }

    @Test
    void sizesPrintInTheirUnit() {
        assertEquals("4 KiB", GeminiBench.size(4096));
        assertEquals("64 MiB", GeminiBench.size(64 << 20));
        assertEquals("1000 B", GeminiBench.size(1000));
    }
}
