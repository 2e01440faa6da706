package org.nxia.portal.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

import org.nxia.portal.api.PortalException;

/** Var handles and checks shared by the Portal structures. */
final class Shared {
    /** (MemorySegment, long offset) → long; aligned, supports atomic access modes. */
    static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    /** (MemorySegment, long offset) → int; aligned, supports atomic access modes. */
    static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();

    private Shared() {
    }

    /** Refuses a segment the ABI cannot be used on (byte order, alignment, read-only). */
    static void checkUsable(MemorySegment segment, String what) {
        if (segment == null) {
            throw new PortalException(what + ": segment is null");
        }
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new PortalException(what + ": the Portal ABI is little-endian; this platform is "
                    + ByteOrder.nativeOrder());
        }
        if (segment.isReadOnly()) {
            throw new PortalException(what + ": segment is read-only; map the region read-write");
        }
        if (segment.maxByteAlignment() < 8) {
            throw new PortalException(what + ": segment must be 8-byte aligned for atomic access (its alignment is "
                    + segment.maxByteAlignment() + "); use a native segment or a long[]-backed heap segment");
        }
    }

    static boolean isPowerOfTwo(long v) {
        return v > 0 && (v & (v - 1)) == 0;
    }

    static long alignUp(long v, long alignment) {
        return (v + alignment - 1) & -alignment;
    }
}
