package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The randomized packet-stream test: {@code nxia.vsock.fuzz.cases} cases
 * (default 10^5; 10^6 with -Dnxia.vsock.fuzz.cases=1000000), each a burst of
 * packets from a hostile guest and actions of a host peer, in streams of
 * {@value #CASES_PER_STREAM} on one device. A failure names its stream seed;
 * add {@code stream SEED CASES} to a file in {@code src/test/resources/vsock-corpus/}
 * so it is replayed forever after.
 */
class VsockStreamFuzzTest {

    private static final long MASTER_SEED = 0x6e786961_76736f63L;
    private static final int CASES = Integer.getInteger("nxia.vsock.fuzz.cases", 100_000);
    static final int CASES_PER_STREAM = 1000;

    /** Replays one stream on a fresh device; the device and every host resource are closed after. */
    static VsockStreamFuzzer runStream(long seed, int cases) throws Exception {
        try (VsockStreamFuzzer fuzzer = new VsockStreamFuzzer()) {
            Random r = new Random(seed);
            fuzzer.flood = r.nextInt(4) == 0;
            for (int i = 0; i < cases; i++) {
                fuzzer.runCase(r);
            }
            return fuzzer;
        } catch (Exception | AssertionError e) {
            throw new AssertionError("vsock stream seed " + seed + " (" + cases + " cases): " + e, e);
        }
    }

    static long fds() throws Exception {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    static long heapAfterGc() {
        System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    static long heap() {
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    @Test
    @Timeout(value = 900, unit = TimeUnit.SECONDS)
    void everyPacketStreamKeepsTheDeviceWithinItsBounds() throws Exception {
        runStream(1, 10);   // warm up: classes loaded, selector provider open, before the baseline
        long fdsBefore = fds();
        int threadsBefore = Thread.activeCount();
        long heapBefore = heapAfterGc();
        long fdsPeak = fdsBefore;
        int threadsPeak = threadsBefore;
        long heapPeak = heapBefore;
        long sent = 0;
        long received = 0;
        int maxConnections = 0;
        Random seeds = new Random(MASTER_SEED);
        long start = System.nanoTime();
        for (int done = 0; done < CASES; done += CASES_PER_STREAM) {
            long seed = seeds.nextLong();
            int cases = Math.min(CASES_PER_STREAM, CASES - done);
            VsockStreamFuzzer f = runStream(seed, cases);
            sent += f.packetsSent;
            received += f.packetsReceived;
            maxConnections = Math.max(maxConnections, f.maxConnections);
            fdsPeak = Math.max(fdsPeak, f.fdsPeak);
            threadsPeak = Math.max(threadsPeak, f.threadsPeak);
            heapPeak = Math.max(heapPeak, f.heapPeak);
        }
        long millis = (System.nanoTime() - start) / 1_000_000;
        Thread.sleep(200);   // the devices' I/O threads end after close
        long fdsAfter = fds();
        int threadsAfter = Thread.activeCount();
        long heapAfter = heapAfterGc();
        System.out.printf("vsock stream fuzz: %,d cases (%,d packets from the guest, %,d to it) in %,d ms, 0 crashes, "
                        + "at most %d connections; fds %d -> %d -> %d; threads %d -> %d -> %d; heap %,d -> %,d -> %,d bytes%n",
                CASES, sent, received, millis, maxConnections, fdsBefore, fdsPeak, fdsAfter,
                threadsBefore, threadsPeak, threadsAfter, heapBefore, heapPeak, heapAfter);
        // the guest's share of the 32 slots: 4 stay the host's (VirtioVsock.HOST_RESERVED)
        assertTrue(CASES < 10 * CASES_PER_STREAM || maxConnections == 28, "the generator reaches the guest's connection bound: " + maxConnections);
        // 32 live connections of 4 pipe fds, up to 64 released ones whose 2 device-side fds wait for the selector
        // (32 tracked, 32 released while those are full), the host peer's 32 streams of 2, the selector's own
        assertTrue(fdsPeak <= fdsBefore + 32 * 4 + 64 * 2 + 32 * 2 + 8, "fds " + fdsBefore + " -> peak " + fdsPeak);
        assertTrue(fdsAfter <= fdsBefore, "fds " + fdsBefore + " -> after " + fdsAfter);
        assertTrue(threadsAfter <= threadsBefore, "threads " + threadsBefore + " -> after " + threadsAfter);
        assertTrue(heapAfter <= heapBefore + (32 << 20), "heap " + heapBefore + " -> after " + heapAfter);
    }
}
