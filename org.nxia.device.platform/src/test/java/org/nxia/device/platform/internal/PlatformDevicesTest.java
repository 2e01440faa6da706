package org.nxia.device.platform.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.SerialPort;

class PlatformDevicesTest {

    private final FakeContext ctx = new FakeContext();

    private Uart16550 uart() {
        return (Uart16550) new Uart16550Factory().create(DeviceConfig.parse("uart"), ctx);
    }

    @Test
    void uartTransmitsToTheConsole() {
        uart();
        for (byte b : "hi\n".getBytes(StandardCharsets.US_ASCII)) {
            assertTrue((ctx.in(0x3fd) & Uart16550.LSR_THRE) != 0, "THR empty before each byte");
            ctx.out(0x3f8, b);
        }
        assertEquals("hi\n", ctx.console.toString(StandardCharsets.US_ASCII));
    }

    @Test
    void uartReceivesWhatTheHostSendsAndReportsDataReady() {
        SerialPort port = uart();
        assertEquals(0, ctx.in(0x3fd) & Uart16550.LSR_DR);
        port.send("ok".getBytes(StandardCharsets.US_ASCII));
        assertEquals(Uart16550.LSR_DR, ctx.in(0x3fd) & Uart16550.LSR_DR);
        assertEquals('o', ctx.in(0x3f8));
        assertEquals('k', ctx.in(0x3f8));
        assertEquals(0, ctx.in(0x3fd) & Uart16550.LSR_DR);
        assertEquals(0, ctx.in(0x3f8), "an empty receiver reads 0");
    }

    @Test
    void uartDivisorLatchShadowsDataAndInterruptEnable() {
        uart();
        ctx.out(0x3fb, Uart16550.LCR_DLAB | 0x03);
        ctx.out(0x3f8, 0x01);
        ctx.out(0x3f9, 0x00);
        assertEquals(0x01, ctx.in(0x3f8));
        ctx.out(0x3fb, 0x03);
        assertEquals(0x03, ctx.in(0x3fb));
        assertEquals("", ctx.console.toString(StandardCharsets.US_ASCII), "divisor writes are not output");
    }

    @Test
    void uartLoopbackReturnsWhatIsWrittenAndMirrorsModemLines() {
        uart();
        ctx.out(0x3fc, Uart16550.MCR_LOOP | 0x0f);
        ctx.out(0x3f8, 'x');
        assertEquals('x', ctx.in(0x3f8));
        assertEquals(0xf0, ctx.in(0x3fe));
        assertEquals("", ctx.console.toString(StandardCharsets.US_ASCII));
    }

    @Test
    void uartInterruptIdentificationFollowsEnablesAndFifo() {
        SerialPort port = uart();
        assertEquals(Uart16550.IIR_NONE, ctx.in(0x3fa));
        ctx.out(0x3fa, Uart16550.FCR_ENABLE);
        ctx.out(0x3f9, Uart16550.IER_RDA | Uart16550.IER_THRE);
        assertEquals(Uart16550.IIR_FIFO | Uart16550.IIR_THRE, ctx.in(0x3fa));
        assertEquals(Uart16550.IIR_FIFO | Uart16550.IIR_NONE, ctx.in(0x3fa), "reading IIR clears THRE");
        port.send(new byte[] {1});
        assertEquals(Uart16550.IIR_FIFO | Uart16550.IIR_RDA, ctx.in(0x3fa));
        ctx.out(0x3fa, Uart16550.FCR_ENABLE | Uart16550.FCR_CLEAR_RX);
        assertEquals(0, ctx.in(0x3fd) & Uart16550.LSR_DR);
    }

    @Test
    void uartScratchAndStateRecord() {
        SerialPort port = uart();
        ctx.out(0x3ff, 0x5a);
        assertEquals(0x5a, ctx.in(0x3ff));
        port.send(new byte[] {7, 8});
        Uart16550.State s = (Uart16550.State) ((Uart16550) port).state();
        assertEquals(0x3f8, s.port());
        assertEquals(0x5a, s.scr());
        assertArrayEquals(new byte[] {7, 8}, s.pendingInput());
    }

    @Test
    void uartRefusesABadPortAndAnOverlap() {
        assertThrows(IllegalArgumentException.class, () -> new Uart16550Factory().create(DeviceConfig.parse("uart:port=0x10000"), ctx));
        assertThrows(IllegalArgumentException.class, () -> new Uart16550Factory().create(DeviceConfig.parse("uart:port=com1"), ctx));
        uart();
        assertThrows(IllegalArgumentException.class, this::uart);
    }

    @Test
    void debugExitEndsTheVmWithTheWrittenValue() {
        new DebugExit().create(DeviceConfig.parse("debug-exit:port=0x501"), ctx);
        assertNull(ctx.exitStatus);
        ctx.out(0x501, 3);
        assertEquals(3, ctx.exitStatus);
    }

    @Test
    void i8042PulseResetStopsTheVm() {
        new I8042Factory().create(DeviceConfig.parse("i8042"), ctx);
        ctx.out(0x64, 0xaa);
        assertEquals(I8042.STATUS_OUTPUT_FULL, ctx.in(0x64) & I8042.STATUS_OUTPUT_FULL);
        assertEquals(0x55, ctx.in(0x60));
        ctx.out(0x64, 0x60);
        ctx.out(0x60, 0x47);
        ctx.out(0x64, 0x20);
        assertEquals(0x47, ctx.in(0x60));
        assertNull(ctx.reset);
        ctx.out(0x64, 0xfe);
        assertTrue(ctx.reset.contains("0xfe"), ctx.reset);
    }

    @Test
    void i8042TakesNoParameters() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new I8042Factory().create(DeviceConfig.parse("i8042:port=1"), ctx));
        assertTrue(e.getMessage().contains("no parameters"), e.getMessage());
    }

    @Test
    void uartDrivesIrq4FromIirWhereTheVmHasInterrupts() {
        ctx.interrupts = true;
        uart();
        assertEquals(4, ctx.line.gsi);
        assertFalse(ctx.line.level, "nothing enabled, nothing pending");
        ctx.out(0x3f9, Uart16550.IER_THRE);
        assertTrue(ctx.line.level, "enabling THRE with THR empty interrupts at once (Linux's 8250 startup test)");
        assertEquals(Uart16550.IIR_THRE, ctx.in(0x3fa) & 0x0f);
        assertFalse(ctx.line.level, "reading IIR clears THRE");
        ctx.out(0x3f8, 'x');
        assertTrue(ctx.line.level, "THR empty again after a byte");
        ctx.out(0x3f9, 0);
        assertFalse(ctx.line.level);
        ctx.out(0x3f9, Uart16550.IER_RDA);
        ((Uart16550) ctx.ports.get(0x3f8)).send(new byte[] {'a'});
        assertTrue(ctx.line.level, "received data");
        assertEquals('a', ctx.in(0x3f8));
        assertFalse(ctx.line.level, "read: nothing pending");
        assertEquals(3, ctx.line.rises);
    }

    @Test
    void uartWithoutInterruptsClaimsNoLine() {
        uart();
        assertEquals(4, ctx.line.gsi, "asked for IRQ 4");
        ctx.out(0x3f9, Uart16550.IER_THRE);
        assertFalse(ctx.line.level, "but got none and drives none");
    }
}
