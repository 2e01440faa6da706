package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.HypervisorInfo.Flavour;
import org.nxia.vmm.api.VmState;

class ExecutionModeTest {

    @Test
    void pvmGuestWhoseOnlyEmulationsAreItsExitsIsNative() {
        // measured on a kvm_pvm host: the exits bench's 200000 port writes, each one emulated
        String mode = MicroVm.executionMode(Flavour.PVM, VmState.STOPPED,
                Map.of("insn_emulation", 200_007L, "io_exits", 200_000L, "mmio_exits", 0L));
        assertTrue(mode.startsWith("native"), mode);
    }

    @Test
    void mmioExitsCountAsEmulatedInstructionsToo() {
        String mode = MicroVm.executionMode(Flavour.PVM, VmState.STOPPED,
                Map.of("insn_emulation", 5_000L, "io_exits", 10L, "mmio_exits", 2_500L));
        assertTrue(mode.startsWith("native"), mode);
    }

    /** The rule: at most two emulated instructions per I/O or MMIO exit, plus 64 for the guest's start, is native. */
    @Test
    void theRulesEdgeIsNative() {
        assertTrue(MicroVm.executionMode(Flavour.PVM, VmState.STOPPED,
                Map.of("insn_emulation", 2L * 100 + 64, "io_exits", 100L, "mmio_exits", 0L)).startsWith("native"));
        assertTrue(MicroVm.executionMode(Flavour.PVM, VmState.STOPPED,
                Map.of("insn_emulation", 2L * 100 + 65, "io_exits", 100L, "mmio_exits", 0L)).startsWith("emulated"));
    }

    @Test
    void pvmGuestWithEveryInstructionEmulatedIsEmulated() {
        String mode = MicroVm.executionMode(Flavour.PVM, VmState.STOPPED,
                Map.of("insn_emulation", 1_000_000L, "io_exits", 100L, "mmio_exits", 0L));
        assertTrue(mode.startsWith("emulated"), mode);
    }

    @Test
    void withoutCountersItSaysWhy() {
        assertEquals("not started", MicroVm.executionMode(Flavour.PVM, VmState.CREATED, Map.of()));
        assertEquals("unknown (no insn_emulation counter)",
                MicroVm.executionMode(Flavour.PVM, VmState.RUNNING, Map.of("io_exits", 1L, "mmio_exits", 0L)));
    }

    @Test
    void hardwareVirtualizationIsHardware() {
        assertEquals("hardware", MicroVm.executionMode(Flavour.HARDWARE_SVM, VmState.RUNNING, Map.of()));
    }
}
