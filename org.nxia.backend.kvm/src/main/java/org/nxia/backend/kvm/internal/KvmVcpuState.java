package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

import org.nxia.vmm.spi.StatePart;

/**
 * The parts of a KVM vCPU's state beyond its general and special registers,
 * each saved whole as the kernel's struct: XSAVE (or the legacy FPU area),
 * XCRs, the MSRs KVM lists, the local APIC, the MP state, pending events and
 * the debug registers. Which parts a vCPU has depends on the host
 * ({@link Support}); a restored part is checked against it before any is set.
 */
final class KvmVcpuState {

    static final String XSAVE = "xsave";
    static final String FPU = "fpu";
    static final String XCRS = "xcrs";
    static final String MSRS = "msrs";
    static final String LAPIC = "lapic";
    static final String MP_STATE = "mp_state";
    static final String VCPU_EVENTS = "vcpu_events";
    static final String DEBUGREGS = "debugregs";

    /** kvm_vcpu_events.flags: also set the pending NMI and the SIPI vector (GET does not mark them valid). */
    private static final int EVENTS_FLAGS_OFFSET = 20;
    private static final int KVM_VCPUEVENT_VALID_NMI_PENDING = 0x1;
    private static final int KVM_VCPUEVENT_VALID_SIPI_VECTOR = 0x2;
    private static final long MSR_ENTRY = KVM_MSR_ENTRY.byteSize();

    /**
     * What this host's KVM can save for a vCPU of one partition, asked once.
     *
     * @param xsaveSize   bytes of the XSAVE area, 0 where KVM has no XSAVE (the legacy FPU area is saved instead)
     * @param msrIndices  the MSRs KVM_GET_MSR_INDEX_LIST names (kept sorted)
     * @param lapic       whether the partition has an in-kernel local APIC
     */
    record Support(int xsaveSize, boolean xcrs, boolean mpState, boolean events, boolean debugregs, int[] msrIndices,
                   boolean lapic) {

        Support {
            msrIndices = msrIndices.clone();
            Arrays.sort(msrIndices);   // for the binary search of a restored MSR
        }

        static Support of(int vmFd, int[] msrIndices, boolean lapic) {
            int xsave = 0;
            if (cap(vmFd, KVM_CAP_XSAVE)) {
                xsave = Math.max((int) KVM_XSAVE.byteSize(), Libc.ioctl(vmFd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2, "KVM_CHECK_EXTENSION"));
            }
            return new Support(xsave, cap(vmFd, KVM_CAP_XCRS), cap(vmFd, KVM_CAP_MP_STATE), cap(vmFd, KVM_CAP_VCPU_EVENTS),
                    cap(vmFd, KVM_CAP_DEBUGREGS), msrIndices, lapic);
        }

        private static boolean cap(int vmFd, int cap) {
            return Libc.ioctl(vmFd, KVM_CHECK_EXTENSION, cap, "KVM_CHECK_EXTENSION") > 0;
        }

        /** The parts a vCPU of this host saves, in the order they are restored, and each one's size (-1: a list of MSRs). */
        Map<String, Integer> parts() {
            Map<String, Integer> out = new LinkedHashMap<>();
            if (xsaveSize > 0) {
                out.put(XSAVE, xsaveSize);
            } else {
                out.put(FPU, (int) KVM_FPU.byteSize());
            }
            if (xcrs) {
                out.put(XCRS, (int) KVM_XCRS.byteSize());
            }
            out.put(MSRS, -1);
            if (lapic) {
                out.put(LAPIC, (int) KVM_LAPIC_STATE.byteSize());
            }
            if (mpState) {
                out.put(MP_STATE, (int) KVM_MP_STATE.byteSize());
            }
            if (events) {
                out.put(VCPU_EVENTS, (int) KVM_VCPU_EVENTS.byteSize());
            }
            if (debugregs) {
                out.put(DEBUGREGS, (int) KVM_DEBUGREGS.byteSize());
            }
            return out;
        }
    }

    private KvmVcpuState() {
    }

    /** Every part {@code support} names, read from vCPU {@code id}. */
    static List<StatePart> save(int fd, int id, Support support) {
        List<StatePart> parts = new ArrayList<>();
        try (Arena a = Arena.ofConfined()) {
            for (Map.Entry<String, Integer> p : support.parts().entrySet()) {
                String name = p.getKey();
                byte[] bytes = name.equals(MSRS) ? readMsrs(fd, id, support.msrIndices(), a)
                        : get(fd, id, name, getIoctl(name, support), a.allocate(p.getValue(), 8));
                parts.add(new StatePart(name, bytes));
            }
        }
        return parts;
    }

