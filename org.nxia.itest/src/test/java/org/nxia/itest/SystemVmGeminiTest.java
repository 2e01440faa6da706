package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.charset.StandardCharsets;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Hashtable;
import java.util.List;
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
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Rights;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.device.DeviceConfig;
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
 * manifest deciding by it, the denial audited with the process; and a process's ring session:
 * its calls over Portal rings of its own in a device-DAX region, by value and by reference.
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

    @Inject
    Portals portals;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    /** The host service: upper-cases, and remembers which guest process asked. */
    public static final class Text {
        final AtomicReference<GuestProcess> caller = new AtomicReference<>();
        final AtomicReference<String> digest = new AtomicReference<>();

        public String upper(CallContext c, String s) {
            caller.set(c.process().orElse(null));
            return s.toUpperCase(Locale.ROOT);
        }

        public String lower(String s) {
            return s.toLowerCase(Locale.ROOT);
        }

        final java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        final java.util.concurrent.atomic.AtomicInteger holding = new java.util.concurrent.atomic.AtomicInteger();

        /** Answers once released (or after 60 s): a call in flight for as long as the test wants. */
        public String hold() throws InterruptedException {
            holding.incrementAndGet();
            return release.await(60, java.util.concurrent.TimeUnit.SECONDS) ? "released" : "not released";
        }

        /** SHA-256 of a byte argument, read where it lies (by reference: in region gemini). */
        public String sha256(MemorySegment data) throws Exception {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(data.asByteBuffer());
            digest.set(HexFormat.of().formatHex(md.digest()));
            return digest.get();
        }
    }

    static final long MIB = 1L << 20;

    /** {@code text} as the host service "itest". */
    private ServiceRegistration<?> serve(Text text) {
        Hashtable<String, Object> sp = new Hashtable<>();
        sp.put(Gemini.SERVICE_PROPERTY, "itest");
        return context.registerService(Object.class.getName(), text, sp);
    }

    /** The System VM image on 1 vCPU, named for its manifest. */
    private static LinuxProfile profile(String name, long memoryBytes) {
        return LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withName(name).withVcpus(1).withMemory(memoryBytes).withTimeout(LinuxBootTest.BOOT_LIMIT);
    }

    /**
     * Issue 15's drain, in the System VM: a snapshot taken while a Linux process's call to the
     * host is in flight waits for that call to end before the VM is paused and saved, and the
     * process gets its answer.
     */
    @Test
    public void aSnapshotWaitsForAProcesssCallInFlight() throws Exception {
        Text text = new Text();
        ServiceRegistration<?> reg = serve(text);
        LinuxProfile profile = profile("sysvm-drain", 128L << 20);
        try (Manifests m = Manifests.load(config, policy, "sysvm-drain", "allow out itest.hold\n");
             SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT)) {
            AgentSession s = svm.session();
            ExecResult started = s.exec("/bin/busybox", "sh", "-c", "/usr/bin/nxia-call itest hold > /tmp/hold.out 2>&1 &");
            assertEquals(started.stderrText(), 0, started.status().code());
            long end = System.nanoTime() + 30_000_000_000L;
            while (text.holding.get() == 0 && System.nanoTime() < end) {
                Thread.sleep(50);
            }
            assertEquals("the process's call reached the host", 1, text.holding.get());
            java.util.concurrent.CompletableFuture<Long> saved = new java.util.concurrent.CompletableFuture<>();
            Thread.ofVirtual().start(() -> {
                try {
                    systemVms.snapshot(svm.vm().id());
                    saved.complete(System.nanoTime());
                } catch (Throwable t) {
                    saved.completeExceptionally(t);
                }
            });
            Thread.sleep(1500);
            assertFalse("no snapshot while the call is in flight", saved.isDone());
            long released = System.nanoTime();
            text.release.countDown();
            long savedAt = saved.get(60, java.util.concurrent.TimeUnit.SECONDS);
            assertTrue("saved after the call ended", savedAt > released);
            String out = "";
            end = System.nanoTime() + 30_000_000_000L;
            while (!out.contains("released") && System.nanoTime() < end) {
                out = s.exec("/bin/busybox", "cat", "/tmp/hold.out").stdoutText();
                Thread.sleep(100);
            }
            assertEquals("the process got its answer", "released\n", out);
            System.out.println("SystemVmGeminiTest: snapshot waited for the call in flight; saved "
                    + (savedAt - released) / 1_000_000 + " ms after its answer");
        } finally {
            text.release.countDown();
            reg.unregister();
        }
    }

    @Test
    public void aProcessCallsOverPortalRingsOfItsOwnByValueAndByReference() throws Exception {
        Text text = new Text();
        ServiceRegistration<?> reg = serve(text);
        portals.create("itring", Portals.LINUX_DAX_OFFSET + 2 * MIB, "SystemVmGeminiTest", Rights.RW, null);
        portals.create("gemini", Portals.LINUX_DAX_OFFSET + 130 * MIB, "SystemVmGeminiTest", Rights.RW, null);   // two 64 MiB blocks
        LinuxProfile profile = profile("sysvm-ring", 512L << 20)
                .withDevices(List.of(DeviceConfig.parse("portal:name=itring"), DeviceConfig.parse("virtio-pmem:region=itring,dax=true"),
                        DeviceConfig.parse("portal:name=gemini"), DeviceConfig.parse("virtio-pmem:region=gemini,dax=true")));
        try (Manifests m = Manifests.load(config, policy, "sysvm-ring",
                "allow out gemini.ring caller=exe:/usr/bin/nxia-call\nallow out itest.* caller=uid:0 caller=exe:/usr/bin/nxia-call\n");
             SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT)) {
            AgentSession s = svm.session();
            String vm = svm.vm().id();
            ExecResult up = s.exec("/usr/bin/nxia-call", "--ring", "itring", "itest", "upper", "over the ring");
            assertEquals(up.stderrText(), 0, up.status().code());
            assertEquals("OVER THE RING\n", up.stdoutText());
            assertEquals("the call on the rings carries the process the broker vouched for", "/usr/bin/nxia-call", text.caller.get().exe());
            awaitOnlyTheBrokersSession(vm);

            ExecResult ring = s.exec("/usr/bin/nxia-call", "-n", "30", "--ring", "itring@0x300000", "itest", "upper", "x");
            assertEquals(ring.stderrText(), 0, ring.status().code());
            ExecResult broker = s.exec("/usr/bin/nxia-call", "-n", "30", "itest", "upper", "x");
            assertEquals(broker.stderrText(), 0, broker.status().code());

            // 64 MiB by reference over the ring, timed in the guest (-n 1: the call alone), checksummed on both sides
            ExecResult ref = s.exec("/bin/busybox", "sh", "-c", "head -c 67108864 /dev/urandom > /tmp/arg && /bin/busybox sha256sum /tmp/arg"
                    + " && /usr/bin/nxia-call -t 600 -n 1 -m ref --ring itring itest sha256 @/tmp/arg && rm /tmp/arg");
            assertEquals(ref.stderrText(), 0, ref.status().code());
            List<String> lines = ref.stdoutText().lines().toList();
            assertEquals(ref.stdoutText(), 2, lines.size());
            assertEquals("64 MiB by reference over the ring: the host's digest is the guest's", lines.get(0).split(" ")[0], text.digest.get());
            double mibs = 64 / (Long.parseLong(lines.get(1).strip()) / 1e9);

            ExecResult misplaced = s.exec("/usr/bin/nxia-call", "--ring", "itring@0x1000", "itest", "upper", "x");
            assertEquals(misplaced.stderrText(), 3, misplaced.status().code());
            awaitOnlyTheBrokersSession(vm);
            System.out.println("SystemVmGeminiTest ring session (emulated, QEMU TCG): null call p50 " + p50us(ring.stdoutText())
                    + " us over the ring, " + p50us(broker.stdoutText()) + " us through the broker; 64 MiB by reference over the ring: "
                    + String.format(Locale.ROOT, "%.1f MiB/s (the host hashing it)", mibs));
        } finally {
            reg.unregister();
            portals.delete("itring");
            portals.delete("gemini");
        }
    }

    /** The VM's only session is its broker's again: each ring session ended with its process. */
    private void awaitOnlyTheBrokersSession(String vm) throws InterruptedException {
        long end = System.nanoTime() + 10_000_000_000L;
        while (gemini.sessions().stream().filter(x -> vm.equals(x.vmId())).count() != 1) {
            assertTrue("the ring sessions end with their processes", System.nanoTime() < end);
            Thread.sleep(20);
        }
    }

    private static String p50us(String samples) {
        long[] ns = samples.lines().mapToLong(Long::parseLong).sorted().toArray();
        return String.format(Locale.ROOT, "%.1f", ns[(ns.length - 1) / 2] / 1e3);
    }

    @Test
    public void aShellCallsTheHostWithNxiaCallAndThePolicyKnowsWhichProcess() throws Exception {
        Text text = new Text();
        ServiceRegistration<?> reg = serve(text);
        LinuxProfile profile = profile("sysvm-gemini", 256L << 20);
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
