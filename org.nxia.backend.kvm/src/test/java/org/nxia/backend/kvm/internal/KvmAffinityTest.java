package org.nxia.backend.kvm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;

/** sched_setaffinity on a plain thread's tid, read back two ways; no /dev/kvm needed. */
class KvmAffinityTest {

    private final KvmAffinity affinity = new KvmAffinity();

    @Test
    void pinsTheCallingThreadAndReadsItBack() throws Exception {
        List<Integer> allowed = affinity.allowedCpus();
        int last = allowed.getLast();
        AtomicReference<Object[]> seen = new AtomicReference<>();
        Thread t = Thread.ofPlatform().start(() -> {
            try {
                List<Integer> before = affinity.threadCpus();
                affinity.pinThread(List.of(last));
                List<Integer> pinned = affinity.threadCpus();
                String status = Files.readAllLines(Path.of("/proc/thread-self/status")).stream()
                        .filter(l -> l.startsWith("Cpus_allowed_list:")).findFirst().orElseThrow().substring(18).strip();
                affinity.pinThread(before);
                seen.set(new Object[] {before, pinned, status, affinity.threadCpus()});
            } catch (Exception e) {
                seen.set(new Object[] {e});
            }
        });
        t.join();
        Object[] s = seen.get();
        assertEquals(4, s.length, () -> String.valueOf(s[0]));
        assertEquals(allowed, s[0], "a new thread may run where the process may");
        assertEquals(List.of(last), s[1], "sched_getaffinity after the pin");
        assertEquals(String.valueOf(last), s[2], "the kernel's own view of the thread");
        assertEquals(s[0], s[3], "given back");
        assertEquals(allowed, affinity.allowedCpus(), "only that thread was pinned");
    }

    @Test
    void aCpuTheHostDoesNotHaveIsRefusedNamingTheCall() {
        KvmException e = assertThrows(KvmException.class, () -> affinity.pinThread(List.of(4095)));
        assertTrue(e.getMessage().startsWith("sched_setaffinity failed: EINVAL"), e.getMessage());
    }
}
