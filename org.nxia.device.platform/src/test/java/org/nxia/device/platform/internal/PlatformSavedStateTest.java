package org.nxia.device.platform.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.SavedStateCodec;

/** Save, then restore into a device freshly created from the same configuration, read back through the guest's ports. */
class PlatformSavedStateTest {

    private static final int COM1 = 0x3f8;

    private static Uart16550 uart(FakeContext ctx) {
        return (Uart16550) new Uart16550Factory().create(DeviceConfig.parse("uart"), ctx);
    }

    /** Every register the guest can read, in one order (reads that consume, RBR and LSR, last). */
    private static int[] uartRegisters(FakeContext ctx) {
        int lcr = ctx.in(COM1 + Uart16550.LCR);
        ctx.out(COM1 + Uart16550.LCR, lcr | Uart16550.LCR_DLAB);
        int dll = ctx.in(COM1);
        int dlm = ctx.in(COM1 + 1);
        ctx.out(COM1 + Uart16550.LCR, lcr);
        return new int[] {lcr, dll, dlm, ctx.in(COM1 + Uart16550.IER_DLM), ctx.in(COM1 + Uart16550.MCR),
                ctx.in(COM1 + Uart16550.MSR), ctx.in(COM1 + Uart16550.SCR), ctx.in(COM1 + Uart16550.IIR_FCR),
                ctx.in(COM1 + Uart16550.LSR), ctx.in(COM1), ctx.in(COM1), ctx.in(COM1 + Uart16550.LSR)};
    }

    /** A UART a driver set up: divisor 0x0201, 8N1, FIFO on, both interrupts enabled, "ab" received. */
    private static Uart16550 setUp(FakeContext ctx) {
        Uart16550 uart = uart(ctx);
        ctx.out(COM1 + Uart16550.LCR, Uart16550.LCR_DLAB | 0x03);
        ctx.out(COM1, 0x01);
        ctx.out(COM1 + 1, 0x02);
        ctx.out(COM1 + Uart16550.LCR, 0x03);
        ctx.out(COM1 + Uart16550.IIR_FCR, Uart16550.FCR_ENABLE);
        ctx.out(COM1 + Uart16550.IER_DLM, Uart16550.IER_RDA | Uart16550.IER_THRE);
        ctx.out(COM1 + Uart16550.MCR, 0x0b);
        ctx.out(COM1 + Uart16550.SCR, 0x5a);
        uart.send("ab".getBytes(StandardCharsets.US_ASCII));
        return uart;
    }

    @Test
    void uartRegistersAndReceivedBytesReadBackEqualAfterRestoreAndItKeepsWorking() {
        FakeContext before = new FakeContext();
        Uart16550 saved = setUp(before);
        byte[] bytes = saved.saveState();

        FakeContext after = new FakeContext();
        after.interrupts = true;
        Uart16550 restored = uart(after);
        restored.restoreState(bytes);
        assertTrue(after.line.level, "received data with RDA enabled: the restored UART asserts its line");

        int[] expected = uartRegisters(before);
        assertArrayEquals(expected, uartRegisters(after));
        assertArrayEquals(new int[] {0x03, 0x01, 0x02, 0x03, 0x0b, 0xb0, 0x5a, Uart16550.IIR_FIFO | Uart16550.IIR_RDA,
                Uart16550.LSR_THRE | Uart16550.LSR_TEMT | Uart16550.LSR_DR, 'a', 'b',
                Uart16550.LSR_THRE | Uart16550.LSR_TEMT}, expected, "the values a driver set");
        restored.send("c".getBytes(StandardCharsets.US_ASCII));
        assertEquals('c', after.in(COM1));
        after.out(COM1, 'z');
        assertEquals("z", after.console.toString(StandardCharsets.US_ASCII));
    }

    @Test
    void aFullFifoAndAnOverrunSurviveRestore() {
        FakeContext before = new FakeContext();
        Uart16550 uart = uart(before);
        before.out(COM1 + Uart16550.MCR, Uart16550.MCR_LOOP);
        for (int i = 0; i < Uart16550.FIFO_SIZE + 1; i++) {
            before.out(COM1, 'A' + i);
        }
        FakeContext after = new FakeContext();
        uart(after).restoreState(uart.saveState());
        assertEquals(Uart16550.LSR_OE | Uart16550.LSR_DR, after.in(COM1 + Uart16550.LSR) & (Uart16550.LSR_OE | Uart16550.LSR_DR));
        for (int i = 0; i < Uart16550.FIFO_SIZE; i++) {
            assertEquals('A' + i, after.in(COM1));
        }
        assertEquals(0, after.in(COM1 + Uart16550.LSR) & (Uart16550.LSR_OE | Uart16550.LSR_DR));
    }

    @Test
    void hostInputWaitingOutsideTheFifoIsNotSaved() {
        FakeContext a = new FakeContext();
        Uart16550 more = uart(a);
        byte[] sixteen = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
        more.send(sixteen);
        more.send("waiting".getBytes(StandardCharsets.US_ASCII));
        Uart16550 exactly = uart(new FakeContext());
        exactly.send(sixteen);
        assertNotEquals(((Uart16550.State) more.state()).pendingInput().length,
                ((Uart16550.State) exactly.state()).pendingInput().length);
        assertArrayEquals(exactly.saveState(), more.saveState());
    }

