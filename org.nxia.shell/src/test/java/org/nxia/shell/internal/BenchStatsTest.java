package org.nxia.shell.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.junit.jupiter.api.Test;
import org.nxia.shell.support.BenchStats;

class BenchStatsTest {

    @Test
    void medianIsTheMiddleOrTheMeanOfTheTwoMiddles() {
        assertEquals(3.0, BenchStats.median(5.0, 1.0, 3.0));
        assertEquals(2.5, BenchStats.median(4.0, 1.0, 3.0, 2.0));
        assertEquals(7.0, BenchStats.median(7.0));
        assertEquals(1.0, BenchStats.median(1.0, 1.0, 100.0), "an outlier does not move the baseline");
        assertTrue(Double.isNaN(BenchStats.median()));
        assertEquals(2_000_000.0, BenchStats.median(new long[] {3_000_000, 1_000_000, 2_000_000}));
        double[] samples = {3, 1, 2};
        BenchStats.median(samples);
        assertArrayEquals(new double[] {3, 1, 2}, samples, "the caller's samples are untouched");
    }

    @Test
    void meanOfSamples() {
        assertEquals(2.5, BenchStats.mean(new long[] {1, 2, 3, 4}));
        assertTrue(Double.isNaN(BenchStats.mean(new long[0])));
    }

    @Test
    void speedRatioIsAtLeastOneWhenNxiaIsAsFastForRatesAndTimesAlike() {
        assertEquals(2.0, BenchStats.speedRatio(200, 100, true), "twice the MiB/s");
        assertEquals(0.5, BenchStats.speedRatio(100, 200, true));
        assertEquals(2.0, BenchStats.speedRatio(50, 100, false), "half the latency");
        assertEquals(0.5, BenchStats.speedRatio(200, 100, false));
        assertEquals(1.0, BenchStats.speedRatio(3, 3, false));
        assertTrue(Double.isNaN(BenchStats.speedRatio(1, 0, true)));
        assertTrue(Double.isNaN(BenchStats.speedRatio(0, 1, false)));
        assertTrue(Double.isNaN(BenchStats.speedRatio(Double.NaN, 1, true)));
        assertTrue(Double.isNaN(BenchStats.speedRatio(1, Double.NaN, false)));
        assertTrue(BenchStats.RATIO_HEADING.contains(">= 1 is better"));
    }

    @Test
    void ticksBecomeRatesAndMicrosecondsAtTheMeasuredTscRate() {
        assertEquals(1_000_000.0, BenchStats.perSecond(2_000_000, 4_000_000_000L, 2e9), 1e-6, "2 M exits in 2 s");
        assertTrue(Double.isNaN(BenchStats.perSecond(1, 0, 2e9)));
        assertTrue(Double.isNaN(BenchStats.perSecond(1, 10, 0)));
        assertEquals(1.0, BenchStats.micros(3000, 3e9), 1e-12);
        assertEquals(2.5, BenchStats.micros(5000, 2e9), 1e-12);
        assertTrue(Double.isNaN(BenchStats.micros(5000, 0)));
    }

    @Test
    void figuresAndRatiosAreFormattedForTables() {
        assertEquals("1,235", BenchStats.fmt(1234.5));
        assertEquals("100", BenchStats.fmt(100));
        assertEquals("12.35", BenchStats.fmt(12.345));
        assertEquals("0.50", BenchStats.fmt(0.5));
        assertEquals("n/a", BenchStats.fmt(Double.NaN));
        assertEquals("n/a", BenchStats.fmt(Double.POSITIVE_INFINITY));
        assertEquals("1.23x", BenchStats.fmtRatio(1.234));
        assertEquals("n/a", BenchStats.fmtRatio(Double.NaN));
        assertEquals("0.50x", BenchCommands.faster(200, 100, false));
        assertEquals("2.00x", BenchCommands.faster(200, 100, true));
    }

    @Test
    void floorSamplesAreLittleEndianUnsigned32BitNanoseconds() {
        ByteBuffer b = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(250).putInt(0xffff_ffff).putInt(1 << 31);
        assertArrayEquals(new long[] {250, 4_294_967_295L, 2_147_483_648L}, BenchCommands.samples(b.array()));
        assertArrayEquals(new long[0], BenchCommands.samples(new byte[3]), "a torn sample is not one");
    }

    @Test
    void theExitsGuestsSpanIsItsTicksWhenItMadeTheAskedExits() {
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(1000).putLong(123_456_789L);
        assertEquals(123_456_789L, BenchCommands.exitsSpan(b.array(), 1000));
        assertEquals(-1, BenchCommands.exitsSpan(b.array(), 999), "another count: not this run's span");
        assertEquals(-1, BenchCommands.exitsSpan(new byte[0], 1000), "an old image writes no output");
        assertEquals(-1, BenchCommands.exitsSpan(new byte[24], 0));
    }
}
