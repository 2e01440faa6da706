package org.nxia.device.platform.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.device.DeviceConfig;

/** The receive FIFO is the chip's 16 bytes: a guest cannot grow the host through loopback. */
class UartFifoTest {

    private static final int THR = 0x3f8;
    private static final int LSR = 0x3fd;
    private static final int MCR = 0x3fc;

    private final FakeContext ctx = new FakeContext();
    private final Uart16550 uart = (Uart16550) new Uart16550Factory().create(DeviceConfig.parse("uart"), ctx);

    private static long allocated() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    @Test
    void aMillionLoopbackBytesFillTheFifoThenOverrunWithoutAllocating() {
        uart.write(MCR, 1, Uart16550.MCR_LOOP);
        for (int i = 0; i < 1000; i++) {
            uart.write(THR, 1, i);   // warm up, so the JIT has compiled the path measured below
        }
        uart.write(0x3fa, 1, Uart16550.FCR_ENABLE | Uart16550.FCR_CLEAR_RX);
        uart.read(LSR, 1);

        long before = allocated();
        for (int i = 0; i < 1_000_000; i++) {
            uart.write(THR, 1, i);
        }
        long grown = allocated() - before;
        assertTrue(grown < 64 * 1024, "10^6 loopback bytes allocated " + grown + " host bytes");

        assertEquals(Uart16550.FIFO_SIZE, ((Uart16550.State) uart.state()).pendingInput().length);
        int lsr = uart.read(LSR, 1);
        assertEquals(Uart16550.LSR_OE | Uart16550.LSR_DR, lsr & (Uart16550.LSR_OE | Uart16550.LSR_DR));
        assertEquals(0, uart.read(LSR, 1) & Uart16550.LSR_OE, "reading LSR clears OE");
        for (int i = 0; i < Uart16550.FIFO_SIZE; i++) {
            assertEquals(i, uart.read(THR, 1), "the first 16 bytes are kept, the rest dropped");
        }
        assertEquals(0, uart.read(LSR, 1) & Uart16550.LSR_DR, "then the FIFO is empty");
        uart.write(THR, 1, 'z');
        assertEquals('z', uart.read(THR, 1), "and loopback works again");
    }

    @Test
    void hostInputBeyondTheFifoWaitsAndArrivesInOrder() {
        byte[] sent = new byte[100];
        for (int i = 0; i < sent.length; i++) {
            sent[i] = (byte) i;
        }
        uart.send(sent);
        uart.send(new byte[] {-1});
        assertArrayEquals(sent, java.util.Arrays.copyOf(((Uart16550.State) uart.state()).pendingInput(), 100));
        for (int i = 0; i < sent.length; i++) {
            assertEquals(i, uart.read(THR, 1));
        }
        assertEquals(0xff, uart.read(THR, 1));
        assertEquals(0, uart.read(LSR, 1) & (Uart16550.LSR_DR | Uart16550.LSR_OE), "host input never overruns");
    }

    @Test
    void hostInputIsBoundedWhenTheGuestNeverReads() {
        byte[] chunk = new byte[64 * 1024];
        for (int i = 0; i < 64; i++) {
            uart.send(chunk);
        }
        int held = ((Uart16550.State) uart.state()).pendingInput().length;
        assertTrue(held <= Uart16550.MAX_PENDING + Uart16550.FIFO_SIZE, "held " + held);
    }
}
