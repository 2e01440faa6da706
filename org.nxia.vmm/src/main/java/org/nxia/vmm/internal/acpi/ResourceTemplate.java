package org.nxia.vmm.internal.acpi;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Resource descriptors (ACPI 6.3 §6.4) for a device's {@code _CRS}: I/O
 * ports, a 32-bit fixed memory range and an extended interrupt, closed by
 * the end tag inside a buffer, as {@code ResourceTemplate ()} compiles.
 */
final class ResourceTemplate {

    /** Small I/O port descriptor: type 8, length 7. */
    static final int IO = 0x47;
    static final int DECODE_16 = 1;
    static final int MEMORY32_FIXED = 0x86;
    static final int EXTENDED_INTERRUPT = 0x89;
    static final int END_TAG = 0x79;
    static final int MEMORY32_FIXED_LENGTH = 9;
    static final int READ_WRITE = 1;
    /** Extended interrupt flags: consumer, edge-triggered, active-low, shared. */
    static final int CONSUMER = 1;
    static final int EDGE = 1 << 1;
    static final int ACTIVE_LOW = 1 << 2;
    static final int SHARED = 1 << 3;

    /** How a device drives its interrupt line. */
    enum Trigger { EDGE, LEVEL }

    enum Polarity { ACTIVE_HIGH, ACTIVE_LOW }

    private ResourceTemplate() {
    }

    /** {@code ResourceTemplate () { descriptors... }}: a buffer ending in the end tag (checksum 0: not checked). */
    static byte[] of(byte[]... descriptors) {
        return Aml.buffer(Aml.concat(Aml.concat(descriptors), new byte[] {END_TAG, 0}));
    }

    /** {@code IO (Decode16, base, base, 1, length)}: a fixed range of I/O ports. */
    static byte[] io(IsaDevice.IoPorts ports) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).put((byte) IO).put((byte) DECODE_16)
                .putShort((short) ports.base()).putShort((short) ports.base()).put((byte) 1).put((byte) ports.length()).array();
    }

    /** {@code Memory32Fixed (ReadWrite, base, length)}. */
    static byte[] memory32Fixed(long base, long length) {
        if (base < 0 || length <= 0 || base + length > 1L << 32) {
            throw new IllegalArgumentException("Memory32Fixed describes a range below 4 GiB: 0x%x + 0x%x".formatted(base, length));
        }
        return ByteBuffer.allocate(3 + MEMORY32_FIXED_LENGTH).order(ByteOrder.LITTLE_ENDIAN)
                .put((byte) MEMORY32_FIXED).putShort((short) MEMORY32_FIXED_LENGTH).put((byte) READ_WRITE)
                .putInt((int) base).putInt((int) length).array();
    }

    /** {@code Interrupt (ResourceConsumer, trigger, polarity, Exclusive) { gsi }}. */
    static byte[] interrupt(int gsi, Trigger trigger, Polarity polarity) {
        if (gsi < 0) {
            throw new IllegalArgumentException("a GSI is not negative: " + gsi);
        }
        int flags = CONSUMER | (trigger == Trigger.EDGE ? EDGE : 0) | (polarity == Polarity.ACTIVE_LOW ? ACTIVE_LOW : 0);
        int length = 2 + 4;   // flags, count, one interrupt number
        return ByteBuffer.allocate(3 + length).order(ByteOrder.LITTLE_ENDIAN)
                .put((byte) EXTENDED_INTERRUPT).putShort((short) length).put((byte) flags).put((byte) 1).putInt(gsi).array();
    }
}
