package org.nxia.vmm.spi;

import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * Everything a vCPU needs to go on where it was paused: the registers in the
 * API's own records and the rest (FPU/XSAVE, control registers, MSRs, local
 * APIC, run state, pending events, debug registers) as {@link StatePart}s
 * that only the backend that saved them interprets. A backend refuses a
 * state it cannot take whole, saying which part.
 *
 * @param id       the vCPU it was saved from
 * @param registers the general registers, RIP and RFLAGS
 * @param special  the segment, table and control registers
 * @param parts    the backend's parts, names unique, in the order the backend restores them
 */
public record VcpuState(int id, Registers registers, SpecialRegisters special, List<StatePart> parts) {

    public VcpuState {
        Objects.requireNonNull(registers, "registers");
        Objects.requireNonNull(special, "special");
        parts = List.copyOf(parts);
        Set<String> names = new HashSet<>();
        for (StatePart p : parts) {
            if (!names.add(p.name())) {
                throw new IllegalArgumentException("vCPU " + id + " state has part '" + p.name() + "' twice");
            }
        }
    }

    /** The part named {@code name}, if saved. */
    public Optional<StatePart> part(String name) {
        return parts.stream().filter(p -> p.name().equals(name)).findFirst();
    }
}
