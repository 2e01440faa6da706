package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.Execution;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.OutputSink;
import org.nxia.control.api.ProcessCheckpoints;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * The System VM on its Debian root (issue 14.1): two VMs boot from one base
 * image, which the VMM opens read-only (in the rig it is a block device, the
 * rig's virtio drive), the agent mounts it under an overlay with a tmpfs upper
 * layer of each VM's own and switches to it, and programs run in Debian. What
 * one VM writes the other never sees, and the base's bytes are the same after.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsKernel
@HardwareVirtualizationRequirement.NeedsRootfs
@ExamReactorStrategy(PerClass.class)
public class RootfsTest {

    @Inject
    SystemVms systemVms;

    @Inject
    ProcessCheckpoints checkpoints;

    @Inject
    org.nxia.lsm.policy.api.CallPolicy policy;

    @Inject
    org.osgi.service.cm.ConfigurationAdmin config;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void debianBootsAndEachVmWritesOnlyItsOwnLayer() throws Exception {
        Path base = Path.of(System.getProperty(HardwareVirtualizationRequirement.ROOTFS_PROPERTY));
        String before = sha256(base);
        // the same System VM without the root, for the boot figures (same run, same rig)
        long plainReadyMs;
        try (SystemVm plain = systemVms.boot(profile(), LinuxBootTest.BOOT_LIMIT)) {
            plainReadyMs = plain.readyAfter().toMillis();
            assertEquals("the initramfs alone has no os-release", 1, plain.session().exec("test", "-e", "/etc/os-release").status().code());
        }
        long t0 = System.nanoTime();
        Manifests manifest = Manifests.load(config, policy, MANIFEST, "allow out text.upper caller=exe:/usr/bin/nxia-call\n");
        SystemVm a = boot(base);
        long bootMs = (System.nanoTime() - t0) / 1_000_000;
        try (SystemVm b = boot(base)) {
            AgentSession sa = a.session(), sb = b.session();
            long t1 = System.nanoTime();
            ExecResult os = sa.exec("cat", "/etc/os-release");
            long execMs = (System.nanoTime() - t1) / 1_000_000;
            assertEquals("stderr: " + os.stderrText(), 0, os.status().code());
            assertTrue(os.stdoutText(), os.stdoutText().contains("VERSION_CODENAME=bookworm"));
            assertTrue(os.stdoutText(), os.stdoutText().contains("ID=debian"));
            assertTrue("the agent is still init after the switch", sa.agentIsInit());
            String mounts = ok(sa, "cat", "/proc/mounts");
            assertTrue(mounts, mounts.contains("overlay / overlay "));
            assertTrue(mounts, mounts.matches("(?s).*/dev/vda /run/nxia/base ext4 ro[ ,].*"));
            assertEquals("Debian's bash and dpkg run", "ii \n", ok(sa, "bash", "-c", "dpkg-query -W -f '${db:Status-Abbrev}\\n' criu"));
            assertNotEquals("the base is read-only in the guest too", 0,
                    sa.exec("sh", "-c", "echo x > /run/nxia/base/x").status().code());
            assertEquals("Debian's processes call the host with the agent's own nxia-call, at the initramfs's path",
                    "FROM DEBIAN", ok(sa, "bash", "-c", "nxia-call text upper 'from debian'").strip());
            assertNotEquals("the tools are read-only", 0, sa.exec("sh", "-c", "echo x > /usr/bin/nxia-call").status().code());

            ok(sa, "sh", "-c", "echo from-a > /root/a.txt && echo changed >> /etc/os-release && sync");
            ok(sb, "sh", "-c", "echo from-b > /root/b.txt && sync");
            assertEquals("from-a\n", ok(sa, "cat", "/root/a.txt"));
            assertEquals("from-b\n", ok(sb, "cat", "/root/b.txt"));
            assertEquals("A does not see B's file", 1, sa.exec("test", "-e", "/root/b.txt").status().code());
            assertEquals("B does not see A's file", 1, sb.exec("test", "-e", "/root/a.txt").status().code());
            assertTrue("B's /etc/os-release is the base's", !ok(sb, "cat", "/etc/os-release").contains("changed"));
            System.out.println("RootfsTest: " + base + " (" + size(base) + " bytes): ready after " + a.readyAfter().toMillis()
                    + " and " + b.readyAfter().toMillis() + " ms (initramfs only: " + plainReadyMs + " ms), first boot to session "
                    + bootMs + " ms; exec cat /etc/os-release " + execMs + " ms");
        } finally {
            a.close();
            manifest.close();
        }
        assertEquals("the base image's bytes after both VMs", before, sha256(base));
    }

    /**
     * Issue 14.4: {@code criu check} passes in the System VM, and a process that counts is
     * checkpointed to a file on the host (which ends it), restored from the file, and counts on
     * from where it was, its output reaching the restoring program's stream.
     */
    @Test
    public void aCountingProcessIsCheckpointedToTheHostAndRestoredCountingOn() throws Exception {
        Path base = Path.of(System.getProperty(HardwareVirtualizationRequirement.ROOTFS_PROPERTY));
        try (SystemVm vm = boot(base)) {
            AgentSession s = vm.session();
            ExecResult check = s.exec("criu", "check");
            assertEquals("criu check: " + check.stdoutText() + check.stderrText(), 0, check.status().code());

            Lines before = new Lines();
            Execution counter = s.start(ExecRequest.of("bash", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done"), before);
            before.awaitAtLeast(5);
            Path file = Files.createTempDirectory("nxia-ckpt").resolve("counter.ckpt");
            ProcessCheckpoints.ProcessCheckpoint c = checkpoints.checkpoint(s, counter.pid(), file, false, Duration.ofMinutes(5));
            ExitStatus ended = counter.exit().get(60, TimeUnit.SECONDS);
            int last = before.last();
            assertTrue("the checkpointed process ended: " + ended, ended.signaled());
            assertTrue(c + " is on the host", Files.size(file) == c.bytes() && c.bytes() > 0);
            assertEquals("no process " + counter.pid() + " after the checkpoint", 1,
                    s.exec("test", "-d", "/proc/" + counter.pid()).status().code());

            Lines after = new Lines();
            Execution restored = checkpoints.restore(s, file, after);
            if (!after.awaitAtLeastOrEnd(last + 3, restored)) {
                ExitStatus st = restored.exit().get();
                String why = after.stderr.toString();
                System.out.println("RootfsTest: the restore ended (" + st + "): " + why);
                throw new AssertionError("the restore ended before counting on (" + st + "): " + why);
            }
            List<Integer> seen = after.numbers();
            assertEquals("the restored process counts on from " + last + ": " + seen + " (stderr: " + after.stderr + ")",
                    last + 1, (int) seen.get(0));
            for (int i = 1; i < seen.size(); i++) {
                assertEquals("counting on by one: " + seen, seen.get(i - 1) + 1, (int) seen.get(i));
            }
            assertEquals("the restored process has the pid it had", 0, s.exec("test", "-d", "/proc/" + counter.pid()).status().code());
            restored.signal(9);
            System.out.println("RootfsTest: checkpoint of a counting bash " + c.bytes() + " bytes in " + c.took().toMillis()
                    + " ms; it had counted to " + last + ", restored it went on with " + seen.get(0));

            Path garbage = file.resolveSibling("garbage.ckpt");
            Files.write(garbage, new byte[] {1, 2, 3});
            Lines refused = new Lines();
            ExitStatus bad = checkpoints.restore(s, garbage, refused).exit().get(60, TimeUnit.SECONDS);
            assertTrue("a file that is no checkpoint is refused: " + bad + " " + refused.stderr,
                    bad.code() != 0 && refused.stderr.toString().contains("not a checkpoint"));
        }
    }

    /** A program's stdout as numbers, one a line, and its stderr. */
    private static final class Lines implements OutputSink {
        private final StringBuilder stdout = new StringBuilder();
        final StringBuilder stderr = new StringBuilder();

        @Override
        public synchronized void output(boolean isStderr, byte[] data, int offset, int length) {
            (isStderr ? stderr : stdout).append(new String(data, offset, length, java.nio.charset.StandardCharsets.UTF_8));
            notifyAll();
        }

        synchronized List<Integer> numbers() {
            List<Integer> out = new java.util.ArrayList<>();
            for (String line : stdout.toString().split("\n")) {
                if (!line.isBlank()) {
                    out.add(Integer.parseInt(line.strip()));
                }
            }
            return out;
        }

        synchronized int last() {
            List<Integer> n = numbers();
            return n.get(n.size() - 1);
        }

        /** Whether the count reached {@code n} within 2 min; false as soon as {@code program} ended short of it. */
        synchronized boolean awaitAtLeastOrEnd(int n, Execution program) throws InterruptedException {
            long end = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
            while ((numbers().isEmpty() || last() < n) && System.nanoTime() - end < 0) {
                if (program.exit().isDone()) {
                    return !numbers().isEmpty() && last() >= n;
                }
                wait(200);
            }
            assertTrue("counted to " + n + " within 2 min: " + stdout + " / " + stderr, !numbers().isEmpty() && last() >= n);
            return true;
        }

        synchronized void awaitAtLeast(int n) throws InterruptedException {
            long end = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
            while ((numbers().isEmpty() || last() < n) && System.nanoTime() - end < 0) {
                wait(200);
            }
            assertTrue("counted to " + n + " within 2 min: " + stdout + " / " + stderr, !numbers().isEmpty() && last() >= n);
        }
    }

    /** What the Debian VMs' processes may call: the example service's upper, through nxia-call. */
    private static final String MANIFEST = "rootfs-itest";

    private static LinuxProfile profile() {
        return LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(1).withMemory(256L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT);
    }

    private SystemVm boot(Path base) throws IOException, InterruptedException {
        // what vm:exec --rootfs adds: the base, read-only, as the first disk, and the agent told so
        LinuxProfile profile = profile()
                .withDevices(List.of(new DeviceConfig("virtio-blk", Map.of("path", base.toString(), "ro", "true"))))
                .withCmdline("nxia.root=/dev/vda").withManifest(MANIFEST);
        return systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT);
    }

    private static String ok(AgentSession s, String... argv) throws IOException {
        ExecResult r = s.exec(argv);
        assertEquals(String.join(" ", argv) + ": " + r.stderrText(), 0, r.status().code());
        return r.stdoutText();
    }

    private static long size(Path p) throws IOException {
        try (FileChannel c = FileChannel.open(p)) {
            return c.size();  // a block device's too (Files.size says 0)
        }
    }

    /** The whole file or block device (Files.size is 0 on a block device: read to the end). */
    private static String sha256(Path p) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (InputStream in = Files.newInputStream(p)) {
            byte[] buf = new byte[1 << 20];
            for (int n; (n = in.read(buf)) > 0;) {
                md.update(buf, 0, n);
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }
}
