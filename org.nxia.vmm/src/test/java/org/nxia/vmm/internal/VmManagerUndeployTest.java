package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;

/** A device type whose bundle goes away while VMs hold its devices (issue 16 §4, undeploy). */
class VmManagerUndeployTest {

    @TempDir
    Path dir;

    /** Makes devices of one type that claim nothing and count their closes. */
    record CountingFactory(String type, AtomicInteger closed) implements DeviceFactory {
        @Override
        public String description() {
            return "test";
        }

        @Override
        public Device create(DeviceConfig config, DeviceContext context) {
            return new Device() {
                @Override
                public String type() {
                    return type;
                }

                @Override
                public Record state() {
                    return null;
                }

                @Override
                public void close() {
                    closed.incrementAndGet();
                }
            };
        }
    }

    @Test
    void vmsHoldingAnUndeployedDeviceStopWithTheReasonAndAreDestroyed() throws Exception {
        VmManagerImpl manager = new VmManagerImpl(new InMemoryHypervisor(id -> Script.untilStopped()));
        CountingFactory gone = new CountingFactory("watchdog", new AtomicInteger());
        CountingFactory stays = new CountingFactory("other", new AtomicInteger());
        manager.addDeviceFactory(gone, Map.of(DeviceFactory.TYPE_PROPERTY, "watchdog"));
        manager.addDeviceFactory(stays, Map.of(DeviceFactory.TYPE_PROPERTY, "other"));
        try {
            VmProfile base = VmProfile.of(Files.write(dir.resolve("guest.elf"), ElfBuilder.minimal().build()))
                    .withTimeout(Duration.ofSeconds(30));
            VirtualMachine running = manager.create(base.withDevices(List.of(DeviceConfig.parse("watchdog"), DeviceConfig.parse("other"))));
            VirtualMachine created = manager.create(base.withDevices(List.of(DeviceConfig.parse("watchdog"))));
            VirtualMachine unaffected = manager.create(base.withDevices(List.of(DeviceConfig.parse("other"))));
            running.start();
            unaffected.start();

            manager.removeDeviceFactory(gone, Map.of(DeviceFactory.TYPE_PROPERTY, "watchdog"));

            VmResult r = running.await(Duration.ofSeconds(5));
            assertEquals(VmResult.Reason.STOPPED, r.reason());
            assertEquals("device type 'watchdog' was undeployed: its bundle stopped", r.detail());
            assertEquals(VmState.STOPPED, created.state());
            assertEquals(List.of(unaffected), manager.list(), "both holders are destroyed, the other VM runs on");
            assertEquals(VmState.RUNNING, unaffected.state());
            assertEquals(2, gone.closed().get(), "each holder's watchdog device is closed");
            assertEquals(1, stays.closed().get(), "the destroyed VM's other device too; the running VM's is kept");

            IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                    () -> manager.create(base.withDevices(List.of(DeviceConfig.parse("watchdog")))));
            assertTrue(refused.getMessage().contains("no device type 'watchdog' is installed"), refused.getMessage());
        } finally {
            manager.deactivate();
        }
    }
}
