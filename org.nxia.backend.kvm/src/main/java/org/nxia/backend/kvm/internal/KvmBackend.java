package org.nxia.backend.kvm.internal;

import java.util.Optional;

import org.nxia.vmm.spi.HostAffinity;
import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.spi.Hypervisor;
import org.nxia.vmm.spi.HypervisorException;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.spi.Partition;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;

/**
 * The KVM backend as an OSGi service. It always registers: on a host without
 * KVM, {@link #info()} says why and {@link #createPartition} refuses with the
 * same words.
 */
@Component(service = Hypervisor.class, property = {Hypervisor.BACKEND_PROPERTY + "=kvm", "service.ranking:Integer=100"})
public final class KvmBackend implements Hypervisor {

    private static int kickSignal;
    private static final KvmAffinity AFFINITY = new KvmAffinity();

    private final HypervisorInfo info;
    /** /dev/kvm, open for the backend's lifetime so creating a VM costs one ioctl, not an open. */
    private final KvmSystem system;

    @Activate
    public KvmBackend() {
        HypervisorInfo probed = KvmProbe.probe();
        KvmSystem opened = null;
        if (probed.available()) {
            try {
                opened = KvmSystem.open();
            } catch (KvmException e) {
                probed = new HypervisorInfo(probed.backend(), probed.flavour(), false, e.getMessage(), 0);
            }
        }
        this.info = probed;
        this.system = opened;
    }

    @Deactivate
    void deactivate() {
        if (system != null) {
            system.close();
        }
    }

    /** The real-time signal used to kick vCPU threads out of KVM_RUN; installed once per process. */
    static synchronized int kickSignal() {
        if (kickSignal == 0) {
            int signal = Libc.sigrtmin() + 6;
            Libc.installKickHandler(signal);
            kickSignal = signal;
        }
        return kickSignal;
    }

    @Override
    public HypervisorInfo info() {
        return info;
    }

    @Override
    public Partition createPartition(long ramBytes) {
        return createPartition(ramBytes, HostPlacement.NONE);
    }

    @Override
    public Partition createPartition(long ramBytes, HostPlacement placement) {
        if (system == null) {
            throw new HypervisorException("open(/dev/kvm)", 0, info.detail());
        }
        return new KvmPartition(system, ramBytes, placement, kickSignal());
    }

    @Override
    public Optional<HostAffinity> hostAffinity() {
        return Optional.of(AFFINITY);
    }
}
