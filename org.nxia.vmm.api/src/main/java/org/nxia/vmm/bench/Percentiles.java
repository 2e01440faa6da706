package org.nxia.vmm.bench;

import java.util.Arrays;

/**
 * The one percentile definition of every {@code bench} table (the shell's,
 * {@code control:bench}'s and {@code bench:gemini}'s), so that figures printed
 * side by side are computed alike: the nearest rank, the smallest sample with
 * at least {@code p} % of the samples at or below it. No interpolation: every
 * figure is a sample that was measured.
 */
public final class Percentiles {

    private Percentiles() {
    }

    /**
     * The nearest-rank {@code p}th percentile of {@code sorted[0, count)},
     * which must be sorted ascending; NaN for no samples.
     *
     * @throws IllegalArgumentException if {@code p} is not in 1..100 or
     *         {@code count} is not in 0..{@code sorted.length}
     */
    public static double nearestRank(long[] sorted, int count, int p) {
        if (p <= 0 || p > 100) {
            throw new IllegalArgumentException("percentile " + p + " is not in 1..100");
        }
        if (count < 0 || count > sorted.length) {
            throw new IllegalArgumentException(count + " samples of " + sorted.length);
        }
        if (count == 0) {
            return Double.NaN;
        }
        int rank = (int) ((p * (long) count + 99) / 100);  // ceil(p / 100 * count), exactly
        return sorted[rank - 1];
    }

    /** {@link #nearestRank(long[], int, int)} of {@code samples[0, count)} in any order (a sorted copy). */
    public static double nearestRankUnsorted(long[] samples, int count, int p) {
        if (count < 0 || count > samples.length) {
            throw new IllegalArgumentException(count + " samples of " + samples.length);
        }
        long[] sorted = Arrays.copyOf(samples, count);
        Arrays.sort(sorted);
        return nearestRank(sorted, count, p);
    }

    /** {@link #nearestRank(long[], int, int)} of all {@code samples}, in any order (a sorted copy). */
    public static double nearestRankUnsorted(long[] samples, int p) {
        return nearestRankUnsorted(samples, samples.length, p);
    }
}
