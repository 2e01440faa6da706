package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.file.Path;
import java.util.Collection;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VmManager;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceReference;

/**
 * Boots the System VM through {@link SystemVms}: the agent's ready line, a
 * session over virtio-vsock port 1024 registered as an {@code AgentSession}
 * service for that VM, programs run in the guest, and a clean end that takes
 * the service away — the whole host-to-guest exec path under a real Linux driver.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsKernel
@ExamReactorStrategy(PerClass.class)
public class SystemVmExecTest {

    @Inject
    SystemVms systemVms;

    @Inject
    VmManager vms;

    @Inject
    BundleContext context;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void runsProgramsInTheGuestThroughItsSessionService() throws Exception {
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(1).withMemory(256L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT);
        long t0 = System.nanoTime();
        SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT);
        String id = svm.vm().id();
        try {
            long sessionMs = (System.nanoTime() - t0) / 1_000_000 - svm.readyAfter().toMillis();
            Collection<ServiceReference<AgentSession>> refs = context.getServiceReferences(AgentSession.class, "(" + SystemVms.VM_ID + "=" + id + ")");
            assertEquals("one AgentSession service for VM " + id, 1, refs.size());
            AgentSession s = context.getService(refs.iterator().next());
            try {
                assertTrue("the agent runs as init: " + s.agent(), s.agentIsInit());
                long t1 = System.nanoTime();
                ExecResult r = s.exec("/bin/busybox", "echo", "hi");
                long execMs = (System.nanoTime() - t1) / 1_000_000;
                assertFalse(r.status().toString(), r.status().signaled());
                assertEquals("exit status; stderr " + r.stderrText(), 0, r.status().code());
                assertEquals("hi\n", r.stdoutText());
                assertEquals(1, s.exec("/bin/busybox", "false").status().code());
                System.out.println("SystemVmExecTest: ready after " + svm.readyAfter().toMillis() + " ms, session in " + sessionMs
                        + " ms, exec echo in " + execMs + " ms (" + s.agent() + ")");
            } finally {
                context.ungetService(refs.iterator().next());
            }
            assertEquals(1, systemVms.list().size());
        } finally {
            svm.close();
        }
        assertTrue("the session service went with the VM",
                context.getServiceReferences(AgentSession.class, "(" + SystemVms.VM_ID + "=" + id + ")").isEmpty());
        assertTrue("the VM is destroyed", systemVms.find(id).isEmpty() && vms.list().stream().noneMatch(v -> v.id().equals(id)));
    }
}