    /**
     * Checks every part of {@code parts} against {@code support}: a part this
     * host does not have, a wrong size, an MSR KVM does not list.
     *
     * @throws IllegalArgumentException naming the first bad part
     */
    static void check(int id, Support support, List<StatePart> parts) {
        Map<String, Integer> known = support.parts();
        for (StatePart p : parts) {
            Integer size = known.get(p.name());
            if (size == null) {
                throw new IllegalArgumentException("vCPU %d state part '%s' is not one this host's KVM has (it has %s)"
                        .formatted(id, p.name(), known.keySet()));
            }
            if (size >= 0 && p.size() != size) {
                throw new IllegalArgumentException("vCPU %d state part '%s' is %d bytes; this host's KVM needs %d"
                        .formatted(id, p.name(), p.size(), size));
            }
            if (size < 0) {
                checkMsrs(id, p, support.msrIndices());
            }
        }
    }

    /** Sets the parts {@link #check} accepted, in the order KVM needs them. */
    static void restore(int fd, int id, Support support, List<StatePart> parts) {
        Map<String, StatePart> byName = parts.stream().collect(Collectors.toMap(StatePart::name, Function.identity()));
        try (Arena a = Arena.ofConfined()) {
            for (String name : support.parts().keySet()) {
                StatePart p = byName.get(name);
                if (p == null) {
                    continue;   // left as created
                }
                if (name.equals(MSRS)) {
                    writeMsrs(fd, id, p, a);
                    continue;
                }
                MemorySegment s = a.allocate(Math.max(p.size(), 8), 8);
                MemorySegment.copy(p.bytes(), 0, s, ValueLayout.JAVA_BYTE, 0, p.size());
                if (name.equals(VCPU_EVENTS)) {
                    int flags = s.get(ValueLayout.JAVA_INT, EVENTS_FLAGS_OFFSET);
                    s.set(ValueLayout.JAVA_INT, EVENTS_FLAGS_OFFSET,
                            flags | KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR);
                }
                set(fd, id, name, setIoctl(name), s);
            }
        }
    }

    private static long getIoctl(String part, Support support) {
        return switch (part) {
            case XSAVE -> support.xsaveSize() > KVM_XSAVE.byteSize() ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
            case FPU -> KVM_GET_FPU;
            case XCRS -> KVM_GET_XCRS;
            case LAPIC -> KVM_GET_LAPIC;
            case MP_STATE -> KVM_GET_MP_STATE;
            case VCPU_EVENTS -> KVM_GET_VCPU_EVENTS;
            case DEBUGREGS -> KVM_GET_DEBUGREGS;
            default -> throw new IllegalArgumentException(part);
        };
    }

    private static long setIoctl(String part) {
        return switch (part) {
            case XSAVE -> KVM_SET_XSAVE;   // KVM reads the whole area its KVM_CAP_XSAVE2 size names
            case FPU -> KVM_SET_FPU;
            case XCRS -> KVM_SET_XCRS;
            case LAPIC -> KVM_SET_LAPIC;
            case MP_STATE -> KVM_SET_MP_STATE;
            case VCPU_EVENTS -> KVM_SET_VCPU_EVENTS;
            case DEBUGREGS -> KVM_SET_DEBUGREGS;
            default -> throw new IllegalArgumentException(part);
        };
    }

    private static byte[] get(int fd, int id, String part, long ioctl, MemorySegment buffer) {
        try {
            Libc.ioctl(fd, ioctl, buffer, "KVM_GET " + part);
        } catch (KvmException e) {
            throw refused(e, id, "save", part);
        }
        return buffer.toArray(ValueLayout.JAVA_BYTE);
    }

    private static void set(int fd, int id, String part, long ioctl, MemorySegment buffer) {
        try {
            Libc.ioctl(fd, ioctl, buffer, "KVM_SET " + part);
        } catch (KvmException e) {
            throw refused(e, id, "restore", part);
        }
    }

    private static KvmException refused(KvmException e, int id, String what, String part) {
        return new KvmException(e.call(), e.errno(), "this host's KVM refuses to %s vCPU %d's %s: %s"
                .formatted(what, id, part, e.getMessage()));
    }

