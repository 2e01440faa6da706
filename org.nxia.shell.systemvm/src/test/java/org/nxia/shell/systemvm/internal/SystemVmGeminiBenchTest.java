package org.nxia.shell.systemvm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;

import org.junit.jupiter.api.Test;

/** bench:sysgemini's arithmetic and its reading of the guest's samples, with known inputs. */
class SystemVmGeminiBenchTest {

    @Test
    void samplesAreExactlyTheCountAllPositive() throws IOException {
        assertArrayEquals(new long[] {5, 7, 9}, SystemVmGeminiBench.samples("5\n7\n\n9\n", 3, "t"));
        assertTrue(assertThrows(IOException.class, () -> SystemVmGeminiBench.samples("5\n7\n", 3, "t")).getMessage()
                .contains("gave 2 samples, not 3"));
        assertTrue(assertThrows(IOException.class, () -> SystemVmGeminiBench.samples("5\nx\n9", 3, "t")).getMessage()
                .contains("not a sample: x"));
        assertTrue(assertThrows(IOException.class, () -> SystemVmGeminiBench.samples("5\n0\n9", 3, "t")).getMessage()
                .contains("a sample of 0 ns"));
    }

    @Test
    void theTableGivesEachSidesPercentilesAndItsP50OverTheFloors() {
        long[] lToH = {30_000, 10_000, 20_000, 40_000}; // p50 20 us, p99 40 us (nearest rank)
        long[] ring = {15_000, 5_000, 10_000, 30_000};  // p50 10 us, p99 30 us
        long[] hToL = {50_000, 60_000, 70_000, 80_000};
        long[] floor = {5_000, 10_000, 10_000, 20_000}; // p50 10 us
        String t = SystemVmGeminiBench.table(lToH, ring, hToL, floor, 4, "test host");
        assertTrue(t.contains("4 calls a side"), t);
        assertTrue(t.matches("(?s).*L->H: nxia-call -n in the guest, timed there\\s+20\\.0\\s+40\\.0\\s+2\\.00.*"), t);
        assertTrue(t.matches("(?s).*L->H: nxia-call -n --ring \\(Portal rings\\), timed there\\s+10\\.0\\s+30\\.0\\s+1\\.00.*"), t);
        assertTrue(t.matches("(?s).*H->L: host session to nxia-serve -e, timed on host\\s+60\\.0\\s+80\\.0\\s+6\\.00.*"), t);
        assertTrue(t.matches("(?s).*floor: host Unix socket, two processes\\s+10\\.0\\s+20\\.0\\s+1\\.00.*"), t);
        assertTrue(t.contains("<= 1 is better; goal <= 3"), t);
    }

    @Test
    void theArgumentTableGivesRatesTheRatioToMemcpyAndTheCrossoverEachWay() {
        long k4 = 4 << 10, k16 = 16 << 10, m64 = 64L << 20;
        // 4 KiB: copy 1 us, ref 2 us each way; 16 KiB: L->H copy 4 us, ref 4 us (crossover), H->L copy 4 us, ref 5 us;
        // 64 MiB: no copy, ref 20 ms L->H and 10 ms H->L; memcpy 5 ms
        // L->H by reference over the ring: 4 KiB 1 us, 64 MiB 8 ms (the best at 64 MiB: 0.625 of memcpy)
        var rows = List.of(new SystemVmGeminiBench.SizeRow(k4, 1_000, 2_000, 1_000, 1_000, 2_000, 500),
                new SystemVmGeminiBench.SizeRow(k16, 4_000, 4_000, 4_000, 4_000, 5_000, 1_000),
                new SystemVmGeminiBench.SizeRow(m64, 0, 20e6, 8e6, 0, 10e6, 5e6));
        String t = SystemVmGeminiBench.sizeTable(rows);
        assertTrue(t.matches("(?s).*4 KiB\\s+3906\\.3\\s+1953\\.1\\s+3906\\.3\\s+3906\\.3\\s+1953\\.1\\s+7812\\.5\\s+0\\.50.*"), t);
        assertTrue(t.matches("(?s).*64 MiB\\s+-\\s+3200\\.0\\s+8000\\.0\\s+-\\s+6400\\.0\\s+12800\\.0\\s+0\\.63.*"), t);
        assertTrue(t.contains("crossover (reference at least as fast as copy): L->H 16 KiB, H->L 64 MiB (no copy past 20 KiB)"), t);
        assertTrue(t.contains(">= 1 is better"), t);
    }

    @Test
    void theSumIsOfLittleEndianWordsAndATailAsNxiaServeAddsThem() {
        byte[] b = new byte[11];
        b[0] = 1;          // word 0 = 1
        b[8] = 2;          // tail bytes 2, 3 at shifts 0 and 8
        b[9] = 3;
        assertEquals(1 + 2 + (3 << 8), SystemVmGeminiBench.byteSum(MemorySegment.ofArray(b)));
        assertEquals(4, SystemVmGeminiBench.repeats(64L << 20));
        assertEquals(3, SystemVmGeminiBench.repeats(512L << 20), "at least 3 calls");
        assertEquals(50, SystemVmGeminiBench.repeats(4096), "at most 50");
    }
}
