package org.nxia.vmm.spi;

import java.util.Arrays;
import java.util.HexFormat;
import java.util.Objects;

/**
 * One named part of a saved vCPU or partition state whose bytes only the
 * backend that wrote it understands (an x86 FPU area, a local APIC page, a
 * list of MSRs). Immutable: the bytes are copied in and out.
 *
 * @param name  the backend's name for the part, e.g. {@code xsave}
 * @param bytes the part, as the backend encodes it
 */
public record StatePart(String name, byte[] bytes) {

    public StatePart {
        Objects.requireNonNull(name, "name");
        bytes = bytes.clone();
    }

    @Override
    public byte[] bytes() {
        return bytes.clone();
    }

    /** The size in bytes, without a copy. */
    public int size() {
        return bytes.length;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof StatePart p && p.name.equals(name) && Arrays.equals(p.bytes, bytes);
    }

    @Override
    public int hashCode() {
        return 31 * name.hashCode() + Arrays.hashCode(bytes);
    }

    @Override
    public String toString() {
        return name + "[" + bytes.length + " bytes: "
                + HexFormat.of().formatHex(bytes, 0, Math.min(bytes.length, 16)) + (bytes.length > 16 ? "…" : "") + "]";
    }
}