    /** KVM_GET_MSRS stops at the first MSR it cannot read: skip that one and go on, keeping the rest. */
    private static byte[] readMsrs(int fd, int id, int[] indices, Arena a) {
        MemorySegment msrs = a.allocate(KVM_MSRS.byteSize() + indices.length * MSR_ENTRY, 8);
        MemorySegment entries = msrs.asSlice(KVM_MSRS.byteSize());
        MemorySegment out = a.allocate(Math.max(1, indices.length) * MSR_ENTRY, 8);
        int kept = 0;
        int next = 0;
        while (next < indices.length) {
            int count = indices.length - next;
            msrs.set(ValueLayout.JAVA_INT, 0, count);
            for (int i = 0; i < count; i++) {
                entries.set(ValueLayout.JAVA_INT, i * MSR_ENTRY, indices[next + i]);
                entries.set(ValueLayout.JAVA_INT, i * MSR_ENTRY + 4, 0);
                entries.set(ValueLayout.JAVA_LONG, i * MSR_ENTRY + 8, 0L);
            }
            int read;
            try {
                read = Libc.ioctl(fd, KVM_GET_MSRS, msrs, "KVM_GET_MSRS");
            } catch (KvmException e) {
                throw refused(e, id, "save", MSRS);
            }
            MemorySegment.copy(entries, 0, out, kept * MSR_ENTRY, read * MSR_ENTRY);
            kept += read;
            next += read + 1;   // the one at 'read' is not readable on this vCPU
        }
        return out.asSlice(0, kept * MSR_ENTRY).toArray(ValueLayout.JAVA_BYTE);
    }

    private static void checkMsrs(int id, StatePart p, int[] hostIndices) {
        if (p.size() % MSR_ENTRY != 0 || p.size() / MSR_ENTRY > hostIndices.length) {
            throw new IllegalArgumentException("vCPU %d state part 'msrs' is %d bytes: not a list of at most %d MSRs of %d bytes"
                    .formatted(id, p.size(), hostIndices.length, MSR_ENTRY));
        }
        MemorySegment s = MemorySegment.ofArray(p.bytes());
        for (long at = 0; at < s.byteSize(); at += MSR_ENTRY) {
            int index = s.get(ValueLayout.JAVA_INT_UNALIGNED, at);
            if (Arrays.binarySearch(hostIndices, index) < 0) {
                throw new IllegalArgumentException("vCPU %d state sets MSR 0x%x, which this host's KVM does not list"
                        .formatted(id, index));
            }
        }
    }

    /**
     * KVM_SET_MSRS stops at the first MSR it refuses. A refused MSR whose value
     * the new vCPU already has loses nothing and is passed over (KVM lists
     * MSRs, such as MSR_KVM_POLL_CONTROL, whose host writes a vCPU may refuse
     * while they hold their reset value); any other refusal fails, naming it.
     */
    private static void writeMsrs(int fd, int id, StatePart p, Arena a) {
        int count = p.size() / (int) MSR_ENTRY;
        MemorySegment saved = a.allocate(Math.max(p.size(), 1), 8);
        MemorySegment.copy(p.bytes(), 0, saved, ValueLayout.JAVA_BYTE, 0, p.size());
        MemorySegment msrs = a.allocate(KVM_MSRS.byteSize() + Math.max(p.size(), MSR_ENTRY), 8);
        int next = 0;
        while (next < count) {
            msrs.set(ValueLayout.JAVA_INT, 0, count - next);
            MemorySegment.copy(saved, next * MSR_ENTRY, msrs, KVM_MSRS.byteSize(), (count - next) * MSR_ENTRY);
            int written;
            try {
                written = Libc.ioctl(fd, KVM_SET_MSRS, msrs, "KVM_SET_MSRS");
            } catch (KvmException e) {
                throw refused(e, id, "restore", MSRS);
            }
            next += written;
            if (next == count) {
                return;
            }
            int index = saved.get(ValueLayout.JAVA_INT, next * MSR_ENTRY);
            long value = saved.get(ValueLayout.JAVA_LONG, next * MSR_ENTRY + 8);
            long[] current = readOne(fd, index, a);
            if (current.length == 0 || current[0] != value) {
                throw new KvmException("ioctl(KVM_SET_MSRS)", 0, ("this host's KVM refuses to restore vCPU %d's MSR 0x%x to 0x%x"
                        + " (the new vCPU has %s; %d of %d MSRs set)").formatted(id, index, value,
                        current.length == 0 ? "it unreadable" : "0x%x".formatted(current[0]), next, count));
            }
            next++;
        }
    }

    /** The MSR's value on this vCPU, or nothing if KVM does not read it. */
    private static long[] readOne(int fd, int index, Arena a) {
        MemorySegment one = a.allocate(KVM_MSRS.byteSize() + MSR_ENTRY, 8);
        one.set(ValueLayout.JAVA_INT, 0, 1);
        one.set(ValueLayout.JAVA_INT, KVM_MSRS.byteSize(), index);
        try {
            return Libc.ioctl(fd, KVM_GET_MSRS, one, "KVM_GET_MSRS") == 1
                    ? new long[] {one.get(ValueLayout.JAVA_LONG, KVM_MSRS.byteSize() + 8)} : new long[0];
        } catch (KvmException e) {
            return new long[0];
        }
    }
}
