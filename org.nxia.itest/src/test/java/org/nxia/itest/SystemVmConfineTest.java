package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import java.nio.file.Path;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.Confinement;
import org.nxia.control.api.Confinement.PathRule;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.vmm.api.LinuxProfile;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * Issue 13 §5 in the System VM itself: its kernel (Landlock, seccomp filters)
 * confines what the agent starts — a read outside the path rules fails with
 * EACCES, a denied system call with EPERM.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsKernel
@ExamReactorStrategy(PerClass.class)
public class SystemVmConfineTest {

    @Inject
    SystemVms systemVms;

    @Inject
    org.osgi.service.cm.ConfigurationAdmin configAdmin;

    @Inject
    org.nxia.lsm.policy.api.CallPolicy policy;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void theGuestKernelConfinesWhatTheAgentStarts() throws Exception {
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(1).withMemory(256L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT).withManifest("confine-itest");
        try (SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT)) {
            AgentSession s = svm.session();
            Confinement binOnly = Confinement.paths(PathRule.of("/bin", "rx"));
            ExecResult denied = s.exec(ExecRequest.of("/bin/busybox", "ls", "/etc").withConfinement(binOnly));
            assertNotEquals("stdout " + denied.stdoutText() + ", stderr " + denied.stderrText(), 0, denied.status().code());
            assertTrue(denied.stderrText(), denied.stderrText().contains("Permission denied"));

            ExecResult allowed = s.exec(ExecRequest.of("/bin/busybox", "ls", "/etc")
                    .withConfinement(Confinement.paths(PathRule.of("/bin", "rx"), PathRule.of("/etc", "r"))));
            assertEquals("stderr " + allowed.stderrText(), 0, allowed.status().code());

            // mkdir (83) and mkdirat (258): whichever the C library uses
            ExecResult noMkdir = s.exec(ExecRequest.of("/bin/busybox", "mkdir", "/tmp/confined")
                    .withConfinement(Confinement.NONE.denying(83, 258)));
            assertNotEquals("stderr " + noMkdir.stderrText(), 0, noMkdir.status().code());
            assertTrue(noMkdir.stderrText(), noMkdir.stderrText().contains("Operation not permitted"));
            assertEquals(0, s.exec("/bin/busybox", "mkdir", "/tmp/unconfined").status().code());

            // processes and a network of their own: pid 2 under the agent's pid 1; /proc shows the two
            ExecResult own = s.exec(ExecRequest.of("/bin/busybox", "sh", "-c", "echo $$; echo /proc/[0-9]*")
                    .withConfinement(Confinement.NONE.unsharing(Confinement.Namespace.PID, Confinement.Namespace.NET)));
            assertEquals("stderr " + own.stderrText(), 0, own.status().code());
            assertTrue(own.stdoutText(), own.stdoutText().startsWith("2\n/proc/1 /proc/2\n"));

            // ids of its own: root of a user namespace that is 100000.. of the guest's, so root's 0600 file is closed to it
            assertEquals(0, s.exec("/bin/busybox", "sh", "-c", "echo secret > /tmp/root-only && chmod 600 /tmp/root-only").status().code());
            ExecResult user = s.exec(ExecRequest.of("/bin/busybox", "sh", "-c", "id -u; tr -s ' ' < /proc/self/uid_map; cat /tmp/root-only")
                    .withConfinement(Confinement.NONE.unsharing(Confinement.Namespace.USER, Confinement.Namespace.PID)));
            assertEquals("stderr " + user.stderrText(), "0\n 0 100000 65536\n", user.stdoutText());
            assertNotEquals(0, user.status().code());
            assertTrue(user.stderrText(), user.stderrText().contains("Permission denied"));
            // the manifest the VM was booted under confines whatever comes without a confinement of its own
            ExecResult unconfined = s.exec("/bin/busybox", "ls", "/etc");
            assertEquals("no manifest loaded yet: " + unconfined.stderrText(), 0, unconfined.status().code());
            ExecResult byManifest;
            try (Manifests m = Manifests.load(configAdmin, policy, "confine-itest", "guest path rx /bin\n")) {
                byManifest = s.exec("/bin/busybox", "ls", "/etc");
            }
            assertNotEquals("stdout " + byManifest.stdoutText(), 0, byManifest.status().code());
            assertTrue(byManifest.stderrText(), byManifest.stderrText().contains("Permission denied"));

            System.out.println("SystemVmConfineTest: " + denied.stderrText().strip() + " / " + noMkdir.stderrText().strip() + " / "
                    + user.stderrText().strip());
        }
    }
}
