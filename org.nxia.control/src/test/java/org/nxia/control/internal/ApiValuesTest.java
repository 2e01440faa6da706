package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.control.api.Confinement;
import org.nxia.control.api.ControlException.Code;
import org.nxia.control.api.ExecRequest.WindowSize;
import org.nxia.control.api.Generation;
import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.vmm.spi.DescriptorTable;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.spi.PartitionState;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;
import org.nxia.vmm.spi.VcpuState;
import org.nxia.vmm.api.VmSnapshot;

/** The control API's values at the edges of what they take, and what they say of themselves. */
class ApiValuesTest {

    private static byte[] filled(int n, int value) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) value);
        return b;
    }

    @Test
    void aWindowSizeIsOneTo65535EachWay() {
        for (int[] ok : new int[][] {{1, 1}, {0xffff, 0xffff}, {1, 0xffff}, {0xffff, 1}})
            assertEquals(ok[0], new WindowSize(ok[0], ok[1]).rows());
        for (int[] bad : new int[][] {{0, 1}, {1, 0}, {0x10000, 1}, {1, 0x10000}})
            assertEquals("window size out of range: " + bad[0] + "x" + bad[1],
                    assertThrows(IllegalArgumentException.class, () -> new WindowSize(bad[0], bad[1])).getMessage());
    }

    @Test
    void syscallNumbersZeroToTheLargestAreTaken() {
        assertEquals(List.of(0, Confinement.MAX_SYSCALL), List.copyOf(Confinement.NONE.denying(Confinement.MAX_SYSCALL, 0).deniedSyscalls()));
    }

    @Test
    void anUnknownWireCodeIsAProtocolError() {
        assertEquals(Code.PROTOCOL, Code.of(99));
        assertEquals(Code.PROTOCOL, Code.of(-1));
        for (Code c : Code.values())
            assertEquals(c, Code.of(c.wire()));
    }

    @Test
    void aGenerationTakesSeedsOf32To256AndSecretsOf16To64Bytes() {
        for (int seed : new int[] {Generation.MIN_SEED, Generation.MAX_SEED})
            for (int secret : new int[] {Generation.MIN_SECRET, Generation.MAX_SECRET}) {
                Generation g = new Generation(1, new byte[seed], new byte[secret]);
                assertEquals(seed, g.seed().length);
                assertEquals(secret, g.secret().length);
            }
    }

    @Test
    void generationsAreEqualByValue() {
        Generation g = new Generation(5, filled(32, 1), filled(16, 2));
        Generation same = new Generation(5, filled(32, 1), filled(16, 2));
        assertEquals(g, same);
        assertEquals(g.hashCode(), same.hashCode());
        assertNotEquals(g, new Generation(6, filled(32, 1), filled(16, 2)));
        assertNotEquals(g, new Generation(5, filled(32, 3), filled(16, 2)));
        assertNotEquals(g, new Generation(5, filled(32, 1), filled(16, 3)));
        assertFalse(g.equals("Generation[5]"));
        assertFalse(g.equals(null));
        // that differ in number or seed hash apart
        assertNotEquals(g.hashCode(), new Generation(6, filled(32, 1), filled(16, 2)).hashCode());
        assertNotEquals(new Generation(1, filled(32, 1), filled(16, 2)).hashCode(), new Generation(2, filled(32, 1), filled(16, 2)).hashCode());
        assertNotEquals(g.hashCode(), new Generation(5, filled(32, 3), filled(16, 2)).hashCode());
    }

    @Test
    void aSnapshotKeepsItsOwnSecretAndNeverShowsIt() {
        LinuxProfile profile = LinuxProfile.of(Path.of("/boot/bzImage"), Path.of("/boot/initramfs"));
        Segment seg = new Segment(0, 0xfffff, 0x10, 11, true, 0, false, true, true, true, false);
        VcpuState vcpu = new VcpuState(0, new Registers(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x1000, 2),
                new SpecialRegisters(seg, seg, seg, seg, seg, seg, seg, seg, new DescriptorTable(0, 0), new DescriptorTable(0, 0),
                        0x80050033L, 0, 0, 0x20, 0, 0xd01, 0xfee00900L), List.of());
        VmSnapshot vm = new VmSnapshot(profile, "kvm", List.of(), List.of(vcpu), new PartitionState(List.of()), List.of());
        byte[] secret = filled(32, 7);
        SystemVmSnapshot s = new SystemVmSnapshot(profile, vm, secret, 0);
        secret[0] = 1;
        assertArrayEquals(filled(32, 7), s.secret(), "its own copy");
        s.secret()[0] = 1;
        assertArrayEquals(filled(32, 7), s.secret(), "and hands out copies");
        assertEquals("SystemVmSnapshot[bzImage, generation 0, 0 RAM chunks]", s.toString());
        assertTrue(new SystemVmSnapshot(profile, vm, secret, 4).toString().contains("generation 4"));
        assertEquals("a generation is 0 or later, not -1",
                assertThrows(IllegalArgumentException.class, () -> new SystemVmSnapshot(profile, vm, secret, -1)).getMessage());
        assertThrows(NullPointerException.class, () -> new SystemVmSnapshot(null, vm, secret, 0));
        assertThrows(NullPointerException.class, () -> new SystemVmSnapshot(profile, null, secret, 0));
    }
}
