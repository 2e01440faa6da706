package org.nxia.backend.kvm.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.spi.HypervisorInfo.Flavour;

/**
 * Finds out what KVM is on this host: hardware VMX/SVM or PVM, and for PVM
 * which control MSR a guest writes to run natively. The PVM variant is
 * detected at run time (signature MSR), not assumed.
 */
final class KvmProbe {

    /** Reads "PVM" (0x4d5650) on the PVM build this project's test bench runs. */
    static final int PVM_SIGNATURE_MSR = 0x4b564d11;
    static final long PVM_SIGNATURE = 0x4d5650L;
    /** Holds the PVCS page address; a guest writing it switches to native mode. */
    static final int PVM_CONTROL_MSR = 0x4b564d10;

    private KvmProbe() {
    }

    static HypervisorInfo probe() {
        Flavour fromModules = flavourFromModules();
        KvmSystem system;
        try {
            system = KvmSystem.open();
        } catch (KvmException e) {
            return new HypervisorInfo("kvm", fromModules, false, e.getMessage(), 0);
        }
        try (system) {
            if (fromModules == Flavour.PVM || fromModules == Flavour.UNKNOWN) {
                return probePvm(system, fromModules);
            }
            return new HypervisorInfo("kvm", fromModules, true,
                    "KVM API " + system.apiVersion() + ", " + fromModules.label() + ": guests run on hardware virtualization", 0);
        } catch (KvmException e) {
            return new HypervisorInfo("kvm", fromModules, false, "KVM probe failed: " + e.getMessage(), 0);
        }
    }

    private static HypervisorInfo probePvm(KvmSystem system, Flavour fromModules) {
        try (KvmPartition partition = new KvmPartition(system, 2L << 20, HostPlacement.NONE, KvmBackend.kickSignal());
             var vcpu = partition.createVcpu(0)) {
            long signature;
            try {
                signature = vcpu.readMsr(PVM_SIGNATURE_MSR);
            } catch (KvmException e) {
                signature = -1;
            }
            if (signature == PVM_SIGNATURE) {
                return new HypervisorInfo("kvm", Flavour.PVM, true,
                        "KVM API %d, kvm_pvm: signature MSR 0x%x reads 'PVM'; guests enter native mode by writing MSR 0x%x"
                                .formatted(system.apiVersion(), PVM_SIGNATURE_MSR, PVM_CONTROL_MSR), PVM_CONTROL_MSR);
            }
            String why = fromModules == Flavour.PVM
                    ? "kvm_pvm is loaded but its signature MSR 0x%x is not readable: an unknown PVM variant, guests will run emulated (slow)"
                            .formatted(PVM_SIGNATURE_MSR)
                    : "no kvm_intel, kvm_amd or kvm_pvm module found; treating KVM as unknown";
            return new HypervisorInfo("kvm", fromModules, true, "KVM API " + system.apiVersion() + ", " + why, 0);
        }
    }

    static Flavour flavourFromModules() {
        if (Files.isDirectory(Path.of("/sys/module/kvm_intel"))) {
            return Flavour.HARDWARE_VMX;
        }
        if (Files.isDirectory(Path.of("/sys/module/kvm_amd"))) {
            return Flavour.HARDWARE_SVM;
        }
        if (Files.isDirectory(Path.of("/sys/module/kvm_pvm"))) {
            return Flavour.PVM;
        }
        return Flavour.UNKNOWN;
    }

    /** Turns a failed open of /dev/kvm into one line that says why and what to do. */
    static String explainOpenFailure(KvmException e) {
        String base = KvmSystem.DEVICE + ": " + Libc.strerror(e.errno()) + ". ";
        return switch (e.errno()) {
            case 2 -> base + (pvmGuestWithoutKvm()
                    ? "kvm_pvm is built in but registered no device: this kernel is itself a PVM guest and PVM does not nest. "
                    + "Run NXIA on a host with hardware virtualization (VMX/SVM) or a kvm_pvm host."
                    : "KVM is not available: load kvm_intel or kvm_amd (modprobe), enable virtualization in the firmware, "
                    + "or run on a host that offers KVM.");
            case 13, 1 -> base + "Add your user to the 'kvm' group (usermod -aG kvm $USER, then log in again) or run as root.";
            default -> base + "Check that KVM works on this host (ls -l /dev/kvm; dmesg | grep -i kvm).";
        };
    }

    private static boolean pvmGuestWithoutKvm() {
        if (!Files.isDirectory(Path.of("/sys/module/kvm_pvm"))) {
            return false;
        }
        try {
            return Files.readAllLines(Path.of("/proc/misc")).stream().noneMatch(l -> l.trim().endsWith(" kvm"));
        } catch (IOException e) {
            return false;
        }
    }
}
