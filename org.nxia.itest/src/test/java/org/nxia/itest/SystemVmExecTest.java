package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.file.Path;
import java.util.Collection;
import java.util.List;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.control.api.SystemVms;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.device.DeviceConfig;
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
 * With a virtio-rng device too, both devices' kicks must arrive through
 * ioeventfd doorbells (hardware KVM has them), not MMIO exits.
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

    @Inject
    org.apache.felix.service.command.CommandProcessor processor;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void runsProgramsInTheGuestThroughItsSessionService() throws Exception {
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(1).withMemory(256L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT)
                .withDevices(List.of(DeviceConfig.parse("virtio-rng")));
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
                assertKicksByDoorbell(svm.vm());
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
        org.nxia.vmm.api.VmResult end = svm.vm().result().orElseThrow();
        assertEquals("the agent powered the guest off through ACPI's sleep register: " + end, org.nxia.vmm.api.VmResult.Reason.POWERED_OFF,
                end.reason());
        System.out.println("SystemVmExecTest: closed: " + end.reason() + " (" + end.detail() + ")");
    }

    /**
     * Issue 17: a System VM booted as a Hyper-V guest gets its clock from the host through the time
     * sync channel of its VMBus. Its RTC reads 2000-01-01, so without the channel {@code date} would
     * say so; with it the guest's clock is the host's. Its agent still talks over virtio-vsock.
     */
    @Test
    public void aHyperVSystemVmGetsItsClockFromTheHost() throws Exception {
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(1).withMemory(256L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT).withHyperv(true);
        SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT);
        try {
            org.nxia.vmm.api.device.Device vmbus = svm.vm().devices().stream().filter(d -> d.type().equals("vmbus")).findFirst().orElseThrow();
            long by = System.nanoTime() + LinuxBootTest.BOOT_LIMIT.toNanos();
            while (!vmbus.state().toString().contains("timesync: framework 3.0, timesync 3.0, 1 sent, 1 answered") && System.nanoTime() < by) {
                Thread.sleep(200);
            }
            assertTrue("the guest answered the time sample: " + vmbus.state(),
                    vmbus.state().toString().contains("timesync: framework 3.0, timesync 3.0, 1 sent, 1 answered"));
            ExecResult date = null;
            long guest = 0;
            long host = 0;
            // the guest sets its clock from a work queue after it answers: give it a moment
            for (int i = 0; i < 50; i++) {
                date = svm.session().exec("/bin/busybox", "date", "+%s");
                host = System.currentTimeMillis() / 1000;
                guest = Long.parseLong(date.stdoutText().strip());
                if (Math.abs(guest - host) <= 10) {
                    break;
                }
                Thread.sleep(100);
            }
            System.out.println("SystemVmExecTest: a Hyper-V System VM's clock " + guest + " s, the host's " + host + " s; VMBus " + vmbus.state());
            assertTrue("the guest's clock is the host's (an unsynchronized one says 2000): guest " + guest + ", host " + host,
                    Math.abs(guest - host) <= 10);
        } finally {
            svm.close();
        }
    }

    /**
     * Issue 15: a System VM saved with its agent quiesced, then restored twice: each copy runs
     * programs, has the file written before the snapshot, is a generation of its own (reseeded
     * entropy; its own secret, which AgentGenerationTest checks), and the original runs on. Restore to a
     * working session against the cold boot to one, same run, printed.
     */
    @Test
    public void aSavedSystemVmIsRestoredTwiceWithItsFilesAndANewSecretEach() throws Exception {
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(1).withMemory(128L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT)
                .withDevices(List.of(DeviceConfig.parse("virtio-rng")));
        long t0 = System.nanoTime();
        SystemVm original = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT);
        long coldMs = (System.nanoTime() - t0) / 1_000_000;
        SystemVm first = null, second = null;
        try {
            assertEquals(0, original.session().exec("/bin/busybox", "sh", "-c", "echo before > /tmp/kept && sync").status().code());
            long t1 = System.nanoTime();
            SystemVmSnapshot saved = systemVms.snapshot(original.vm().id());
            long saveMs = (System.nanoTime() - t1) / 1_000_000;
            for (String pic : List.of("pic_master", "pic_slave")) {
                // kvm_pic_state: last_irr, irr, imr. A hardware-reduced ACPI Linux never programs the
                // 8259s: they are as the VMM left them, masked (else an early ISA interrupt is an exception vector)
                assertEquals(pic + "'s mask register", (byte) 0xff, saved.vm().partition().part(pic).orElseThrow().bytes()[2]);
            }
            assertEquals("the original runs on after the snapshot", "hi\n",
                    original.session().exec("/bin/busybox", "echo", "hi").stdoutText());
            assertEquals(0, original.session().exec("/bin/busybox", "sh", "-c", "echo after > /tmp/kept").status().code());

            long t2 = System.nanoTime();
            first = systemVms.restore(saved, LinuxBootTest.BOOT_LIMIT);
            long restoreMs = (System.nanoTime() - t2) / 1_000_000;
            second = systemVms.restore(saved, LinuxBootTest.BOOT_LIMIT);
            for (SystemVm copy : List.of(first, second)) {
                ExecResult kept = copy.session().exec("/bin/busybox", "cat", "/tmp/kept");
                assertEquals("the restored copy has the file as it was when saved: " + kept.stderrText(), "before\n", kept.stdoutText());
                assertEquals(0, copy.session().exec("/bin/busybox", "sh", "-c", "echo mine > /tmp/own").status().code());
            }
            assertEquals("the original's file is its own", "after\n", original.session().exec("/bin/busybox", "cat", "/tmp/kept").stdoutText());
            assertEquals(0, first.session().exec("/bin/busybox", "sh", "-c", "echo first > /tmp/own").status().code());
            assertEquals("a copy does not see the other's writes", "mine\n", second.session().exec("/bin/busybox", "cat", "/tmp/own").stdoutText());
            ExecResult random1 = first.session().exec("/bin/busybox", "sh", "-c", "head -c 16 /dev/urandom | od -An -tx1");
            ExecResult random2 = second.session().exec("/bin/busybox", "sh", "-c", "head -c 16 /dev/urandom | od -An -tx1");
            assertNotEquals("the copies' entropy was reseeded apart", random1.stdoutText(), random2.stdoutText());
            assertEquals(3, systemVms.list().size());
            System.out.println("SystemVmExecTest: System VM (128 MiB, 1 vCPU) cold boot to session " + coldMs + " ms; snapshot "
                    + saveMs + " ms (" + saved.vm().ram().size() + " RAM chunks); restore to a new generation's session " + restoreMs
                    + " ms (ratio " + String.format("%.3f", (double) restoreMs / coldMs) + ", <= 1 is better; emulated, one run)");
        } finally {
            for (SystemVm v : java.util.Arrays.asList(second, first, original)) {
                if (v != null) {
                    v.close();
                }
            }
        }
        assertTrue(systemVms.list().isEmpty());
    }

    /**
     * Issue 15: a System VM through a snapshot file, as a user does it in the shell: a key,
     * {@code systemvm:snapshot} of a running VM, the original gone, {@code systemvm:restore} in the
     * same process; the copy has the file written before the save. The file is encrypted (it holds the
     * agent's secret): without the key, or as a micro-VM's, it is refused. Then {@code systemvm:clone -n 2}
     * of the same file: both clones have the file, write their own, have entropy of their own, and share
     * the decrypted pages.
     */
    @Test
    public void aSystemVmGoesThroughAnEncryptedSnapshotFileAndComesBackWithItsFiles() throws Exception {
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(1).withMemory(128L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT);
        Path dir = java.nio.file.Files.createTempDirectory("sysvm-snap");
        Path key = dir.resolve("key");
        Path file = dir.resolve("sysvm.nxsnap");
        SystemVm original = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT);
        String restoredId = null;
        List<String> cloneIds = new java.util.ArrayList<>();
        try {
            assertEquals(0, original.session().exec("/bin/busybox", "sh", "-c", "echo before > /tmp/kept").status().code());
            Gogo.run(processor, "snapshot:key " + key);
            String noKey = refused("systemvm:snapshot " + original.vm().id() + " " + file);
            assertTrue(noKey, noKey.contains("always encrypted") && !java.nio.file.Files.exists(file));
            Gogo.Run saved = Gogo.run(processor, "systemvm:snapshot -k " + key + " " + original.vm().id() + " " + file);
            assertTrue(saved.output(), saved.output().contains("saved to " + file) && saved.output().contains("encrypted"));
            assertEquals("the original runs on after the save", "before\n",
                    original.session().exec("/bin/busybox", "cat", "/tmp/kept").stdoutText());
            original.close();
            String micro = refused("vm:restore -k " + key + " " + file);
            assertTrue(micro, micro.contains("System VM's snapshot: systemvm:restore"));
            Gogo.Run restored = Gogo.run(processor, "systemvm:restore -k " + key + " " + file);
            java.util.regex.Matcher id = java.util.regex.Pattern.compile("^(\\S+) restored from", java.util.regex.Pattern.MULTILINE).matcher(restored.output());
            assertTrue(restored.output(), id.find());
            restoredId = id.group(1);
            SystemVm copy = systemVms.find(restoredId).orElseThrow();
            ExecResult kept = copy.session().exec("/bin/busybox", "cat", "/tmp/kept");
            assertEquals("the copy from the file has the file written before the save: " + kept.stderrText(), "before\n", kept.stdoutText());
            copy.close();

            // two copy-on-write clones of the file: the saved pages decrypted once into memory, mapped by both
            Gogo.Run cloned = Gogo.run(processor, "systemvm:clone -k " + key + " -n 2 " + file);
            // the ids' line (the output holds the log's lines too)
            java.util.regex.Matcher idLine = java.util.regex.Pattern.compile("^(vm-\\d+) (vm-\\d+)$", java.util.regex.Pattern.MULTILINE)
                    .matcher(cloned.output());
            assertTrue(cloned.output(), idLine.find());
            String[] ids = {idLine.group(1), idLine.group(2)};
            cloneIds.addAll(List.of(ids));
            assertTrue(cloned.output(), cloned.output().contains("2 clones of " + file) && cloned.output().contains("mapped copy-on-write"));
            List<String> random = new java.util.ArrayList<>();
            for (String cloneId : ids) {
                SystemVm clone = systemVms.find(cloneId).orElseThrow();
                ExecResult k = clone.session().exec("/bin/busybox", "cat", "/tmp/kept");
                assertEquals("a clone has the file written before the save: " + k.stderrText(), "before\n", k.stdoutText());
                assertEquals(0, clone.session().exec("/bin/busybox", "sh", "-c", "echo " + cloneId + " > /tmp/kept").status().code());
                random.add(clone.session().exec("/bin/busybox", "sh", "-c", "head -c 16 /dev/urandom | od -An -tx1").stdoutText());
            }
            assertNotEquals("the clones' entropy was reseeded apart", random.get(0), random.get(1));
            for (String cloneId : ids) {
                SystemVm clone = systemVms.find(cloneId).orElseThrow();
                assertEquals("a clone's writes are its own", cloneId + "\n", clone.session().exec("/bin/busybox", "cat", "/tmp/kept").stdoutText());
                java.util.Map<String, Long> counters = clone.vm().info().counters();
                System.out.println("SystemVmExecTest: clone " + cloneId + " ram_file_resident_bytes=" + counters.get("ram_file_resident_bytes")
                        + " ram_shared_bytes=" + counters.get("ram_shared_bytes") + " ram_own_bytes=" + counters.get("ram_own_bytes"));
                assertTrue("the clones share the decrypted pages: " + counters, counters.get("ram_shared_bytes") > 0);
            }
            try (var left = java.nio.file.Files.list(Path.of("/dev/shm"))) {
                assertTrue("the decrypted RAM's file is gone once mapped",
                        left.noneMatch(p -> p.getFileName().toString().startsWith("nxia-clone")));
            }
            System.out.println("SystemVmExecTest: " + saved.output().strip() + " | " + restored.output().strip() + " | "
                    + cloned.output().substring(idLine.start()).strip().replace('\n', ' '));
        } finally {
            original.close();
            if (restoredId != null) {
                systemVms.find(restoredId).ifPresent(SystemVm::close);
            }
            for (String cloneId : cloneIds) {
                systemVms.find(cloneId).ifPresent(SystemVm::close);
            }
        }
    }

    /** The message of the error a Gogo command ends with. */
    private String refused(String command) {
        try {
            Gogo.Run r = Gogo.run(processor, command);
            throw new AssertionError("'" + command + "' was not refused: " + r.output());
        } catch (Exception e) {
            return String.valueOf(e.getMessage());
        }
    }

    /** Every virtio device of {@code vm} has its doorbell on and took kicks through it; prints the counters. */
    private static void assertKicksByDoorbell(VirtualMachine vm) {
        java.util.Map<String, Long> counters = vm.info().counters();
        System.out.println("SystemVmExecTest: mmio_exits " + counters.get("mmio_exits") + ", ioeventfd_doorbells "
                + counters.get("ioeventfd_doorbells") + ", ioeventfd_writes " + counters.get("ioeventfd_writes"));
        java.util.regex.Pattern kicks = java.util.regex.Pattern.compile("kicksByDoorbell=(\\d+)");
        for (var device : vm.devices()) {
            if (!device.type().startsWith("virtio-")) {
                continue;
            }
            String state = device.state().toString();
            System.out.println("SystemVmExecTest: " + state);
            assertTrue(device.type() + " kicks by doorbell: " + state, state.contains("notifyPath=ioeventfd"));
            java.util.regex.Matcher m = kicks.matcher(state);
            assertTrue(state, m.find() && Long.parseLong(m.group(1)) > 0);
        }
        assertTrue("the doorbells took the kicks: " + counters, counters.get("ioeventfd_writes") > 0);
    }
}
