package org.nxia.shell.support;

import java.util.Arrays;
import java.util.Locale;

/**
 * The arithmetic of every {@code bench:*} table, in one place so that both
 * sides of a comparison are computed the same way: the median of repeated
 * samples as a baseline, and one ratio whose direction is the same in every
 * row. Percentiles, of the C floor's raw samples too, come from
 * {@link org.nxia.vmm.bench.Percentiles}, the one definition that
 * {@code control:bench} and {@code bench:gemini} use as well.
 */
public final class BenchStats {

    /** The heading of every ratio column: {@link #speedRatio} is at least 1 where NXIA does as well as its peer. */
    public static final String RATIO_HEADING = "speed vs peer (>= 1 is better)";

    private BenchStats() {
    }

    /** The median of repeated samples: the middle one, or the mean of the two middle ones; NaN for none. */
    public static double median(double... samples) {
        if (samples.length == 0) {
            return Double.NaN;
        }
        double[] s = samples.clone();
        Arrays.sort(s);
        int mid = s.length / 2;
        return s.length % 2 == 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
    }

    /** {@link #median(double...)} of integral samples (nanoseconds). */
    public static double median(long[] samples) {
        return median(Arrays.stream(samples).asDoubleStream().toArray());
    }

    /** The mean; NaN for none. */
    public static double mean(long[] samples) {
        return Arrays.stream(samples).average().orElse(Double.NaN);
    }

    /**
     * How fast NXIA is next to its peer, the same way round in every row: for a
     * rate (MiB/s, exits/s) {@code ours / peer}, for a time (µs, ns)
     * {@code peer / ours}. At least 1 means as fast or faster. NaN where either
     * figure is missing or not positive.
     */
    public static double speedRatio(double ours, double peer, boolean higherIsBetter) {
        if (!(ours > 0) || !(peer > 0)) {
            return Double.NaN;
        }
        return higherIsBetter ? ours / peer : peer / ours;
    }

    /** A rate: {@code count} events over {@code ticks} of a clock running at {@code hz}. */
    public static double perSecond(long count, long ticks, double hz) {
        return ticks > 0 && hz > 0 ? count / (ticks / hz) : Double.NaN;
    }

    /** Ticks of a clock running at {@code hz}, in microseconds. */
    public static double micros(double ticks, double hz) {
        return hz > 0 ? ticks / hz * 1e6 : Double.NaN;
    }

    /** A figure for a table: grouped integers from 100 up, two decimals below; "n/a" for NaN. */
    public static String fmt(double v) {
        if (Double.isNaN(v) || Double.isInfinite(v)) {
            return "n/a";
        }
        return Math.abs(v) >= 100 ? String.format(Locale.ROOT, "%,.0f", v) : String.format(Locale.ROOT, "%.2f", v);
    }

    /** A {@link #speedRatio} for a table: "1.23x", or "n/a". */
    public static String fmtRatio(double ratio) {
        return Double.isNaN(ratio) || Double.isInfinite(ratio) ? "n/a" : String.format(Locale.ROOT, "%.2fx", ratio);
    }
}
