package org.nxia.vmm.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReferenceArray;

import org.nxia.vmm.spi.HostAffinity;
import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.spi.PlacementOutcome;

/**
 * Pins vCPU {@code i}'s thread to host CPU {@code cpus[i % cpus.size()]} while that vCPU runs, and
 * says what took effect. A placement the host cannot honour is refused when the VM is made; a pin
 * the host refuses later (a CPU gone offline) ends the VM with the host's reason. Threads are pooled,
 * so each one gets its own affinity back when its vCPU stops.
 */
final class VcpuPinning {

    private static final System.Logger LOG = System.getLogger("org.nxia.vmm");

    private final List<Integer> cpus;
    private final HostAffinity affinity;
    /** Per vCPU: the CPUs its thread was read back to run on once pinned; null before. */
    private final AtomicReferenceArray<List<Integer>> pinned;

    private VcpuPinning(List<Integer> cpus, HostAffinity affinity, int vcpus) {
        this.cpus = cpus;
        this.affinity = affinity;
        this.pinned = new AtomicReferenceArray<>(vcpus);
    }

    /**
     * @throws IllegalArgumentException if the backend cannot pin, or a CPU is not one this process
     *         may run on (out of the host's range or outside its cpuset), saying which it may use
     */
    static VcpuPinning of(HostPlacement placement, int vcpus, Optional<HostAffinity> backend, String backendName) {
        if (placement.cpus().isEmpty()) {
            return new VcpuPinning(List.of(), null, vcpus);
        }
        HostAffinity affinity = backend.orElseThrow(() -> new IllegalArgumentException("the " + backendName
                + " backend cannot pin vCPU threads to host CPUs; remove cpus from the profile"));
        List<Integer> allowed = affinity.allowedCpus();
        List<Integer> missing = new ArrayList<>(placement.cpus());
        missing.removeAll(allowed);
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException("host CPUs " + list(missing) + " are not ones this process may run on (it may run on "
                    + list(allowed) + "); change the profile's cpus");
        }
        return new VcpuPinning(placement.cpus(), affinity, vcpus);
    }

    /** Pins the calling thread for {@code vcpu}; returns the affinity to give back, null when not pinned. */
    List<Integer> pin(int vcpu) {
        if (cpus.isEmpty()) {
            return null;
        }
        List<Integer> before = affinity.threadCpus();
        int cpu = cpus.get(vcpu % cpus.size());
        try {
            affinity.pinThread(List.of(cpu));
        } catch (RuntimeException e) {
            throw new IllegalStateException("vCPU " + vcpu + " could not be pinned to host CPU " + cpu + ": " + e.getMessage(), e);
        }
        pinned.set(vcpu, affinity.threadCpus());
        return before;
    }

    /** Gives the calling thread back {@code before}, from {@link #pin}; never throws (it runs as the VM ends). */
    void unpin(List<Integer> before) {
        if (before == null) {
            return;
        }
        try {
            affinity.pinThread(before);
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "pooled vCPU thread " + Thread.currentThread().getName()
                    + " keeps its pinned CPU: " + e.getMessage());
        }
    }

    PlacementOutcome outcome() {
        if (cpus.isEmpty()) {
            return new PlacementOutcome(PlacementOutcome.CPUS, false, false, "any (not pinned)");
        }
        StringBuilder each = new StringBuilder();
        boolean all = true;
        boolean any = false;
        for (int i = 0; i < pinned.length(); i++) {
            List<Integer> seen = pinned.get(i);
            List<Integer> wanted = List.of(cpus.get(i % cpus.size()));
            all &= wanted.equals(seen);
            any |= seen != null;
            each.append(i == 0 ? "" : ", ").append("vcpu").append(i).append(" on ").append(seen == null ? "-" : list(seen));
        }
        if (!any) {
            return new PlacementOutcome(PlacementOutcome.CPUS, true, false, list(cpus) + " requested: pinned when the vCPUs run");
        }
        return new PlacementOutcome(PlacementOutcome.CPUS, true, all, list(cpus) + (all ? " pinned (" : " requested, not all pinned (")
                + each + ")");
    }

    /** "0,1" as asked; runs of three or more as ranges ("0-63"), so a 4096-CPU host stays one line. */
    static String list(List<Integer> cpus) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < cpus.size(); ) {
            int j = i;
            while (j + 1 < cpus.size() && cpus.get(j + 1) == cpus.get(j) + 1) {
                j++;
            }
            s.append(s.isEmpty() ? "" : ",").append(cpus.get(i));
            if (j - i >= 2) {
                s.append('-').append(cpus.get(j));
                i = j + 1;
            } else {
                i++;
            }
        }
        return s.toString();
    }
}
