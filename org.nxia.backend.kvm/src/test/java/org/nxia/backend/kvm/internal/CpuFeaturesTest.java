package org.nxia.backend.kvm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nxia.backend.kvm.internal.KvmAbi.KVM_CPUID2;
import static org.nxia.backend.kvm.internal.KvmAbi.KVM_CPUID_ENTRY2;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.junit.jupiter.api.Test;

/** The CPU features a snapshot keeps, and the hosts a restore refuses for them. */
class CpuFeaturesTest {

    private final Arena arena = Arena.ofAuto();

    /** A struct kvm_cpuid2 with leaf 0 naming {@code vendor} and the given (leaf, subleaf, eax, ebx, ecx, edx) entries. */
    private MemorySegment table(String vendor, int[]... entries) {
        ByteBuffer v = ByteBuffer.wrap(vendor.getBytes(StandardCharsets.US_ASCII)).order(ByteOrder.LITTLE_ENDIAN);
        int ebx = v.getInt(), edx = v.getInt(), ecx = v.getInt();
        int n = entries.length + 1;
        MemorySegment t = arena.allocate(KVM_CPUID2.byteSize() + n * KVM_CPUID_ENTRY2.byteSize(), 8);
        t.set(ValueLayout.JAVA_INT, 0, n);
        put(t, 0, new int[] {0, 0, 0xd, ebx, ecx, edx});
        for (int i = 0; i < entries.length; i++) {
            put(t, i + 1, entries[i]);
        }
        return t;
    }

    private static void put(MemorySegment t, int i, int[] e) {
        MemorySegment entry = t.asSlice(KVM_CPUID2.byteSize() + i * KVM_CPUID_ENTRY2.byteSize(), KVM_CPUID_ENTRY2.byteSize());
        entry.set(ValueLayout.JAVA_INT, 0, e[0]);    // function
        entry.set(ValueLayout.JAVA_INT, 4, e[1]);    // index
        for (int r = 0; r < 4; r++) {
            entry.set(ValueLayout.JAVA_INT, 12 + 4L * r, e[2 + r]);   // after flags: eax, ebx, ecx, edx
        }
    }

    @Test
    void theSameOrARicherHostTakesTheGuest() {
        byte[] saved = CpuFeatures.of(table("GenuineIntel", new int[] {1, 0, 0, 0, 0x1, 0x2}, new int[] {7, 0, 0, 0x20, 0, 0}));
        byte[] richer = CpuFeatures.of(table("GenuineIntel", new int[] {1, 0, 0, 0, 0x3, 0x2}, new int[] {7, 0, 0, 0x30, 0, 0}));
        assertEquals(CpuFeatures.SIZE, saved.length);
        assertNull(CpuFeatures.missing(saved, saved));
        assertNull(CpuFeatures.missing(saved, richer));
    }

    @Test
    void aFeatureTheHostLacksOrAnotherVendorIsRefusedSayingWhich() {
        byte[] avx2 = CpuFeatures.of(table("AuthenticAMD", new int[] {7, 0, 0, 0x20, 0, 0}, new int[] {0x8000_0001, 0, 0, 0, 0, 1 << 29}));
        byte[] without = CpuFeatures.of(table("AuthenticAMD", new int[] {0x8000_0001, 0, 0, 0, 0, 1 << 29}));
        String why = CpuFeatures.missing(avx2, without);
        assertTrue(why.contains("CPUID.(EAX=7h,ECX=0):EBX bits [5]"), why);
        assertNull(CpuFeatures.missing(without, avx2));
        byte[] intel = CpuFeatures.of(table("GenuineIntel", new int[] {0x8000_0001, 0, 0, 0, 0, 1 << 29}));
        assertTrue(CpuFeatures.missing(without, intel).contains("saved on a AuthenticAMD CPU; this host's is GenuineIntel"));
        assertThrows(IllegalArgumentException.class, () -> CpuFeatures.missing(new byte[3], intel));
    }

    @Test
    void theHypervisorAndOsxsaveBitsSayNothingOfTheGuestsFeatures() {
        byte[] a = CpuFeatures.of(table("GenuineIntel", new int[] {1, 0, 0, 0, Cpuid.ECX_HYPERVISOR | (1 << 27), 0}));
        byte[] b = CpuFeatures.of(table("GenuineIntel", new int[] {1, 0, 0, 0, 0, 0}));
        assertNull(CpuFeatures.missing(a, b));
    }
}
