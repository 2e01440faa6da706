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

    /** The hypervisor leaves: KVM's own ("KVMKVMKVM") or, for a Hyper-V partition, Hyper-V's ("Microsoft Hv"). */
    static final int HYPERVISOR_LEAVES = 0x4000_0000;
    static final int HYPERVISOR_LEAVES_END = 0x4000_0100;

    /**
     * A CPUID table KVM fills ({@code request}: KVM_GET_SUPPORTED_CPUID of the system,
     * KVM_GET_SUPPORTED_HV_CPUID of a vCPU), asked with room for {@code first} entries and again
     * with twice the room while KVM says E2BIG, up to {@code max}.
     */
    static MemorySegment query(int fd, long request, String name, int first, int max, Arena arena) {
        for (int entries = first; entries <= max; entries *= 2) {
            MemorySegment cpuid = arena.allocate(KVM_CPUID2.byteSize() + entries * KVM_CPUID_ENTRY2.byteSize(), 8);
            cpuid.set(ValueLayout.JAVA_INT, 0, entries);
            try {
                Libc.ioctl(fd, request, cpuid, name);
                return cpuid;
            } catch (KvmException e) {
                if (e.errno() != Libc.E2BIG) {
                    throw e;
                }
            }
        }
        throw new KvmException("ioctl(" + name + ")", Libc.E2BIG, "more than " + max + " CPUID entries");
    }

    /** "Microsoft Hv" in EBX, ECX, EDX: the vendor a guest's Hyper-V code looks for in leaf 0x40000000. */
    static final int[] MICROSOFT_HV = {0x7263_694d, 0x666f_736f, 0x7648_2074};

    /**
     * {@code supported} (a struct kvm_cpuid2) with its hypervisor leaves replaced by {@code hyperV}'s
     * (KVM_GET_SUPPORTED_HV_CPUID): a guest that found KVM's signature as well would take the
     * hypervisor for KVM (Linux looks for it in every 0x100 leaves above 0x40000000). KVM signs its
     * Hyper-V leaves "Linux KVM Hv", which no Hyper-V guest takes for Hyper-V: the vendor becomes
     * "Microsoft Hv", as QEMU's default hv-vendor-id does.
     */
    static MemorySegment withHyperV(MemorySegment supported, MemorySegment hyperV, Arena arena) {
        int count = supported.get(ValueLayout.JAVA_INT, 0);
        int hvCount = hyperV.get(ValueLayout.JAVA_INT, 0);
        long entry = KVM_CPUID_ENTRY2.byteSize();
        MemorySegment table = arena.allocate(KVM_CPUID2.byteSize() + (count + hvCount) * entry, 8);
        int n = 0;
        for (int i = 0; i < count; i++) {
            MemorySegment e = supported.asSlice(KVM_CPUID2.byteSize() + i * entry, entry);
            int function = e.get(ValueLayout.JAVA_INT, O_FUNCTION);
            if (Integer.compareUnsigned(function, HYPERVISOR_LEAVES) >= 0 && Integer.compareUnsigned(function, HYPERVISOR_LEAVES_END) < 0) {
                continue;
            }
            MemorySegment.copy(e, 0, table, KVM_CPUID2.byteSize() + n++ * entry, entry);
        }
        for (int i = 0; i < hvCount; i++) {
            long at = KVM_CPUID2.byteSize() + n++ * entry;
            MemorySegment.copy(hyperV, KVM_CPUID2.byteSize() + i * entry, table, at, entry);
            if (table.get(ValueLayout.JAVA_INT, at + O_FUNCTION) == HYPERVISOR_LEAVES) {
                table.set(ValueLayout.JAVA_INT, at + O_EBX, MICROSOFT_HV[0]);
                table.set(ValueLayout.JAVA_INT, at + O_ECX, MICROSOFT_HV[1]);
                table.set(ValueLayout.JAVA_INT, at + O_EDX, MICROSOFT_HV[2]);
            }
        }
        table.set(ValueLayout.JAVA_INT, 0, n);
        return table;
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
