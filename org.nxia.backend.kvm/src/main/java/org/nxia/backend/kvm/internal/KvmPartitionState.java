package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.nxia.vmm.spi.PartitionState;
import org.nxia.vmm.spi.StatePart;

/**
 * A KVM VM's state outside RAM and vCPUs: the two PICs and the IOAPIC
 * (KVM_GET_IRQCHIP, each chip's 512-byte union), the PIT (KVM_GET_PIT2) where
 * the VM has the in-kernel interrupt controller, and the KVM clock
 * (KVM_GET_CLOCK), which every VM has; and the CPU features its guest may
 * use ({@link CpuFeatures}), which a restore checks against this host's.
 */
final class KvmPartitionState {

    static final String PIC_MASTER = "pic_master";
    static final String PIC_SLAVE = "pic_slave";
    static final String IOAPIC = "ioapic";
    static final String PIT = "pit";
    static final String CLOCK = "clock";
    static final String CPU_FEATURES = "cpu_features";

    private static final long CHIP = offset(KVM_IRQCHIP, "chip");
    private static final int CHIP_SIZE = (int) (KVM_IRQCHIP.byteSize() - CHIP);
    private static final long CLOCK_FLAGS = offset(KVM_CLOCK_DATA, "flags");

    private KvmPartitionState() {
    }

    /** The parts a VM saves, in restore order, with their sizes. */
    private static Map<String, Integer> parts(boolean irqchip) {
        Map<String, Integer> out = new LinkedHashMap<>();
        if (irqchip) {
            out.put(PIC_MASTER, CHIP_SIZE);
            out.put(PIC_SLAVE, CHIP_SIZE);
            out.put(IOAPIC, CHIP_SIZE);
            out.put(PIT, (int) KVM_PIT_STATE2.byteSize());
        }
        out.put(CLOCK, (int) KVM_CLOCK_DATA.byteSize());
        out.put(CPU_FEATURES, CpuFeatures.SIZE);
        return out;
    }

    static PartitionState save(int vmFd, boolean irqchip, byte[] cpuFeatures) {
        List<StatePart> parts = new ArrayList<>();
        try (Arena a = Arena.ofConfined()) {
            for (Map.Entry<String, Integer> p : parts(irqchip).entrySet()) {
                String name = p.getKey();
                byte[] bytes = switch (name) {
                    case PIC_MASTER, PIC_SLAVE, IOAPIC -> {
                        MemorySegment chip = a.allocate(KVM_IRQCHIP);
                        chip.set(ValueLayout.JAVA_INT, 0, chipId(name));
                        call(vmFd, KVM_GET_IRQCHIP, chip, "KVM_GET_IRQCHIP", "save", name);
                        yield chip.asSlice(CHIP).toArray(ValueLayout.JAVA_BYTE);
                    }
                    case PIT -> get(vmFd, KVM_GET_PIT2, a.allocate(KVM_PIT_STATE2), "KVM_GET_PIT2", name);
                    case CPU_FEATURES -> cpuFeatures.clone();
                    default -> get(vmFd, KVM_GET_CLOCK, a.allocate(KVM_CLOCK_DATA), "KVM_GET_CLOCK", name);
                };
                parts.add(new StatePart(name, bytes));
            }
        }
        return new PartitionState(parts);
    }

    /**
     * Checks every part (known to this VM, the right size; the saved guest's CPU features all
     * offered by {@code cpuFeatures}, this host's), then sets them. A state without CPU features
     * (saved before they were) is not checked for them.
     */
    static void restore(int vmFd, boolean irqchip, PartitionState state, byte[] cpuFeatures) {
        Map<String, Integer> known = parts(irqchip);
        for (StatePart p : state.parts()) {
            Integer size = known.get(p.name());
            if (size == null) {
                throw new IllegalArgumentException("partition state part '%s' is not one this VM has (it has %s%s)"
                        .formatted(p.name(), known.keySet(), irqchip ? "" : "; no in-kernel interrupt controller"));
            }
            if (p.size() != size) {
                throw new IllegalArgumentException("partition state part '%s' is %d bytes; KVM needs %d"
                        .formatted(p.name(), p.size(), size));
            }
            if (p.name().equals(CPU_FEATURES)) {
                String why = CpuFeatures.missing(p.bytes(), cpuFeatures);
                if (why != null) {
                    throw new IllegalArgumentException("this host cannot take the snapshot: " + why);
                }
            }
        }
        try (Arena a = Arena.ofConfined()) {
            for (String name : known.keySet()) {
                StatePart p = state.part(name).orElse(null);
                if (p == null) {
                    continue;
                }
                switch (name) {
                    case PIC_MASTER, PIC_SLAVE, IOAPIC -> {
                        MemorySegment chip = a.allocate(KVM_IRQCHIP);
                        chip.set(ValueLayout.JAVA_INT, 0, chipId(name));
                        MemorySegment.copy(p.bytes(), 0, chip, ValueLayout.JAVA_BYTE, CHIP, p.size());
                        call(vmFd, KVM_SET_IRQCHIP, chip, "KVM_SET_IRQCHIP", "restore", name);
                    }
                    case PIT -> call(vmFd, KVM_SET_PIT2, a.allocateFrom(ValueLayout.JAVA_BYTE, p.bytes()), "KVM_SET_PIT2",
                            "restore", name);
                    case CPU_FEATURES -> {
                        // checked above; the vCPUs have this host's table, which offers all of them
                    }
                    default -> {
                        MemorySegment clock = a.allocate(KVM_CLOCK_DATA);
                        MemorySegment.copy(p.bytes(), 0, clock, ValueLayout.JAVA_BYTE, 0, p.size());
                        // the clock goes on from the saved value: no time passes for the guest while it was saved
                        clock.asSlice(CLOCK_FLAGS).fill((byte) 0);
                        call(vmFd, KVM_SET_CLOCK, clock, "KVM_SET_CLOCK", "restore", name);
                    }
                }
            }
        }
    }

    private static int chipId(String name) {
        return switch (name) {
            case PIC_MASTER -> KVM_IRQCHIP_PIC_MASTER;
            case PIC_SLAVE -> KVM_IRQCHIP_PIC_SLAVE;
            default -> KVM_IRQCHIP_IOAPIC;
        };
    }

    private static byte[] get(int vmFd, long ioctl, MemorySegment buffer, String call, String part) {
        call(vmFd, ioctl, buffer, call, "save", part);
        return buffer.toArray(ValueLayout.JAVA_BYTE);
    }

    private static void call(int vmFd, long ioctl, MemorySegment buffer, String call, String what, String part) {
        try {
            Libc.ioctl(vmFd, ioctl, buffer, call);
        } catch (KvmException e) {
            throw new KvmException(e.call(), e.errno(), "this host's KVM refuses to %s the VM's %s: %s"
                    .formatted(what, part, e.getMessage()));
        }
    }
}
