package org.nxia.vmm.internal;

import java.lang.foreign.MemorySegment;

import org.nxia.vmm.spi.DirtyLog;
import org.nxia.vmm.spi.GuestMemory;

/**
 * Guest memory as the VMM (host calls, the micro-VM's ports, devices) sees it,
 * noting, once {@link #start} was called, every page it hands out a view of.
 * The hypervisor's dirty log sees only the vCPUs' writes; a reset in place
 * must also undo the VMM's, and every VMM access goes through
 * {@link #slice}. A view may be read only: counting it is merely
 * conservative (the page is rewritten with the bytes it already holds).
 * Marking sets bits in a preallocated bitmap: nothing on the exit path
 * allocates for it.
 */
final class WrittenPages implements GuestMemory {

    private final GuestMemory ram;
    private final long[] bitmap;
    private volatile boolean tracking;

    WrittenPages(GuestMemory ram) {
        this.ram = ram;
        this.bitmap = new long[words(ram.size())];
    }

    /** Bitmap words for {@code bytes} of RAM, one bit per {@link DirtyLog#PAGE}. */
    static int words(long bytes) {
        return Math.toIntExact((bytes / DirtyLog.PAGE + 63) / 64);
    }

    /** From now on, views handed out count as written. */
    void start() {
        tracking = true;
    }

    /** ORs the pages noted since the last call into {@code out} and forgets them. Call while no vCPU runs. */
    synchronized void drainInto(long[] out) {
        for (int i = 0; i < bitmap.length; i++) {
            out[i] |= bitmap[i];
            bitmap[i] = 0;
        }
    }

    @Override
    public long base() {
        return ram.base();
    }

    @Override
    public long size() {
        return ram.size();
    }

    @Override
    public MemorySegment slice(long address, long length) {
        MemorySegment view = ram.slice(address, length);   // checks the range first
        if (tracking && length > 0) {
            mark(address - ram.base(), length);
        }
        return view;
    }

    private synchronized void mark(long offset, long length) {
        for (long page = offset / DirtyLog.PAGE, last = (offset + length - 1) / DirtyLog.PAGE; page <= last; page++) {
            bitmap[(int) (page >>> 6)] |= 1L << page;
        }
    }
}
