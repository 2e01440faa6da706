package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The CPUID table one vCPU gets: KVM_GET_SUPPORTED_CPUID with this vCPU's
 * APIC id in every leaf that reports it, and the hypervisor bit set. Linux
 * matches these ids against the MP table's processor entries; a table where
 * every vCPU says APIC id 0 brings up one CPU.
 */
final class Cpuid {

    private static final long O_FUNCTION = offset(KVM_CPUID_ENTRY2, "function");
    private static final long O_EAX = offset(KVM_CPUID_ENTRY2, "eax");
    private static final long O_EBX = offset(KVM_CPUID_ENTRY2, "ebx");
    private static final long O_ECX = offset(KVM_CPUID_ENTRY2, "ecx");
    private static final long O_EDX = offset(KVM_CPUID_ENTRY2, "edx");

    static final int LEAF_FEATURES = 1;
    static final int LEAF_TOPOLOGY = 0xb;
    static final int LEAF_TOPOLOGY_V2 = 0x1f;
    static final int LEAF_AMD_TOPOLOGY = 0x8000_001e;
    static final int ECX_HYPERVISOR = 1 << 31;

    private Cpuid() {
    }

    /** A copy of {@code supported} (a struct kvm_cpuid2) for vCPU {@code apicId}. */
    static MemorySegment forVcpu(MemorySegment supported, int apicId, Arena arena) {
        int count = supported.get(ValueLayout.JAVA_INT, 0);
        long size = KVM_CPUID2.byteSize() + count * KVM_CPUID_ENTRY2.byteSize();
        MemorySegment table = arena.allocate(size, 8);
        MemorySegment.copy(supported, 0, table, 0, size);
        for (int i = 0; i < count; i++) {
            MemorySegment e = table.asSlice(KVM_CPUID2.byteSize() + i * KVM_CPUID_ENTRY2.byteSize(), KVM_CPUID_ENTRY2.byteSize());
            switch (e.get(ValueLayout.JAVA_INT, O_FUNCTION)) {
                case LEAF_FEATURES -> {
                    int ebx = e.get(ValueLayout.JAVA_INT, O_EBX);
                    e.set(ValueLayout.JAVA_INT, O_EBX, (ebx & 0x00ff_ffff) | (apicId << 24));
                    e.set(ValueLayout.JAVA_INT, O_ECX, e.get(ValueLayout.JAVA_INT, O_ECX) | ECX_HYPERVISOR);
                }
                case LEAF_TOPOLOGY, LEAF_TOPOLOGY_V2 -> e.set(ValueLayout.JAVA_INT, O_EDX, apicId);
                case LEAF_AMD_TOPOLOGY -> e.set(ValueLayout.JAVA_INT, O_EAX, apicId);
                default -> {
                    // other leaves are the same on every vCPU
                }
            }
        }
        return table;
    }
}
