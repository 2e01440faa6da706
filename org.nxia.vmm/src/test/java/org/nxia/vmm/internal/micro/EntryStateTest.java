package org.nxia.vmm.internal.micro;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.DescriptorTable;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;

class EntryStateTest {

    private final byte[] bytes = new byte[0x10000];
    private final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(bytes));

    /** The fields of one 8-byte code/data descriptor (Intel SDM vol. 3, 3.4.5). */
    private record Descriptor(long base, long limit, int type, boolean s, int dpl, boolean p, boolean l, boolean db, boolean g) {
        static Descriptor decode(long d) {
            long limit = (d & 0xffff) | (((d >>> 48) & 0xf) << 16);
            long base = ((d >>> 16) & 0xff_ffff) | (((d >>> 56) & 0xff) << 24);
            return new Descriptor(base, limit, (int) (d >>> 40) & 0xf, ((d >>> 44) & 1) != 0, (int) (d >>> 45) & 3,
                    ((d >>> 47) & 1) != 0, ((d >>> 53) & 1) != 0, ((d >>> 54) & 1) != 0, ((d >>> 55) & 1) != 0);
        }
    }

    private Descriptor gdtEntry(int selector) {
        return Descriptor.decode(memory.readLong(MicroVmLayout.GDT + selector));
    }

    @Test
    void gdtHoldsNullAndUnusedFirstEntries() {
        java.util.Arrays.fill(bytes, (byte) 0xcc);
        EntryState.writeGdt(memory);
        assertEquals(0, memory.readLong(MicroVmLayout.GDT));
        assertEquals(0, memory.readLong(MicroVmLayout.GDT + 8));
        assertEquals(0, memory.readLong(MicroVmLayout.GDT + 0x30), "nothing past the TSS descriptor");
    }

    @Test
    void codeDescriptorIsSixtyFourBitRing0ExecuteRead() {
        EntryState.writeGdt(memory);
        Descriptor code = gdtEntry(0x10);
        assertEquals(11, code.type());
        assertTrue(code.s());
        assertTrue(code.p());
        assertEquals(0, code.dpl());
        assertTrue(code.l());
        assertFalse(code.db(), "L=1 requires D=0");
        assertTrue(code.g());
        assertEquals(0, code.base());
        assertEquals(0xfffff, code.limit());
    }

    @Test
    void dataDescriptorIsRing0ReadWriteBig() {
        EntryState.writeGdt(memory);
        Descriptor data = gdtEntry(0x18);
        assertEquals(3, data.type());
        assertTrue(data.s());
        assertTrue(data.p());
        assertEquals(0, data.dpl());
        assertFalse(data.l());
        assertTrue(data.db());
        assertTrue(data.g());
        assertEquals(0, data.base());
        assertEquals(0xfffff, data.limit());
    }

    @Test
    void tssDescriptorIsBusySixtyFourBitAt0x3800() {
        EntryState.writeGdt(memory);
        Descriptor tss = gdtEntry(0x20);
        assertEquals(11, tss.type());
        assertFalse(tss.s(), "a system descriptor");
        assertTrue(tss.p());
        assertEquals(0, tss.dpl());
        assertFalse(tss.g(), "byte granular");
        assertEquals(0x3800, tss.base());
        assertEquals(0x67, tss.limit());
        assertEquals(0, memory.readLong(MicroVmLayout.GDT + 0x28), "base bits 63:32 and the reserved dword");
        assertEquals(104, Short.toUnsignedInt((short) memory.readInt(MicroVmLayout.TSS + 102)),
                "I/O map base past the limit: no I/O bitmap");
    }

    @Test
    void writingTheGdtLeavesOtherPagesAlone() {
        java.util.Arrays.fill(bytes, (byte) 0xcc);
        EntryState.writeGdt(memory);
        for (int i = 0; i < bytes.length; i++) {
            boolean gdtPage = i >= 0x3000 && i < 0x4000;
            if (!gdtPage) {
                assertEquals((byte) 0xcc, bytes[i], "byte 0x" + Integer.toHexString(i));
            }
        }
    }

    @Test
    void specialRegistersMatchTheAbi() {
        SpecialRegisters s = EntryState.specialRegisters(0x7f_3000, 0xfee0_0900L);
        assertEquals(0x80050033L, s.cr0());
        assertEquals(0x20, s.cr4());
        assertEquals(0xd01, s.efer());
        assertEquals(0x7f_3000, s.cr3());
        assertEquals(0, s.cr2());
        assertEquals(0, s.cr8());
        assertEquals(0xfee0_0900L, s.apicBase());
        assertEquals(new DescriptorTable(0x3000, 6 * 8 - 1), s.gdt());
        assertEquals(new DescriptorTable(0, 0), s.idt());

        Segment cs = s.cs();
        assertEquals(0x10, cs.selector());
        assertEquals(11, cs.type());
        assertTrue(cs.present() && cs.s() && cs.l() && cs.g());
        assertFalse(cs.db() || cs.unusable());
        assertEquals(0, cs.dpl());

        for (Segment data : new Segment[] {s.ds(), s.es(), s.fs(), s.gs(), s.ss()}) {
            assertEquals(0x18, data.selector());
            assertEquals(3, data.type());
            assertTrue(data.present() && data.s() && data.db() && data.g());
            assertFalse(data.l() || data.unusable());
            assertEquals(0, data.dpl());
            assertEquals(0, data.base());
        }

        Segment tr = s.tr();
        assertEquals(0x20, tr.selector());
        assertEquals(11, tr.type());
        assertEquals(0x3800, tr.base());
        assertEquals(0x67, tr.limit());
        assertTrue(tr.present());
        assertFalse(tr.s() || tr.unusable());

        assertTrue(s.ldt().unusable());
        assertEquals(0, s.ldt().selector());
        assertFalse(s.ldt().present());
    }

    @Test
    void segmentRegistersAgreeWithTheGdtTheyNameForLoadsByTheGuest() {
        EntryState.writeGdt(memory);
        SpecialRegisters s = EntryState.specialRegisters(0, 0);
        for (Segment seg : new Segment[] {s.cs(), s.ds(), s.ss(), s.tr()}) {
            Descriptor d = gdtEntry(seg.selector());
            assertEquals(d.type(), seg.type(), "type of " + seg.selector());
            assertEquals(d.s(), seg.s());
            assertEquals(d.dpl(), seg.dpl());
            assertEquals(d.p(), seg.present());
            assertEquals(d.l(), seg.l());
            assertEquals(d.db(), seg.db());
            assertEquals(d.g(), seg.g());
            assertEquals(d.base(), seg.base());
        }
    }

    @Test
    void registersEnterAtEntryWithStackAndBootBlock() {
        MicroVmLayout layout = MicroVmLayout.plan(16L << 20, 0x101000, 0, 0);
        Registers r = EntryState.registers(0x100040, layout);
        assertEquals(0x100040, r.rip());
        assertEquals(layout.stackTop(), r.rsp());
        assertEquals(0x1000, r.rdi());
        assertEquals(0x2, r.rflags());
        assertEquals(0, r.rax());
        assertEquals(0, r.rsi());
    }
}
