package org.nxia.device.vmbus.internal;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The randomized property test of the VMBus server: {@code -Dnxia.vmbus.fuzz.sequences} sequences
 * (default 60,000) of {@value VmbusFuzzer#STEPS} hostile inputs each, over a million in all. A
 * failure names its seed; add it to {@code src/test/resources/vmbus-corpus/fuzz-seeds.txt} so it
 * is replayed on every build after.
 */
class VmbusFuzzTest {

    /** Fixed, so every run checks the same cases; change it to explore further. */
    private static final long MASTER_SEED = 0x6e786961_766d6275L;
    private static final int SEQUENCES = Integer.getInteger("nxia.vmbus.fuzz.sequences", 60_000);

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void everyHostileInputGetsAStatusAndTheServerStaysBounded() {
        VmbusFuzzer fuzzer = new VmbusFuzzer();
        Random seeds = new Random(MASTER_SEED);
        long start = System.nanoTime();
        int threadsBefore = Thread.activeCount();
        for (int i = 0; i < SEQUENCES; i++) {
            fuzzer.run(seeds.nextLong());
        }
        // every server's threads (its VP's ack thread) end when it closes: none pile up
        long by = System.nanoTime() + 10_000_000_000L;
        while (Thread.activeCount() > threadsBefore + 8 && System.nanoTime() < by) {
            Thread.onSpinWait();
        }
        assertTrue(Thread.activeCount() <= threadsBefore + 8, "threads left: " + Thread.activeCount() + ", before: " + threadsBefore);
        System.out.printf("vmbus fuzz: %,d inputs in %,d sequences, %,d ms: %,d posts taken, %,d refused, %,d channels left open,"
                + " %,d closed for a broken ring%n", fuzzer.cases, SEQUENCES, (System.nanoTime() - start) / 1_000_000, fuzzer.accepted,
                fuzzer.refused, fuzzer.opened, fuzzer.broken);
        // the mix must reach each outcome, or the generator has drifted
        assertTrue(fuzzer.accepted > fuzzer.cases / 10, "too few posts taken: " + fuzzer.accepted);
        assertTrue(fuzzer.refused > fuzzer.cases / 100, "too few posts refused: " + fuzzer.refused);
        assertTrue(fuzzer.opened > SEQUENCES / 100, "too few channels opened: " + fuzzer.opened);
        assertTrue(fuzzer.broken > SEQUENCES / 1000, "too few rings broken: " + fuzzer.broken);
    }

    /** Seeds that once failed, or that reach a case worth keeping: replayed on every build. */
    @Test
    void theCorpusReplays() throws IOException {
        VmbusFuzzer fuzzer = new VmbusFuzzer();
        int seeds = 0;
        try (InputStream in = Objects.requireNonNull(getClass().getClassLoader().getResourceAsStream("vmbus-corpus/fuzz-seeds.txt"),
                "vmbus-corpus/fuzz-seeds.txt is missing from the test resources")) {
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList()) {
                String seed = line.replaceFirst("#.*", "").strip();
                if (!seed.isEmpty()) {
                    fuzzer.run(Long.decode(seed));
                    seeds++;
                }
            }
        }
        assertTrue(seeds > 0, "an empty corpus");
    }
}
