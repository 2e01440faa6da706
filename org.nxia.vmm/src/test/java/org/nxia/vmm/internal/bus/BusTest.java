package org.nxia.vmm.internal.bus;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;

class BusTest {

    private static PortDevice port() {
        return new PortDevice() {
            @Override
            public void write(int port, int size, int value) {
            }

            @Override
            public int read(int port, int size) {
                return 0;
            }
        };
    }

    private static MmioDevice mmio() {
        return new MmioDevice() {
            @Override
            public void write(long address, int size, long value) {
            }

            @Override
            public long read(long address, int size) {
                return 0;
            }
        };
    }

    private final Bus bus = new Bus();

    @Test
    void dispatchesPortsByRangeWithExactBoundaries() {
        PortDevice exit = port();
        PortDevice debug = port();
        bus.addPorts(0x700, 16, exit);
        bus.addPorts(0xe9, 1, debug);
        assertNull(bus.port(0x6ff));
        assertSame(exit, bus.port(0x700));
        assertSame(exit, bus.port(0x70c));
        assertSame(exit, bus.port(0x70f));
        assertNull(bus.port(0x710));
        assertNull(bus.port(0xe8));
        assertSame(debug, bus.port(0xe9));
        assertNull(bus.port(0xea));
        assertNull(bus.port(0));
        assertNull(bus.port(-1));
        assertNull(bus.port(0x10000));
    }

    @Test
    void unclaimedReturnsNullOnEmptyBus() {
        assertNull(bus.port(0));
        assertNull(bus.port(0xffff));
        assertNull(bus.mmio(0));
        assertNull(bus.mmio(0xd000_0000L));
        assertNull(bus.mmio(Long.MAX_VALUE));
        assertNull(bus.mmio(Long.MIN_VALUE));
    }

    @Test
    void acceptsPortsAtBothEndsOfThePortSpace() {
        PortDevice low = port();
        PortDevice high = port();
        bus.addPorts(0, 1, low);
        bus.addPorts(0xffff, 1, high);
        assertSame(low, bus.port(0));
        assertSame(high, bus.port(0xffff));
        assertNull(bus.port(1));
    }

    @Test
    void acceptsWholePortSpace() {
        PortDevice all = port();
        bus.addPorts(0, 0x10000, all);
        assertSame(all, bus.port(0));
        assertSame(all, bus.port(0xffff));
    }

    @ParameterizedTest
    @CsvSource({
            "-1, 1",
            "-1, 2",
            "0, 0",
            "0, -1",
            "0xffff, 2",
            "0x10000, 1",
            "0, 0x10001",
            "-2147483648, 1",
    })
    void refusesPortsOutsideThePortSpace(String first, String count) {
        int f = Integer.decode(first);
        int c = Integer.decode(count);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> bus.addPorts(f, c, port()));
        assertTrue(e.getMessage().endsWith("are outside the 64 Ki port space"), e.getMessage());
    }

    @ParameterizedTest
    @CsvSource({
            "0x7fffffff, 1",
            "0xffff, 0x7fffffff",
            "1, 0x7fffffff",
    })
    void refusesPortRangesWhoseEndOverflows(String first, String count) {
        int f = Integer.decode(first);
        int c = Integer.decode(count);
        assertThrows(IllegalArgumentException.class, () -> bus.addPorts(f, c, port()),
                "Bus.addPorts(" + first + ", " + count + ") accepted a range outside 0..0xffff (first + count overflows int)");
    }

    @Test
    void refusesOverlappingPorts() {
        bus.addPorts(0x700, 16, port());
        assertThrows(IllegalArgumentException.class, () -> bus.addPorts(0x700, 1, port()));
        assertThrows(IllegalArgumentException.class, () -> bus.addPorts(0x70f, 1, port()));
        assertThrows(IllegalArgumentException.class, () -> bus.addPorts(0x6ff, 2, port()));
        assertThrows(IllegalArgumentException.class, () -> bus.addPorts(0x600, 0x200, port()));
        bus.addPorts(0x6ff, 1, port());
        bus.addPorts(0x710, 1, port());
    }

    @Test
    void dispatchesMmioByRangeAndRefusesOverlap() {
        MmioDevice window = mmio();
        MmioDevice other = mmio();
        bus.addMmio(0xd000_0000L, 0x1000, window);
        bus.addMmio(0xd000_1000L, 0x1000, other);
        assertNull(bus.mmio(0xcfff_ffffL));
        assertSame(window, bus.mmio(0xd000_0000L).device());
        assertSame(window, bus.mmio(0xd000_0fffL).device());
        assertSame(other, bus.mmio(0xd000_1000L).device());
        assertNull(bus.mmio(0xd000_2000L));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> bus.addMmio(0xd000_0800L, 0x1000, mmio()));
        assertTrue(e.getMessage().contains("overlaps"), e.getMessage());
    }

    @ParameterizedTest
    @CsvSource({
            "0, 0",
            "0, -1",
            "-1, 1",
            "-9223372036854775808, 16",
            "9223372036854775807, 1",
            "9223372036854775800, 9",
            "1, 9223372036854775807",
    })
    void refusesMmioRangesThatAreEmptyNegativeOrOverflow(long base, long length) {
        assertThrows(IllegalArgumentException.class, () -> bus.addMmio(base, length, mmio()));
    }

    @Test
    void acceptsMmioRangeEndingAtLongMaxValue() {
        MmioDevice top = mmio();
        bus.addMmio(Long.MAX_VALUE - 16, 16, top);
        assertSame(top, bus.mmio(Long.MAX_VALUE - 1).device());
        assertNull(bus.mmio(Long.MAX_VALUE));
    }
}