    @Test
    void hostileUartStatesAreRefusedAndLeaveTheUartAsCreated() {
        byte[] good = setUp(new FakeContext()).saveState();
        byte[] asCreated = uart(new FakeContext()).saveState();
        int version = 1 + "uart".length();
        int ierAt = version + 1;
        int fifoLengthAt = version + 10;
        assertEquals(2, good[fifoLengthAt + 3], "the layout this test edits");

        java.util.List<byte[]> hostile = new java.util.ArrayList<>();
        for (int n = 0; n < good.length; n++) {
            hostile.add(Arrays.copyOf(good, n));
        }
        hostile.add(edit(good, version, 2));
        hostile.add(edit(good, ierAt, 0x1f));
        hostile.add(edit(good, ierAt + 2, 0x20));           // MCR bit 5
        hostile.add(edit(good, ierAt + 6, 0x02));           // FCR's clear bit is never kept
        hostile.add(edit(good, ierAt + 7, 2));              // a boolean that is 2
        hostile.add(edit(good, fifoLengthAt + 3, 17));      // more than the FIFO holds
        hostile.add(Arrays.copyOf(good, good.length + 1));
        hostile.add(new I8042Factory().create(DeviceConfig.parse("i8042"), new FakeContext()).saveState());
        for (byte[] bad : hostile) {
            FakeContext ctx = new FakeContext();
            Uart16550 fresh = uart(ctx);
            assertThrows(IllegalArgumentException.class, () -> fresh.restoreState(bad), () -> Arrays.toString(bad));
            assertArrayEquals(asCreated, fresh.saveState());
            assertEquals(12, uartRegisters(ctx)[1], "the divisor as created");
        }
    }

    @Test
    void i8042CommandByteAndPendingOutputReadBackAfterRestore() {
        FakeContext before = new FakeContext();
        Device i8042 = new I8042Factory().create(DeviceConfig.parse("i8042"), before);
        before.out(I8042.COMMAND, I8042.CMD_WRITE_COMMAND_BYTE);
        before.out(I8042.DATA, 0x47);
        before.out(I8042.COMMAND, I8042.CMD_SELF_TEST);
        before.out(I8042.COMMAND, I8042.CMD_WRITE_COMMAND_BYTE);   // the command's byte is still to come
        byte[] bytes = i8042.saveState();

        FakeContext after = new FakeContext();
        new I8042Factory().create(DeviceConfig.parse("i8042"), after).restoreState(bytes);
        assertEquals(I8042.STATUS_SYSTEM_FLAG | I8042.STATUS_OUTPUT_FULL, after.in(I8042.COMMAND));
        assertEquals(0x55, after.in(I8042.DATA));
        after.out(I8042.DATA, 0x65);
        after.out(I8042.COMMAND, I8042.CMD_READ_COMMAND_BYTE);
        assertEquals(0x65, after.in(I8042.DATA), "the half-written command took its byte");
        after.out(I8042.COMMAND, I8042.CMD_PULSE_RESET);
        assertTrue(after.reset.contains("0xfe"));
    }

    @Test
    void hostileI8042StatesAreRefused() {
        byte[] good = new I8042Factory().create(DeviceConfig.parse("i8042"), new FakeContext()).saveState();
        int full = 1 + "i8042".length() + 2;
        for (byte[] bad : new byte[][] {edit(good, full, 2), edit(good, full + 1, 0x55), Arrays.copyOf(good, good.length - 1)}) {
            FakeContext ctx = new FakeContext();
            Device fresh = new I8042Factory().create(DeviceConfig.parse("i8042"), ctx);
            assertThrows(IllegalArgumentException.class, () -> fresh.restoreState(bad));
            assertEquals(I8042.STATUS_SYSTEM_FLAG, ctx.in(I8042.COMMAND), "nothing waiting, as created");
            ctx.out(I8042.COMMAND, I8042.CMD_READ_COMMAND_BYTE);
            assertEquals(0x45, ctx.in(I8042.DATA));
        }
    }

    @Test
    void debugExitSavesOnlyItsKindAndStillExitsAfterRestore() {
        Device saved = new DebugExit().create(DeviceConfig.parse("debug-exit:port=0x501"), new FakeContext());
        FakeContext ctx = new FakeContext();
        Device fresh = new DebugExit().create(DeviceConfig.parse("debug-exit:port=0x501"), ctx);
        fresh.restoreState(saved.saveState());
        ctx.out(0x501, 7);
        assertEquals(7, ctx.exitStatus);
        assertThrows(IllegalArgumentException.class, () -> fresh.restoreState(SavedStateCodec.writer("uart", 1).toBytes()));
        assertThrows(IllegalArgumentException.class, () -> fresh.restoreState(Arrays.copyOf(saved.saveState(), 20)));
    }

    private static byte[] edit(byte[] bytes, int at, int value) {
        byte[] copy = bytes.clone();
        copy[at] = (byte) value;
        return copy;
    }
}
