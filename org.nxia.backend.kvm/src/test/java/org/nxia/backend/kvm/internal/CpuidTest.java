package org.nxia.backend.kvm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.nxia.backend.kvm.internal.KvmAbi.KVM_CPUID2;
import static org.nxia.backend.kvm.internal.KvmAbi.KVM_CPUID_ENTRY2;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

/** The CPUID tables a vCPU gets, built from tables laid out as KVM returns them. */
class CpuidTest {

    private final Arena arena = Arena.ofAuto();

    /** A struct kvm_cpuid2 of entries {function, eax}. */
    private MemorySegment table(int[]... entries) {
        MemorySegment t = arena.allocate(KVM_CPUID2.byteSize() + entries.length * KVM_CPUID_ENTRY2.byteSize(), 8);
        t.set(ValueLayout.JAVA_INT, 0, entries.length);
        for (int i = 0; i < entries.length; i++) {
            long at = KVM_CPUID2.byteSize() + i * KVM_CPUID_ENTRY2.byteSize();
            t.set(ValueLayout.JAVA_INT, at + KvmAbi.offset(KVM_CPUID_ENTRY2, "function"), entries[i][0]);
            t.set(ValueLayout.JAVA_INT, at + KvmAbi.offset(KVM_CPUID_ENTRY2, "eax"), entries[i][1]);
        }
        return t;
    }

    private static List<String> entries(MemorySegment t) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < t.get(ValueLayout.JAVA_INT, 0); i++) {
            long at = KVM_CPUID2.byteSize() + i * KVM_CPUID_ENTRY2.byteSize();
            out.add(Integer.toHexString(t.get(ValueLayout.JAVA_INT, at + KvmAbi.offset(KVM_CPUID_ENTRY2, "function"))) + "="
                    + t.get(ValueLayout.JAVA_INT, at + KvmAbi.offset(KVM_CPUID_ENTRY2, "eax")));
        }
        return out;
    }

    @Test
    void hyperVsLeavesTakeThePlaceOfKvmsAndTheRestStays() {
        MemorySegment kvm = table(new int[] {0, 0xd}, new int[] {1, 7}, new int[] {0x4000_0000, 0x4000_0001},
                new int[] {0x4000_0001, 0x1234}, new int[] {0x4000_00ff, 9}, new int[] {0x4000_0100, 10}, new int[] {0x8000_0000, 11});
        MemorySegment hv = table(new int[] {0x4000_0000, 0x4000_000a}, new int[] {0x4000_0001, 0x31237648},
                new int[] {0x4000_0003, 0x2ff});
        assertEquals(List.of("0=13", "1=7", "40000100=10", "80000000=11", "40000000=1073741834", "40000001=824407624", "40000003=767"),
                entries(Cpuid.withHyperV(kvm, hv, arena)));
    }

    @Test
    void theVendorIsMicrosoftsNotKvmsHyperVSignature() {
        MemorySegment hv = table(new int[] {0x4000_0000, 0x4000_000a}, new int[] {0x4000_0001, 0x31237648});
        long o = KvmAbi.offset(KVM_CPUID_ENTRY2, "ebx");
        long first = KVM_CPUID2.byteSize();
        // KVM's own: "Linux KVM Hv"
        hv.set(ValueLayout.JAVA_INT, first + o, 0x756e_694c);
        MemorySegment t = Cpuid.withHyperV(table(new int[] {1, 7}), hv, arena);
        long vendor = first + KVM_CPUID_ENTRY2.byteSize();   // after leaf 1
        byte[] name = new byte[12];
        for (int r = 0; r < 3; r++) {
            int v = t.get(ValueLayout.JAVA_INT, vendor + o + 4L * r);
            for (int b = 0; b < 4; b++) {
                name[4 * r + b] = (byte) (v >>> (8 * b));
            }
        }
        assertEquals("Microsoft Hv", new String(name, java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(0x31237648, t.get(ValueLayout.JAVA_INT, vendor + KVM_CPUID_ENTRY2.byteSize() + KvmAbi.offset(KVM_CPUID_ENTRY2, "eax")),
                "the interface leaf stays KVM's: Hv#1");
    }

    @Test
    void eachVcpuGetsItsApicIdAndTheHypervisorBit() {
        MemorySegment supported = table(new int[] {1, 7}, new int[] {0xb, 0}, new int[] {0x8000_001e, 0});
        long first = KVM_CPUID2.byteSize();
        long ebx = KvmAbi.offset(KVM_CPUID_ENTRY2, "ebx");
        supported.set(ValueLayout.JAVA_INT, first + ebx, 0x5508_0800);   // another APIC id, CLFLUSH size and count kept
        MemorySegment t = Cpuid.forVcpu(supported, 3, arena);
        assertEquals(0x0308_0800, t.get(ValueLayout.JAVA_INT, first + ebx));
        assertEquals(Cpuid.ECX_HYPERVISOR, t.get(ValueLayout.JAVA_INT, first + KvmAbi.offset(KVM_CPUID_ENTRY2, "ecx")));
        assertEquals(3, t.get(ValueLayout.JAVA_INT, first + KVM_CPUID_ENTRY2.byteSize() + KvmAbi.offset(KVM_CPUID_ENTRY2, "edx")));
        assertEquals(3, t.get(ValueLayout.JAVA_INT, first + 2 * KVM_CPUID_ENTRY2.byteSize() + KvmAbi.offset(KVM_CPUID_ENTRY2, "eax")),
                "AMD's extended APIC id leaf");
        assertEquals(0x5508_0800, supported.get(ValueLayout.JAVA_INT, first + ebx), "KVM's table is copied, not changed");
    }
}
