package org.nxia.vmm.internal;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import java.lang.foreign.MemorySegment;
import java.util.Comparator;

import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.Partition;
import org.nxia.vmm.spi.SharedMapping;

/**
 * A VM's Portal window: regions mapped first fit at aligned addresses, each in
 * a slot its name keeps for the VM's life (the guest finds a portal by slot).
 * Bounded by its slot count.
 */
final class PortalWindow {

    /** One mapped region (the host's view of it, and its file if it has one) and the aligned span it occupies. */
    record Slot(String name, long gpa, long span, MemorySegment region, Optional<Path> file, SharedMapping mapping) {
    }

    private final String vmId;
    private final Partition partition;
    private final GuestMemory memory;
    private final VmKind kind;
    private final VmKind.Windows windows;
    private final String[] names;
    private final Slot[] slots;
    private int named;
    private boolean closed;

    PortalWindow(String vmId, Partition partition, GuestMemory memory, VmKind kind) {
        this.vmId = vmId;
        this.partition = partition;
        this.memory = memory;
        this.kind = kind;
        this.windows = kind.windows();
        this.names = new String[windows.portalSlots()];
        this.slots = new Slot[windows.portalSlots()];
    }

    synchronized SharedMapping map(String name, MemorySegment region, Optional<Path> file, boolean readOnly, long doorbellGpa) {
        int index = slotOf(name);
        if (slots[index] != null) {
            throw new IllegalArgumentException("portal '" + name + "' is already mapped into " + vmId);
        }
        long align = windows.portalAlign();
        long span = (region.byteSize() + align - 1) & -align;
        long gpa = freeRange(span);
        if (gpa < 0) {
            throw new IllegalArgumentException("the portal window (%d MiB at 0x%x) has no free %d MiB for '%s'"
                    .formatted(windows.portalSize() >> 20, windows.portalBase(), span >> 20, name));
        }
        SharedMapping kernel = partition.mapShared(gpa, region, readOnly);
        SharedMapping mapping = new SharedMapping() {
            @Override
            public long gpa() {
                return kernel.gpa();
            }

            @Override
            public long size() {
                return kernel.size();
            }

            @Override
            public boolean readOnly() {
                return kernel.readOnly();
            }

            @Override
            public void close() {
                if (release(index, this)) {
                    kernel.close();
                }
            }
        };
        slots[index] = new Slot(name, gpa, span, region, file, mapping);
        kind.portalMapped(memory, index, name, gpa, region.byteSize(), doorbellGpa, readOnly);
        return mapping;
    }

    private int slotOf(String name) {
        for (int i = 0; i < named; i++) {
            if (names[i].equals(name)) {
                return i;
            }
        }
        if (named == names.length) {
            throw new IllegalArgumentException("this VM has room for " + names.length + " portals");
        }
        names[named] = name;
        return named++;
    }

    private synchronized boolean release(int index, SharedMapping mapping) {
        if (slots[index] == null || slots[index].mapping() != mapping) {
            return false;
        }
        slots[index] = null;
        if (!closed) {
            kind.portalUnmapped(memory, index);
        }
        return true;
    }

    /** First fit in aligned steps; -1 when no hole is {@code span} long. */
    private long freeRange(long span) {
        long align = windows.portalAlign();
        long end = windows.portalBase() + windows.portalSize();
        for (long at = windows.portalBase(); at + span <= end; at += align) {
            Slot overlap = overlapping(at, span);
            if (overlap == null) {
                return at;
            }
            at = overlap.gpa() + overlap.span() - align;
        }
        return -1;
    }

    private Slot overlapping(long at, long span) {
        for (Slot s : slots) {
            if (s != null && at < s.gpa() + s.span() && s.gpa() < at + span) {
                return s;
            }
        }
        return null;
    }

    /** The slot whose span holds {@code address}, for an error message; null if none. */
    synchronized Slot at(long address) {
        return overlapping(address, 1);
    }

    /** From now on the memory is going away: closing a mapping no longer writes the guest's table. */
    synchronized void close() {
        closed = true;
    }

    /** The regions mapped now, in ascending guest addresses. */
    synchronized List<Slot> slots() {
        List<Slot> out = new ArrayList<>();
        for (Slot s : slots) {
            if (s != null) {
                out.add(s);
            }
        }
        out.sort(Comparator.comparingLong(Slot::gpa));
        return out;
    }

}
