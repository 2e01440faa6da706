package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Hashtable;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicReference;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.gemini.api.CallContext;
import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.lsm.policy.api.AuditEntry;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.lsm.policy.api.GuestProcess;
import org.nxia.vmm.api.LinuxProfile;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.cm.ConfigurationAdmin;

/**
 * Linux processes in the System VM call a host service through the agent's Gemini broker
 * (issue 13 §2): nxia-call from a shell, the caller's identity from the guest kernel, the
 * manifest deciding by it, the denial audited with the process.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsKernel
@ExamReactorStrategy(PerClass.class)
public class SystemVmGeminiTest {

    @Inject
    SystemVms systemVms;

    @Inject
    Gemini gemini;

    @Inject
    CallPolicy policy;

    @Inject
    ConfigurationAdmin config;

    @Inject
    BundleContext context;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    /** The host service: upper-cases, and remembers which guest process asked. */
    public static final class Text {
        final AtomicReference<GuestProcess> caller = new AtomicReference<>();

        public String upper(CallContext c, String s) {
            caller.set(c.process().orElse(null));
            return s.toUpperCase(Locale.ROOT);
        }

        public String lower(String s) {
            return s.toLowerCase(Locale.ROOT);
        }
    }

    @Test
    public void aShellCallsTheHostWithNxiaCallAndThePolicyKnowsWhichProcess() throws Exception {
        Text text = new Text();
        Hashtable<String, Object> sp = new Hashtable<>();
        sp.put(Gemini.SERVICE_PROPERTY, "itest");
        ServiceRegistration<?> reg = context.registerService(Object.class.getName(), text, sp);
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withName("sysvm-gemini").withVcpus(1).withMemory(256L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT);
        try (Manifests m = Manifests.load(config, policy, "sysvm-gemini", "allow out itest.upper caller=uid:0 caller=exe:/usr/bin/nxia-call\nallow in shout.*\n");
             SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT)) {
            AgentSession s = svm.session();
            ExecResult up = s.exec("/usr/bin/nxia-call", "itest", "upper", "hello from the system vm");
            assertEquals(up.stderrText(), 0, up.status().code());
            assertEquals("HELLO FROM THE SYSTEM VM\n", up.stdoutText());
            GuestProcess who = text.caller.get();
            assertEquals(0, who.uid());
            assertEquals("/usr/bin/nxia-call", who.exe());

            ExecResult denied = s.exec("/usr/bin/nxia-call", "itest", "lower", "X");
            assertEquals(denied.stderrText(), 71, denied.status().code()); // 64 + DENIED
            assertTrue(denied.stderrText(), denied.stderrText().startsWith("nxia-call: DENIED: "));
            AuditEntry e = policy.audit(100).stream().filter(a -> a.request().method().equals("lower")).reduce((a, b) -> b).orElseThrow();
            assertEquals("guest:" + svm.vm().id(), e.request().caller());
            assertEquals("/usr/bin/nxia-call", e.request().process().exe());

            ExecResult sh = s.exec("/bin/busybox", "sh", "-c", "for i in 1 2 3 4 5; do /usr/bin/nxia-call itest upper \"call $i\" & done; wait");
            assertEquals(sh.stderrText(), 0, sh.status().code());
            assertEquals(5, sh.stdoutText().lines().filter(l -> l.startsWith("CALL ")).count());
            GeminiSession session = gemini.sessionOfVm(svm.vm().id()).orElseThrow();
            assertEquals("one session for the VM's processes", "nxia-agent", session.peer());

            // the other way: a host call of a function a Linux program serves
            ExecResult started = s.exec("/bin/busybox", "sh", "-c", "/usr/bin/nxia-serve shout it tr a-z A-Z > /tmp/serve.log 2>&1 &");
            assertEquals(started.stderrText(), 0, started.status().code());
            long end = System.nanoTime() + 30_000_000_000L;
            while (!s.exec("/bin/busybox", "cat", "/tmp/serve.log").stdoutText().contains("serving shout.it") && System.nanoTime() < end) {
                Thread.sleep(100);
            }
            byte[] shouted = (byte[]) session.call("shout", "it", java.time.Duration.ofSeconds(30), "from the host".getBytes(StandardCharsets.UTF_8));
            assertEquals("FROM THE HOST", new String(shouted, StandardCharsets.UTF_8));
            System.out.println("SystemVmGeminiTest: " + up.stdoutText().strip() + " from " + who + "; denied: " + denied.stderrText().strip()
                    + "; host->linux shout.it: " + new String(shouted, StandardCharsets.UTF_8));
            svm.close();
            assertFalse("the VM's end ends its session", session.isOpen());
        } finally {
            reg.unregister();
        }
    }
}
