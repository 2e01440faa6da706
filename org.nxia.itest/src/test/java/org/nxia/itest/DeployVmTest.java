package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;
import static org.nxia.itest.ThirdParty.CHECKSUM;
import static org.nxia.itest.ThirdParty.WATCHDOG;
import static org.nxia.itest.ThirdParty.await;
import static org.nxia.itest.ThirdParty.installed;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Hashtable;
import java.util.List;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.service.cm.ConfigurationAdmin;

/**
 * The third-party examples deployed into a running platform, with their guests on /dev/kvm: the
 * next VM gets the watchdog device and the checksum guest calls the adapter; undeploying the
 * watchdog stops the VM that holds one, with the reason, and new VMs no longer get it.
 */
@RunWith(KvmRequirement.class)
@ExamReactorStrategy(PerClass.class)
public class DeployVmTest {

    static final Duration T = Duration.ofSeconds(60);

    @Inject
    BundleContext context;

    @Inject
    CommandProcessor processor;

    @Inject
    VmManager vms;

    @Inject
    ConfigurationAdmin config;

    @Inject
    CallPolicy policy;

    @Configuration
    public Option[] config() {
        return ThirdParty.shell();
    }

    private static VmProfile guest(String name, String devices) {
        return VmProfile.of(Path.of(System.getProperty("nxia.guest.images"), name + ".elf")).withTimeout(T)
                .withDevices(List.of(DeviceConfig.parse(devices)));
    }

    @Test
    public void theNextVmGetsTheDeployedDeviceAndUndeployStopsTheVmsHoldingIt() throws Exception {
        Bundle b = context.installBundle(ThirdParty.jar(WATCHDOG).toUri().toString());
        b.start();

        StringBuilder console = new StringBuilder();
        VmResult reset = vms.run(guest("watchdog", "watchdog:timeout=200"), console);
        assertTrue(console.toString(), console.toString().contains("watchdog: the device counted 3 pets; no more pets"));
        assertEquals(reset.detail(), VmResult.Reason.RESET, reset.reason());
        assertTrue(reset.detail(), reset.detail().contains("watchdog: no pet within 200 ms"));
        assertEquals("vm:run with the device: the watchdog ends the guest (status 1, not an exit)",
                1, Gogo.run(processor, "vm:run --devices watchdog:timeout=200 watchdog").exit());

        VirtualMachine holder = vms.create(guest("watchdog", "watchdog:timeout=60000"));
        holder.start();
        await(() -> holder.console().contains("no more pets"), "the guest armed its watchdog");
        b.uninstall();
        VmResult undeployed = holder.await(Duration.ofSeconds(10));
        assertEquals(undeployed.detail(), VmResult.Reason.STOPPED, undeployed.reason());
        assertEquals("device type 'watchdog' was undeployed: its bundle stopped", undeployed.detail());
        assertTrue("the VM that held it is destroyed", vms.find(holder.id()).isEmpty());
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> vms.create(guest("watchdog", "watchdog")));
        assertTrue(refused.getMessage(), refused.getMessage().contains("no device type 'watchdog' is installed"));
        await(() -> !ThirdParty.threadAlive("nxia-watchdog"), "the watchdog's checker thread ended with its bundle");
    }

    @Test
    public void aGuestCallsTheDeployedAdapterUntilItIsUndeployed() throws Exception {
        org.osgi.service.cm.Configuration manifest = config.createFactoryConfiguration("org.nxia.lsm.policy.manifest", "?");
        Hashtable<String, Object> props = new Hashtable<>();
        props.put("manifest", "profile checksum\nallow out checksum.*\n");
        manifest.update(props);
        await(() -> policy.manifests().containsKey("checksum"), "the checksum guest's manifest loaded");
        try {
            Gogo.run(processor, "felix:install " + ThirdParty.jar(CHECKSUM).toUri());
            long id = installed(context, CHECKSUM).orElseThrow().getBundleId();
            Gogo.run(processor, "felix:start " + id);
            assertEquals("the guest's three checksums match (status 0)", 0, Gogo.run(processor, "vm:run checksum").exit());

            Gogo.run(processor, "felix:uninstall " + id);
            assertEquals("undeployed: the guest's call fails (status 2)", 2, Gogo.run(processor, "vm:run checksum").exit());
            assertFalse(installed(context, CHECKSUM).isPresent());
        } finally {
            manifest.delete();
        }
    }
}
