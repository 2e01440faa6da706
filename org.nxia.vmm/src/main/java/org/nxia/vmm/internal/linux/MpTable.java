package org.nxia.vmm.internal.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The Intel MultiProcessor Specification 1.4 tables that tell a kernel
 * without ACPI how many CPUs there are and how ISA interrupts reach the
 * IOAPIC: a floating pointer, then a configuration table with one processor
 * entry per vCPU (APIC id = vCPU id), one ISA bus, the IOAPIC, an interrupt
 * entry per IOAPIC pin (bus IRQ n to pin n, as KVM routes GSIs) and the two
 * local interrupt entries (LINT0 ExtINT, LINT1 NMI).
 */
public final class MpTable {

    public static final int POINTER_SIZE = 16;
    public static final int HEADER_SIZE = 44;
    public static final int PROCESSOR_SIZE = 20;
    public static final int ENTRY_SIZE = 8;
    public static final int SPEC_REV = 4;
    public static final long LOCAL_APIC = 0xfee0_0000L;
    public static final long IOAPIC = 0xfec0_0000L;
    public static final int IOAPIC_PINS = 24;
    static final int APIC_VERSION = 0x14;
    static final int IOAPIC_VERSION = 0x11;
    static final int ISA_BUS = 0;

    static final int TYPE_PROCESSOR = 0;
    static final int TYPE_BUS = 1;
    static final int TYPE_IOAPIC = 2;
    static final int TYPE_IO_INTERRUPT = 3;
    static final int TYPE_LOCAL_INTERRUPT = 4;
    static final int INT = 0;
    static final int NMI = 1;
    static final int EXTINT = 3;
    static final int CPU_ENABLED = 1;
    static final int CPU_BSP = 2;

    private MpTable() {
    }

    /** The tables' size for {@code cpus} processors. */
    public static int size(int cpus) {
        return POINTER_SIZE + HEADER_SIZE + cpus * PROCESSOR_SIZE + (2 + IOAPIC_PINS + 2) * ENTRY_SIZE;
    }

    /**
     * The tables for {@code cpus} vCPUs, to be placed at guest-physical {@code address}.
     *
     * @param cpuSignature CPUID leaf 1 EAX (family, model, stepping), for the processor entries
     * @param cpuFeatures  CPUID leaf 1 EDX
     */
    public static byte[] build(long address, int cpus, int cpuSignature, int cpuFeatures) {
        if (cpus < 1 || cpus > 254) {
            throw new IllegalArgumentException("an MP table describes 1 to 254 CPUs, not " + cpus);
        }
        ByteBuffer b = ByteBuffer.allocate(size(cpus)).order(ByteOrder.LITTLE_ENDIAN);
        int ioapicId = cpus;   // APIC ids 0..cpus-1 are the CPUs'

        // floating pointer
        b.put("_MP_".getBytes(StandardCharsets.US_ASCII));
        b.putInt((int) (address + POINTER_SIZE));
        b.put((byte) 1);        // length in 16-byte units
        b.put((byte) SPEC_REV);
        b.put((byte) 0);        // checksum, below
        b.put(new byte[5]);     // feature bytes: 0 = a configuration table follows, no default configuration
        checksum(b, 0, POINTER_SIZE, 10);

        // configuration table header
        int table = POINTER_SIZE;
        b.put("PCMP".getBytes(StandardCharsets.US_ASCII));
        b.putShort((short) (size(cpus) - POINTER_SIZE));
        b.put((byte) SPEC_REV);
        b.put((byte) 0);        // checksum, below
        b.put("NXIA    ".getBytes(StandardCharsets.US_ASCII));
        b.put("SYSTEM VM   ".getBytes(StandardCharsets.US_ASCII));
        b.putInt(0);            // no OEM table
        b.putShort((short) 0);
        b.putShort((short) (cpus + 2 + IOAPIC_PINS + 2));
        b.putInt((int) LOCAL_APIC);
        b.putShort((short) 0);  // no extended table
        b.put((byte) 0);
        b.put((byte) 0);

        for (int cpu = 0; cpu < cpus; cpu++) {
            b.put((byte) TYPE_PROCESSOR).put((byte) cpu).put((byte) APIC_VERSION)
                    .put((byte) (CPU_ENABLED | (cpu == 0 ? CPU_BSP : 0)));
            b.putInt(cpuSignature).putInt(cpuFeatures).putInt(0).putInt(0);
        }
        b.put((byte) TYPE_BUS).put((byte) ISA_BUS).put("ISA   ".getBytes(StandardCharsets.US_ASCII));
        b.put((byte) TYPE_IOAPIC).put((byte) ioapicId).put((byte) IOAPIC_VERSION).put((byte) 1).putInt((int) IOAPIC);
        for (int pin = 0; pin < IOAPIC_PINS; pin++) {
            // flags 0: polarity and trigger conform to the bus (ISA: active high, edge)
            b.put((byte) TYPE_IO_INTERRUPT).put((byte) INT).putShort((short) 0)
                    .put((byte) ISA_BUS).put((byte) pin).put((byte) ioapicId).put((byte) pin);
        }
        b.put((byte) TYPE_LOCAL_INTERRUPT).put((byte) EXTINT).putShort((short) 0)
                .put((byte) ISA_BUS).put((byte) 0).put((byte) 0xff).put((byte) 0);
        b.put((byte) TYPE_LOCAL_INTERRUPT).put((byte) NMI).putShort((short) 0)
                .put((byte) ISA_BUS).put((byte) 0).put((byte) 0xff).put((byte) 1);
        checksum(b, table, size(cpus) - POINTER_SIZE, table + 7);
        return b.array();
    }

    /** Sets the byte at {@code at} so that {@code [from, from + length)} sums to 0 mod 256. */
    private static void checksum(ByteBuffer b, int from, int length, int at) {
        int sum = 0;
        for (int i = from; i < from + length; i++) {
            sum += b.get(i);
        }
        b.put(at, (byte) -sum);
    }
}
