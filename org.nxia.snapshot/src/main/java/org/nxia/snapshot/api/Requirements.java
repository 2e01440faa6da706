package org.nxia.snapshot.api;

import java.util.Arrays;
import java.util.HexFormat;

/**
 * What a host must offer to restore a snapshot, written into the file's header by the
 * caller and given back unchanged by the reader; this package does not judge it (the VMM
 * compares it with its own host and refuses a mismatch).
 *
 * @param architecture the guest architecture, e.g. {@code x86_64}: 1..32 printable ASCII characters
 * @param backend the hypervisor backend, e.g. {@code kvm}: 1..32 printable ASCII characters
 * @param cpu opaque CPU signature (e.g. the CPUID leaves the guest saw)
 * @param features opaque backend features (e.g. the KVM capabilities the VM used)
 */
public record Requirements(String architecture, String backend, byte[] cpu, byte[] features) {

    /** The most bytes {@link #cpu} and {@link #features} may hold together: the header stays small. */
    public static final int MAX_OPAQUE_BYTES = 4000;

    public Requirements {
        checkName("architecture", architecture);
        checkName("backend", backend);
        cpu = cpu.clone();
        features = features.clone();
        if ((long) cpu.length + features.length > MAX_OPAQUE_BYTES) {
            throw new IllegalArgumentException("cpu and features hold " + (cpu.length + features.length)
                + " bytes, more than " + MAX_OPAQUE_BYTES);
        }
    }

    private static void checkName(String what, String value) {
        if (value.isEmpty() || value.length() > 32) {
            throw new IllegalArgumentException(what + " must be 1..32 characters: '" + value + "'");
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c < 0x21 || c > 0x7e) {
                throw new IllegalArgumentException(what + " must be printable ASCII without spaces: '" + value + "'");
            }
        }
    }

    @Override
    public byte[] cpu() {
        return cpu.clone();
    }

    @Override
    public byte[] features() {
        return features.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Requirements r && architecture.equals(r.architecture) && backend.equals(r.backend)
            && Arrays.equals(cpu, r.cpu) && Arrays.equals(features, r.features);
    }

    @Override
    public int hashCode() {
        return ((architecture.hashCode() * 31 + backend.hashCode()) * 31 + Arrays.hashCode(cpu)) * 31 + Arrays.hashCode(features);
    }

    @Override
    public String toString() {
        return "Requirements[architecture=" + architecture + ", backend=" + backend + ", cpu=" + HexFormat.of().formatHex(cpu)
            + ", features=" + HexFormat.of().formatHex(features) + "]";
    }
}
