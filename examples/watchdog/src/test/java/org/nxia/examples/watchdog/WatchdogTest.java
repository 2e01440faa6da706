package org.nxia.examples.watchdog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;

class WatchdogTest {

    private final WatchdogFactory factory = new WatchdogFactory();

    /** Records the claimed port and the reset, which is all a watchdog uses. */
    static final class Context implements DeviceContext {
        int port = -1;
        PortDevice device;
        volatile String reset;
        final CountDownLatch resets = new CountDownLatch(1);

        @Override public String vmId() { return "vm-test"; }
        @Override public GuestMemory memory() { throw new UnsupportedOperationException(); }
        @Override public void claimPorts(int first, int count, PortDevice d) { port = first; device = d; }
        @Override public long claimMmio(long size, MmioDevice d) { throw new UnsupportedOperationException(); }
        @Override public void console(byte[] bytes, int offset, int length) { }
        @Override public void exit(int status) { throw new AssertionError("exit"); }
        @Override public void fail(String reason) { throw new AssertionError("fail: " + reason); }
        @Override public void reset(String how) { reset = how; resets.countDown(); }
    }

    @AfterEach
    void stop() {
        factory.deactivate();
    }

    @Test
    void aGuestThatStopsPettingIsReset() throws Exception {
        Context c = new Context();
        Watchdog w = (Watchdog) factory.create(new DeviceConfig("watchdog", Map.of("timeout", "50")), c);
        assertEquals(WatchdogFactory.DEFAULT_PORT, c.port);
        for (int i = 0; i < 3; i++) {
            c.device.write(c.port, 1, 1);
        }
        assertEquals(3, c.device.read(c.port, 1));
        assertTrue(c.resets.await(5, TimeUnit.SECONDS), "the watchdog fired");
        assertEquals("watchdog: no pet within 50 ms", c.reset);
        assertEquals(new Watchdog.State(3, true, true, 50), w.state());
    }

    @Test
    void aGuestThatKeepsPettingRunsOn() throws Exception {
        Context c = new Context();
        factory.create(new DeviceConfig("watchdog", Map.of("timeout", "200", "port", "0x700")), c);
        assertEquals(0x700, c.port);
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(600);
        while (System.nanoTime() < end) {
            c.device.write(c.port, 1, 1);
            Thread.sleep(10);
        }
        assertNull(c.reset, "petted every 10 ms, a 200 ms watchdog does not fire");
    }

    @Test
    void anUnarmedOrClosedWatchdogNeverFires() throws Exception {
        Context unarmed = new Context();
        factory.create(new DeviceConfig("watchdog", Map.of("timeout", "10")), unarmed);
        Context closed = new Context();
        Watchdog w = (Watchdog) factory.create(new DeviceConfig("watchdog", Map.of("timeout", "10")), closed);
        closed.device.write(closed.port, 1, 1);
        w.close();
        Thread.sleep(200);
        assertNull(unarmed.reset, "never petted, never armed");
        assertNull(closed.reset, "closed before its timeout");
    }

    @Test
    void badParametersAreRefused() {
        assertThrows(IllegalArgumentException.class,
                () -> factory.create(new DeviceConfig("watchdog", Map.of("timeout", "5")), new Context()));
        assertThrows(IllegalArgumentException.class,
                () -> factory.create(new DeviceConfig("watchdog", Map.of("port", "0x10000")), new Context()));
    }
}
