package org.nxia.backend.kvm.internal;

import java.util.List;

import org.nxia.vmm.spi.HostAffinity;

/** Thread affinity through sched_setaffinity/sched_getaffinity on the calling thread's tid (gettid). */
final class KvmAffinity implements HostAffinity {

    @Override
    public List<Integer> allowedCpus() {
        // the process's main thread (tid = pid): a pooled thread may be pinned at the moment
        return Libc.schedGetaffinity(Libc.getpid());
    }

    @Override
    public List<Integer> threadCpus() {
        return Libc.schedGetaffinity(Libc.gettid());
    }

    @Override
    public void pinThread(List<Integer> cpus) {
        Libc.schedSetaffinity(Libc.gettid(), cpus);
    }
}
