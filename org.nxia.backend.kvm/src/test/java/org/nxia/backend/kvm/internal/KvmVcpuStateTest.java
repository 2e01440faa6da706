package org.nxia.backend.kvm.internal;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.StatePart;

/** A restored vCPU state is checked against what this host's KVM has before any part is set. */
class KvmVcpuStateTest {

    private static final KvmVcpuState.Support HOST = new KvmVcpuState.Support(4096, true, true, true, true,
            new int[] {0x10, 0x174, 0xc0000080}, false);

    private static StatePart part(String name, int size) {
        return new StatePart(name, new byte[size]);
    }

    private static StatePart msrs(int... indices) {
        ByteBuffer b = ByteBuffer.allocate(16 * indices.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int index : indices) {
            b.putInt(index).putInt(0).putLong(0x1234);
        }
        return new StatePart("msrs", b.array());
    }

    @Test
    void theHostsOwnPartsPass() {
        assertDoesNotThrow(() -> KvmVcpuState.check(0, HOST, List.of(part("xsave", 4096), part("xcrs", 392),
                msrs(0x10, 0xc0000080), part("mp_state", 4), part("vcpu_events", 64), part("debugregs", 128))));
    }

    @Test
    void aPartOfTheWrongSizeIsRefusedNamingIt() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KvmVcpuState.check(1, HOST, List.of(part("xsave", 4096), part("vcpu_events", 63))));
        assertEquals("vCPU 1 state part 'vcpu_events' is 63 bytes; this host's KVM needs 64", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KvmVcpuState.check(0, HOST, List.of(part("xsave", 8192))));
    }

    @Test
    void aPartThisHostLacksIsRefused() {
        // saved where the VM had an in-kernel local APIC, restored into one without
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KvmVcpuState.check(0, HOST, List.of(part("lapic", 1024))));
        assertTrue(e.getMessage().startsWith("vCPU 0 state part 'lapic' is not one this host's KVM has"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KvmVcpuState.check(0, HOST, List.of(part("fpu", 416))));
    }

    @Test
    void msrsMustBeWholeEntriesThatKvmLists() {
        assertThrows(IllegalArgumentException.class, () -> KvmVcpuState.check(0, HOST, List.of(part("msrs", 17))));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KvmVcpuState.check(0, HOST, List.of(msrs(0x10, 0x4b564d10))));
        assertEquals("vCPU 0 state sets MSR 0x4b564d10, which this host's KVM does not list", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KvmVcpuState.check(0, HOST, List.of(msrs(0x10, 0x10, 0x10, 0x10))),
                "more entries than KVM lists");
    }

    @Test
    void theLegacyFpuAreaStandsInWhereKvmHasNoXsave() {
        KvmVcpuState.Support noXsave = new KvmVcpuState.Support(0, false, true, true, true, new int[0], true);
        assertEquals(List.of("fpu", "msrs", "lapic", "mp_state", "vcpu_events", "debugregs"), List.copyOf(noXsave.parts().keySet()));
        assertDoesNotThrow(() -> KvmVcpuState.check(0, noXsave, List.of(part("fpu", 416), part("lapic", 1024))));
    }
}
