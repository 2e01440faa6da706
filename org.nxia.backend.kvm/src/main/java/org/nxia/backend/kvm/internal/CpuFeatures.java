package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.KVM_CPUID2;
import static org.nxia.backend.kvm.internal.KvmAbi.KVM_CPUID_ENTRY2;
import static org.nxia.backend.kvm.internal.KvmAbi.offset;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * What a guest of this host may have found in CPUID and used since: the vendor and the feature
 * words of KVM_GET_SUPPORTED_CPUID, which is the table every vCPU gets ({@link Cpuid}). Saved
 * with a VM; a restore where the saved guest had a feature this host's KVM does not offer is
 * refused, as the guest would meet an invalid opcode or a fault in the middle of its work, long
 * after the restore said yes.
 */
final class CpuFeatures {

    /** (leaf, subleaf, register) of each feature word: 0 eax, 1 ebx, 2 ecx, 3 edx. */
    private static final int[][] WORDS = {
        {0x1, 0, 2}, {0x1, 0, 3},                                  // SSE3..AVX, RDRAND; FPU..SSE2
        {0x7, 0, 1}, {0x7, 0, 2}, {0x7, 0, 3}, {0x7, 1, 0},        // AVX2, AVX-512, SHA, ...
        {0xd, 0, 0}, {0xd, 0, 3}, {0xd, 1, 0},                     // XCR0 components, XSAVEOPT/XSAVES
        {0x8000_0001, 0, 2}, {0x8000_0001, 0, 3},                  // LAHF, ABM, SSE4a; NX, 1 GiB pages, RDTSCP, LM
        {0x8000_0008, 0, 1},                                       // AMD: CLZERO, WBNOINVD, ...
    };
    private static final String[] REGISTER = {"EAX", "EBX", "ECX", "EDX"};
    /** Bits that say something of the host, not a feature the guest uses: leaf 1 ECX HYPERVISOR, OSXSAVE. */
    private static final int LEAF1_ECX_IGNORED = Cpuid.ECX_HYPERVISOR | (1 << 27);
    static final int VENDOR_BYTES = 12;
    static final int SIZE = VENDOR_BYTES + 4 * WORDS.length;

    private static final long O_FUNCTION = offset(KVM_CPUID_ENTRY2, "function");
    private static final long O_INDEX = offset(KVM_CPUID_ENTRY2, "index");
    private static final long O_EAX = offset(KVM_CPUID_ENTRY2, "eax");

    private CpuFeatures() {
    }

    /** The features of {@code supported}, a struct kvm_cpuid2 (a leaf it lacks reads as zero). */
    static byte[] of(MemorySegment supported) {
        ByteBuffer out = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        out.putInt(register(supported, 0, 0, 1)).putInt(register(supported, 0, 0, 3)).putInt(register(supported, 0, 0, 2));
        for (int[] w : WORDS) {
            int value = register(supported, w[0], w[1], w[2]);
            out.putInt(w[0] == 1 && w[2] == 2 ? value & ~LEAF1_ECX_IGNORED : value);
        }
        return out.array();
    }

    private static int register(MemorySegment table, int leaf, int subleaf, int reg) {
        int count = table.get(ValueLayout.JAVA_INT, 0);
        for (int i = 0; i < count; i++) {
            MemorySegment e = table.asSlice(KVM_CPUID2.byteSize() + i * KVM_CPUID_ENTRY2.byteSize(), KVM_CPUID_ENTRY2.byteSize());
            if (e.get(ValueLayout.JAVA_INT, O_FUNCTION) == leaf && e.get(ValueLayout.JAVA_INT, O_INDEX) == subleaf) {
                return e.get(ValueLayout.JAVA_INT, O_EAX + 4L * reg);
            }
        }
        return 0;
    }

    /**
     * Why a guest saved with {@code saved} cannot run here, with {@code here}; null when it can
     * (the same vendor, and every saved feature bit offered here too).
     */
    static String missing(byte[] saved, byte[] here) {
        if (saved.length != SIZE || here.length != SIZE) {
            throw new IllegalArgumentException("CPU features are " + SIZE + " bytes, not " + saved.length);
        }
        String savedVendor = vendor(saved);
        String hereVendor = vendor(here);
        if (!savedVendor.equals(hereVendor)) {
            return "the guest was saved on a " + printable(savedVendor) + " CPU; this host's is " + printable(hereVendor);
        }
        ByteBuffer s = ByteBuffer.wrap(saved).order(ByteOrder.LITTLE_ENDIAN).position(VENDOR_BYTES);
        ByteBuffer h = ByteBuffer.wrap(here).order(ByteOrder.LITTLE_ENDIAN).position(VENDOR_BYTES);
        List<String> lacking = new ArrayList<>();
        for (int[] w : WORDS) {
            int lack = s.getInt() & ~h.getInt();
            if (lack != 0) {
                List<Integer> bits = new ArrayList<>();
                for (int b = 0; b < 32; b++) {
                    if ((lack & (1 << b)) != 0) {
                        bits.add(b);
                    }
                }
                lacking.add("CPUID.(EAX=" + Integer.toHexString(w[0]) + "h,ECX=" + w[1] + "):" + REGISTER[w[2]] + " bits " + bits);
            }
        }
        return lacking.isEmpty() ? null
                : "the guest was saved where it could use CPU features this host's KVM does not offer: " + String.join("; ", lacking);
    }

    private static String vendor(byte[] features) {
        return new String(features, 0, VENDOR_BYTES, StandardCharsets.US_ASCII);
    }

    private static String printable(String vendor) {
        return vendor.chars().allMatch(c -> c >= 0x20 && c < 0x7f) ? vendor : "unnamed";
    }
}
