package org.nxia.vmm.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.LongStream;

import org.junit.jupiter.api.Test;

class PercentilesTest {

    @Test
    void percentileIsTheNearestRank() {
        long[] hundred = LongStream.rangeClosed(1, 100).toArray();
        assertEquals(50, Percentiles.nearestRank(hundred, 100, 50));
        assertEquals(99, Percentiles.nearestRank(hundred, 100, 99));
        assertEquals(100, Percentiles.nearestRank(hundred, 100, 100));
        assertEquals(1, Percentiles.nearestRank(hundred, 100, 1));
        long[] ten = LongStream.rangeClosed(1, 10).map(i -> i * 10).toArray();
        assertEquals(50, Percentiles.nearestRank(ten, 10, 50));
        assertEquals(100, Percentiles.nearestRank(ten, 10, 99), "p99 of 10 samples is the largest");
        assertEquals(10, Percentiles.nearestRank(ten, 10, 10));
        assertEquals(20, Percentiles.nearestRank(ten, 10, 11), "just past a rank: the next sample");
        long[] thousand = LongStream.range(0, 1000).toArray();
        assertEquals(499, Percentiles.nearestRank(thousand, 1000, 50), "the 500th of 1000");
        assertEquals(989, Percentiles.nearestRank(thousand, 1000, 99), "the 990th of 1000");
        assertEquals(7, Percentiles.nearestRank(new long[] {7}, 1, 50));
        assertEquals(7, Percentiles.nearestRank(new long[] {7}, 1, 99));
    }

    @Test
    void percentileLooksOnlyAtTheRecordedPrefix() {
        long[] sink = {1, 2, 3, 0, 0, 0};  // a sink of which 3 entries were recorded
        assertEquals(2, Percentiles.nearestRank(sink, 3, 50));
        assertEquals(3, Percentiles.nearestRank(sink, 3, 99));
        long[] unsorted = {3, 1, 2, 0, 0, 0};
        assertEquals(2, Percentiles.nearestRankUnsorted(unsorted, 3, 50), "the zeros past the count do not count");
        assertEquals(3, Percentiles.nearestRankUnsorted(unsorted, 3, 99));
    }

    @Test
    void percentileOfUnsortedSamplesSortsACopy() {
        long[] samples = {900, 100, 500, 300, 700};
        assertEquals(500, Percentiles.nearestRankUnsorted(samples, 50));
        assertEquals(900, Percentiles.nearestRankUnsorted(samples, 99));
        assertEquals(100, Percentiles.nearestRankUnsorted(samples, 1));
        assertArrayEquals(new long[] {900, 100, 500, 300, 700}, samples, "the caller's samples are untouched");
    }

    @Test
    void percentileMatchesItsDefinitionOnRandomSamples() {
        Random random = new Random(19);
        for (int round = 0; round < 2000; round++) {
            long[] samples = random.longs(1 + random.nextInt(300), 0, 50).toArray();
            int p = 1 + random.nextInt(100);
            double got = Percentiles.nearestRankUnsorted(samples, p);
            // the smallest sample with at least p % of the samples at or below it
            long want = Arrays.stream(samples).sorted()
                    .filter(x -> Arrays.stream(samples).filter(y -> y <= x).count() * 100 >= (long) p * samples.length)
                    .findFirst().orElseThrow();
            assertEquals(want, got, () -> "p" + p + " of " + Arrays.toString(samples));
        }
    }

    @Test
    void percentileOfNothingIsNaNAndNonsenseIsRefused() {
        assertTrue(Double.isNaN(Percentiles.nearestRankUnsorted(new long[0], 50)));
        assertTrue(Double.isNaN(Percentiles.nearestRank(new long[4], 0, 50)), "a sink nothing was recorded into");
        assertTrue(Double.isNaN(Percentiles.nearestRankUnsorted(new long[4], 0, 99)));
        assertThrows(IllegalArgumentException.class, () -> Percentiles.nearestRankUnsorted(new long[] {1}, 0));
        assertThrows(IllegalArgumentException.class, () -> Percentiles.nearestRankUnsorted(new long[] {1}, 101));
        assertEquals(1, Percentiles.nearestRankUnsorted(new long[] {1}, 100));
        assertThrows(IllegalArgumentException.class, () -> Percentiles.nearestRank(new long[2], 3, 50), "more than the array");
        assertThrows(IllegalArgumentException.class, () -> Percentiles.nearestRank(new long[2], -1, 50));
        assertThrows(IllegalArgumentException.class, () -> Percentiles.nearestRankUnsorted(new long[2], 3, 50));
        assertThrows(IllegalArgumentException.class, () -> Percentiles.nearestRankUnsorted(new long[2], -1, 50));
        assertEquals(0, Percentiles.nearestRank(new long[2], 2, 50), "the whole array counts");
    }
}
