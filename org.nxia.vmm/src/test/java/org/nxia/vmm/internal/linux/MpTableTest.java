package org.nxia.vmm.internal.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The tables against the MP specification 1.4, chapter 4. */
class MpTableTest {

    static final long AT = LinuxLayout.EBDA;

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 8, 32})
    void floatingPointerAndTableAreWellFormed(int cpus) {
        byte[] t = MpTable.build(AT, cpus, 0x600, 0x781abfd);
        ByteBuffer b = ByteBuffer.wrap(t).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(MpTable.size(cpus), t.length);
        assertEquals("_MP_", ascii(t, 0, 4));
        assertEquals(AT + 16, b.getInt(4), "the pointer names the table");
        assertEquals(1, b.get(8), "length in paragraphs");
        assertEquals(4, b.get(9), "spec revision 1.4");
        assertEquals(0, sum(t, 0, 16), "pointer checksum");
        assertEquals(0, b.get(11), "feature byte 1: a table, not a default configuration");

        int table = 16;
        int length = Short.toUnsignedInt(b.getShort(table + 4));
        assertEquals("PCMP", ascii(t, table, 4));
        assertEquals(t.length - 16, length);
        assertEquals(0, sum(t, table, length), "table checksum");
        assertEquals(0xfee0_0000, b.getInt(table + 36), "local APIC address");
        int count = Short.toUnsignedInt(b.getShort(table + 34));
        assertEquals(cpus + 1 + 1 + MpTable.IOAPIC_PINS + 2, count);

        int at = table + 44;
        for (int cpu = 0; cpu < cpus; cpu++, at += 20) {
            assertEquals(0, t[at], "processor entry");
            assertEquals(cpu, t[at + 1], "APIC id = vCPU id");
            assertEquals(cpu == 0 ? 3 : 1, t[at + 3], "enabled, BSP only on vCPU 0");
        }
        assertEquals(1, t[at]);
        assertEquals("ISA   ", ascii(t, at + 2, 6));
        at += 8;
        assertEquals(2, t[at], "IOAPIC entry");
        assertEquals(cpus, t[at + 1], "IOAPIC id after the CPUs'");
        assertEquals(1, t[at + 3] & 1, "enabled");
        assertEquals(0xfec0_0000, b.getInt(at + 4));
        at += 8;
        for (int pin = 0; pin < MpTable.IOAPIC_PINS; pin++, at += 8) {
            assertEquals(3, t[at], "I/O interrupt entry");
            assertEquals(pin, t[at + 5], "source bus IRQ");
            assertEquals(cpus, t[at + 6], "to the IOAPIC");
            assertEquals(pin, t[at + 7], "pin");
        }
        assertEquals(4, t[at]);
        assertEquals(3, t[at + 1], "LINT0 ExtINT");
        assertEquals(0, t[at + 7]);
        assertEquals(4, t[at + 8]);
        assertEquals(1, t[at + 9], "LINT1 NMI");
        assertEquals(1, t[at + 15]);
        assertEquals(t.length, at + 16);
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 255})
    void refusesImpossibleCpuCounts(int cpus) {
        assertThrows(IllegalArgumentException.class, () -> MpTable.build(AT, cpus, 0, 0));
    }

    private static int sum(byte[] t, int from, int length) {
        int s = 0;
        for (int i = from; i < from + length; i++) {
            s += t[i];
        }
        return s & 0xff;
    }

    private static String ascii(byte[] t, int from, int length) {
        return new String(t, from, length, StandardCharsets.US_ASCII);
    }
}
