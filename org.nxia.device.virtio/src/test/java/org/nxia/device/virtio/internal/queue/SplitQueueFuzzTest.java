package org.nxia.device.virtio.internal.queue;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The randomized property test: a million hostile and well-formed rings, each
 * popped, pushed and notified. A failure names its seed; add that seed to
 * {@code src/test/resources/virtqueue-corpus/} (see its README) so it is
 * replayed forever after.
 */
class SplitQueueFuzzTest {

    /** Fixed, so every run checks the same cases; change it to explore further. */
    private static final long MASTER_SEED = 0x6e786961_76697274L;
    private static final int CASES = Integer.getInteger("nxia.virtqueue.fuzz.cases", 1_000_000);

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void everyRingEitherYieldsInBoundsChainsOrBreaksTheQueue() {
        QueueFuzzer fuzzer = new QueueFuzzer();
        Random seeds = new Random(MASTER_SEED);
        long start = System.nanoTime();
        for (int i = 0; i < CASES; i++) {
            fuzzer.run(seeds.nextLong());
        }
        long millis = (System.nanoTime() - start) / 1_000_000;
        System.out.printf("virtqueue fuzz: %,d cases in %,d ms: %,d chains popped (%,d from uncorrupted rings, each as published),"
                + " %,d geometries refused, %,d queues broken%n",
                CASES, millis, fuzzer.chains, fuzzer.wellFormedAccepted, fuzzer.refusedGeometry, fuzzer.brokenQueues);
        // The mix must exercise all three outcomes, or the generator has drifted.
        assertTrue(fuzzer.chains > CASES / 10, "too few chains popped: " + fuzzer.chains);
        assertTrue(fuzzer.refusedGeometry > CASES / 100, "too few geometries refused: " + fuzzer.refusedGeometry);
        assertTrue(fuzzer.brokenQueues > CASES / 10, "too few queues broken: " + fuzzer.brokenQueues);
        assertTrue(fuzzer.wellFormedAccepted > CASES / 20, "too few uncorrupted rings checked: " + fuzzer.wellFormedAccepted);
    }
}
