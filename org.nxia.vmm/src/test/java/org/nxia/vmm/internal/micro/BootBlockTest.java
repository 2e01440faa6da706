package org.nxia.vmm.internal.micro;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nxia.vmm.spi.GuestMemory;

class BootBlockTest {

    private static final long B = 0x1000;
    private static final int PVM_MSR = 0x4b564d10;

    private final byte[] bytes = new byte[0x10000];
    private final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(bytes));
    // Distinct values so a field written at the wrong offset shows.
    private final MicroVmLayout layout = new MicroVmLayout(0x1000_0000L, 0x10_1234, 0x10_2000, 0x1111,
            0x10_4000, 0x2222, 0x10_7000, 0x3333_0000L, 0x0ff0_0000L, 0x0ff0_0000L);

    @Test
    void writesEveryFieldAtItsDocumentedOffset() {
        java.util.Arrays.fill(bytes, (byte) 0xee);
        BootBlock.write(memory, layout, 0, 0x1234_5678_9abc_def0L);
        assertEquals(0x4149584e, memory.readInt(B));
        assertEquals("NXIA", new String(memory.read(B, 4), java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(1, u16(B + 4));
        assertEquals(0, u16(B + 6));
        assertEquals(0, memory.readInt(B + 8));
        assertEquals(0, memory.readInt(B + 12));
        assertEquals(0, memory.readLong(B + 16));
        assertEquals(0x1000_0000L, memory.readLong(B + 24));
        assertEquals(0x8000, memory.readLong(B + 32));
        assertEquals(32768, memory.readInt(B + 40));
        assertEquals(0, memory.readInt(B + 44));
        assertEquals(0x10_2000, memory.readLong(B + 48));
        assertEquals(0x1111, memory.readLong(B + 56));
        assertEquals(0x10_4000, memory.readLong(B + 64));
        assertEquals(0x2222, memory.readLong(B + 72));
        assertEquals(0, memory.readLong(B + 80));
        assertEquals(0x10_7000, memory.readLong(B + 88));
        assertEquals(0x3333_0000L, memory.readLong(B + 96));
        assertEquals(0x0ff0_0000L, memory.readLong(B + 104));
        assertEquals(0x1234_5678_9abc_def0L, memory.readLong(B + 112));
        assertEquals(384 + 8 + 16 * 48, BootBlock.SIZE);
        for (int i = (int) B + BootBlock.SIZE; i < B + 4096; i++) {
            assertEquals(0, bytes[i], "rest of the page is zero");
        }
        assertEquals((byte) 0xee, bytes[(int) B - 1]);
        assertEquals((byte) 0xee, bytes[(int) B + 4096]);
    }

    @Test
    void portalEntriesSitAtTheirDocumentedOffsets() {
        BootBlock.write(memory, layout, 0, 0);
        BootBlock.writePortal(memory, 1, "ring", 0xc020_0000L, 0x4_0000, 0xd000_1000L,
                BootBlock.PORTAL_MAPPED | BootBlock.PORTAL_WRITABLE);
        long e = B + 392 + 48;
        assertEquals(2, memory.readInt(B + 384), "count covers entry 1");
        assertEquals(0xc020_0000L, memory.readLong(e));
        assertEquals(0x4_0000, memory.readLong(e + 8));
        assertEquals(0xd000_1000L, memory.readLong(e + 16));
        assertEquals(3, memory.readInt(e + 24));
        assertEquals(0xf75a_fb6b, memory.readInt(e + 28), "FNV-1a 32 of \"ring\"");
        assertEquals("ring", new String(memory.read(e + 32, 4), java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(0, memory.readByte(e + 36), "NUL padded");
        assertEquals(0, memory.readInt(B + 392 + 24), "entry 0 stays unmapped");
        BootBlock.clearPortal(memory, 1);
        assertEquals(0, memory.readInt(e + 24));
    }

    @Test
    void setsPvmFlagMsrAndPvcsOnlyWhenAnMsrIsGiven() {
        BootBlock.write(memory, layout, PVM_MSR, 0);
        assertEquals(1, u16(B + 6));
        assertEquals(PVM_MSR, memory.readInt(B + 8));
        assertEquals(0x2000, memory.readLong(B + 16));

        BootBlock.write(memory, layout, 0, 0);
        assertEquals(0, u16(B + 6));
        assertEquals(0, memory.readInt(B + 8));
        assertEquals(0, memory.readLong(B + 16));
    }

    @Test
    void outputLengthIsWhatTheGuestWroteWithinCapacity() {
        BootBlock.write(memory, layout, 0, 0);
        assertEquals(0, BootBlock.outputLength(memory, layout));
        memory.writeLong(B + 80, 10);
        assertEquals(10, BootBlock.outputLength(memory, layout));
        memory.writeLong(B + 80, 0x2222);
        assertEquals(0x2222, BootBlock.outputLength(memory, layout));
    }

    @ParameterizedTest
    @ValueSource(longs = {0x2223, 1L << 40, Long.MAX_VALUE, -1, Long.MIN_VALUE})
    void outputLengthClampsHostileValueToCapacity(long claimed) {
        BootBlock.write(memory, layout, 0, 0);
        memory.writeLong(B + 80, claimed);
        assertEquals(0x2222, BootBlock.outputLength(memory, layout));
    }

    @Test
    void outputLengthIsZeroWhenThereIsNoOutputBuffer() {
        MicroVmLayout none = MicroVmLayout.plan(16L << 20, 0x101000, 0, 0);
        BootBlock.write(memory, none, 0, 0);
        memory.writeLong(B + 80, 4096);
        assertEquals(0, BootBlock.outputLength(memory, none));
    }

    private int u16(long address) {
        return Short.toUnsignedInt((short) memory.readInt(address));
    }
}
