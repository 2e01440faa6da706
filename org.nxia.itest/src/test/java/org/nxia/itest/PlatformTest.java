package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.List;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.vmm.api.HostFunction;
import org.nxia.vmm.spi.Hypervisor;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.api.VmManager;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceReference;

/** The platform's wiring in a real Felix: every bundle active, every service and command registered. */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class PlatformTest {

    @Inject
    BundleContext context;

    @Inject
    VmManager vms;

    @Inject
    Hypervisor hypervisor;

    @Inject
    CommandProcessor processor;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void everyNxiaBundleIsActive() {
        List<String> wanted = Arrays.asList(NxiaOptions.NXIA_BUNDLES);
        int active = 0;
        for (Bundle b : context.getBundles()) {
            if (wanted.contains(b.getSymbolicName())) {
                assertEquals(b.getSymbolicName() + " state", Bundle.ACTIVE, b.getState());
                active++;
            }
        }
        assertEquals(wanted.size(), active);
    }

    @Test
    public void kvmBackendRegistersAndReportsItsFlavour() throws Exception {
        ServiceReference<?>[] refs = context.getServiceReferences(Hypervisor.class.getName(), "(nxia.hypervisor=kvm)");
        assertNotNull("the KVM backend registers even where KVM is missing", refs);
        HypervisorInfo info = hypervisor.info();
        assertEquals("kvm", info.backend());
        assertTrue("the detail says what KVM is or why it is missing: " + info.detail(), info.detail().length() > 10);
        System.out.println("backend: " + info.flavour().label() + (info.available() ? ", available: " : ", unavailable: ") + info.detail());
    }

    @Test
    public void exampleHostFunctionIsAService() throws Exception {
        ServiceReference<?>[] refs = context.getServiceReferences(HostFunction.class.getName(), "(nxia.hostfunction=upper)");
        assertNotNull("org.nxia.examples registers 'upper'", refs);
    }

    @Test
    public void gogoCommandsAreRegisteredWithHelp() throws Exception {
        String list = execute("vm:list");
        assertTrue(list, list.contains("no VMs"));
        for (String function : List.of("vm:create", "vm:start", "vm:stop", "vm:pause", "vm:resume", "vm:list", "vm:info", "vm:console", "vm:run",
                "nxia:doctor", "nxia:demo", "bench:exits", "bench:sandbox", "bench:snapshot", "bench:devices", "device:list")) {
            assertNotNull(function + " is registered", processor.createSession(System.in, System.out, System.err).get(function));
        }
    }

    @Test
    public void deviceListShowsThePlatformDevicesAndTheirBundle() throws Exception {
        String list = execute("device:list");
        for (String type : List.of("uart", "debug-exit", "i8042", "virtio-rng", "virtio-blk", "virtio-console")) {
            assertTrue(list, list.contains(type));
        }
        assertTrue(list, list.contains("org.nxia.device.platform"));
    }

    @Test
    public void badCommandInputGivesOneClearError() throws Exception {
        try {
            execute("vm:run --memory 3M hello");
            throw new AssertionError("3M of memory was accepted");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("multiple of 2 MiB"));
        }
        try {
            execute("vm:run /no/such/guest.elf");
            throw new AssertionError("a missing image was accepted");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("no such file"));
        }
        assertTrue(execute("vm:list").contains("no VMs"));
    }

    private String execute(String command) throws Exception {
        return Gogo.run(processor, command).output();
    }
}
