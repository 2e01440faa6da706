package org.nxia.portal.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.junit.jupiter.api.Test;

class DoorbellPageTest {

    @Test
    void ringsFromManyVcpusAreAllCounted() throws Exception {
        DoorbellPage bell = new DoorbellPage();
        int threads = 4;
        int each = 5_000_000;   // long enough that the threads really overlap
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> vcpus = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            vcpus.add(Thread.ofPlatform().start(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    return;
                }
                for (int i = 0; i < each; i++) {
                    bell.write(0, 4, 1);   // a guest store: one ring
                }
            }));
        }
        go.countDown();
        for (Thread t : vcpus) {
            t.join();
        }
        assertEquals((long) threads * each, bell.rings(), "no ring lost");
        assertEquals((long) threads * each, bell.read(0, 8));
    }
}
