package org.nxia.cluster.internal;

import java.lang.foreign.MemorySegment;
import java.util.List;

import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.spi.DescriptorTable;
import org.nxia.vmm.spi.PartitionState;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;
import org.nxia.vmm.spi.VcpuState;

/** A paused micro-VM's snapshot as a VM core saves one: one vCPU in long mode, no devices. */
final class TestSnapshots {

    private TestSnapshots() {
    }

    static VmSnapshot of(VmProfile profile, List<VmSnapshot.RamChunk> ram) {
        Segment code = new Segment(0, 0xfffff, 0x10, 11, true, 0, false, true, true, true, false);
        Segment data = new Segment(0, 0xfffff, 0x18, 3, true, 0, true, true, false, true, false);
        SpecialRegisters special = new SpecialRegisters(code, data, data, data, data, data, code, data,
                new DescriptorTable(0x3000, 0x27), new DescriptorTable(0, 0), 0x80050033L, 7, 0x9000, 0x20, 0, 0xd01, 0xfee00900L);
        Registers regs = new Registers(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x100123, 0x202);
        return new VmSnapshot(profile, "kvm", ram, List.of(new VcpuState(0, regs, special, List.of())), new PartitionState(List.of()),
                List.of());
    }

    /** One page of {@code fill} at guest address 0. */
    static List<VmSnapshot.RamChunk> page(int fill) {
        byte[] b = new byte[4096];
        java.util.Arrays.fill(b, (byte) fill);
        return List.of(new VmSnapshot.RamChunk(0, MemorySegment.ofArray(b)));
    }
}
