package org.nxia.shell.systemvm.internal;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Collectors;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.control.api.SystemVms;
import org.nxia.shell.support.BenchStats;
import org.nxia.shell.support.Text;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.bench.Percentiles;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code bench:boot}: the System VM's kernel and initramfs from "start a VM
 * from these files on disk" to the agent's ready line, against
 * {@code qemu-system-x86_64 -M microvm -enable-kvm} booting the same files in
 * the same run over the same span, both consoles read as bytes arrive; and the
 * exec round trip of {@code true} through the agent. Needs hardware
 * virtualization; elsewhere it says why it did not run.
 */
@Component(service = SystemVmBenchCommands.class, property = {"osgi.command.scope=bench", "osgi.command.function=boot"})
public final class SystemVmBenchCommands {

    /** Where the launcher says the System VM image is (distro/system-vm/build.sh path). */
    static final String IMAGE_PROPERTY = "nxia.system.vm";
    static final String READY = "nxia-agent: ready";
    static final Duration READY_LIMIT = Duration.ofMinutes(5);
    /** The peer's command line: ours without the virtio-mmio devices (LinuxVm.BASE_CMDLINE). */
    static final String PEER_CMDLINE = "console=ttyS0 reboot=t panic=-1 pci=off 8250.nr_uarts=1";

    private final SystemVms systemVms;
    private final VmManager vms;

    @Activate
    public SystemVmBenchCommands(@Reference SystemVms systemVms, @Reference VmManager vms) {
        this.systemVms = systemVms;
        this.vms = vms;
    }

    @Descriptor("System VM boot to agent-ready (median of N) against qemu -M microvm -enable-kvm, and exec of 'true' p50/p99")
    public String boot(
            @Descriptor("boots per side") @Parameter(names = {"-n", "--boots"}, absentValue = "10") int boots,
            @Descriptor("exec round trips of 'true'") @Parameter(names = {"-e", "--execs"}, absentValue = "200") int execs,
            @Descriptor("kernel (default: the built System VM image)") @Parameter(names = {"-k", "--kernel"}, absentValue = "") String kernel,
            @Descriptor("initramfs (default: the built System VM image)") @Parameter(names = {"-r", "--initrd"}, absentValue = "") String initrd,
            @Descriptor("the QEMU to compare with") @Parameter(names = {"-q", "--qemu"}, absentValue = "qemu-system-x86_64") String qemu,
            @Descriptor("cold boots and restores to an agent session, each (0: none)") @Parameter(names = {"-s", "--restores"}, absentValue = "3")
            int restores)
            throws Exception {
        if (boots < 1 || execs < 10 || restores < 0)
            throw new IllegalArgumentException("at least 1 boot and 10 execs, and 0 or more restores");
        HypervisorInfo h = vms.hypervisor();
        if (!h.flavour().hardwareVirtualization()) {
            return "bench boot: not run: " + h.flavour().label() + " host, stock kernel needs hardware virtualization (VMX or SVM)";
        }
        Path k = image(kernel, "bzImage");
        Path r = image(initrd, "initramfs.cpio.gz");
        // without ACPI, as the peer (QEMU's microvm with acpi=off): the same boot work on both sides
        LinuxProfile profile = LinuxProfile.of(k, r).withVcpus(1).withMemory(256L << 20).withTimeout(Duration.ofMinutes(10))
                .withAcpi(false);

        long[] ours = new long[boots];
        long[] created = new long[boots];
        long[] running = new long[boots];
        for (int i = 0; i < boots; i++) {
            Boot b = nxiaBoot(profile);
            ours[i] = b.total();
            created[i] = b.created();
            running[i] = b.total() - b.created();
            System.err.printf("bench boot: NXIA boot %d/%d ready after %d ms%n", i + 1, boots, ours[i] / 1_000_000);
        }
        long[] exec = new long[execs];
        try (SystemVm svm = systemVms.boot(profile, READY_LIMIT)) {
            for (int j = 0; j < execs / 10; j++)
                svm.session().exec("/bin/true");  // warm-up
            for (int j = 0; j < execs; j++) {
                long t0 = System.nanoTime();
                ExecResult e = svm.session().exec("/bin/true");
                exec[j] = System.nanoTime() - t0;
                if (e.status().signaled() || e.status().code() != 0)
                    throw new IOException("true ended with " + e.status());
            }
        }

        String peerRow;
        String qemuMissing = missing(qemu);
        double peerMedian = Double.NaN;
        String peerLabel = "qemu -M microvm -enable-kvm (peer)";
        if (qemuMissing != null) {
            peerRow = String.format("  %-52s %s%n", peerLabel, "not run: " + qemuMissing);
        } else {
            long[] peer = new long[boots];
            try {
                for (int i = 0; i < boots; i++) {
                    peer[i] = qemuBoot(qemu, k, r);
                    System.err.printf("bench boot: qemu boot %d/%d ready after %d ms%n", i + 1, boots, peer[i] / 1_000_000);
                }
                peerMedian = BenchStats.median(peer);
                peerRow = String.format("  %-52s %10.1f %10.1f%n", peerLabel, peerMedian / 1e6, max(peer) / 1e6);
            } catch (IOException e) {
                peerRow = String.format("  %-52s %s%n", peerLabel, "failed: " + e.getMessage().strip());
            }
        }
        double oursMedian = BenchStats.median(ours);
        StringBuilder out = new StringBuilder();
        out.append(String.format("System VM boot, from \"start a VM from these files on disk\" (bzImage, initramfs) to '%s' on the%n"
                + "serial console, read as bytes arrive on both sides; %d boots each, 1 vCPU, 256 MiB, a 16550 console and no other%n"
                + "device on both sides (%s)%n", READY, boots, h.flavour().label()));
        out.append(String.format("  %-52s %10s %10s%n", "", "median ms", "max ms"));
        out.append(String.format("  %-52s %10.1f %10.1f%n", "NXIA, end to end", oursMedian / 1e6, max(ours) / 1e6));
        out.append(String.format("  %-52s %10.1f %10.1f%n", "  create + load (build the VM, read and load the files)",
                BenchStats.median(created) / 1e6, max(created) / 1e6));
        out.append(String.format("  %-52s %10.1f %10.1f%n", "  first instruction -> ready line", BenchStats.median(running) / 1e6,
                max(running) / 1e6));
        out.append(peerRow);
        out.append(String.format("  %-52s %s%n", BenchStats.RATIO_HEADING + ", goal >= 1.0",
                BenchStats.fmtRatio(BenchStats.speedRatio(oursMedian, peerMedian, false))));
        out.append(String.format("exec of /bin/true through the agent (vsock), %d round trips%n", execs));
        out.append(String.format("  %-52s %10s %10s%n", "", "p50 ms", "p99 ms"));
        out.append(String.format("  %-52s %10.2f %10.2f", "NXIA vm exec", Percentiles.nearestRankUnsorted(exec, 50) / 1e6,
                Percentiles.nearestRankUnsorted(exec, 99) / 1e6));
        if (restores > 0) {
            out.append('\n').append(restoreRows(profile, restores));
        }
        return out.toString();
    }

    /**
     * Issue 15's System VM figure: a cold boot to an open agent session against a restore of a
     * snapshot of that VM to the new generation's open session, both through {@link SystemVms}
     * (the same handshake ends both spans), and what the save took.
     */
    private String restoreRows(LinuxProfile profile, int n) throws Exception {
        long[] cold = new long[n];
        long[] restored = new long[n];
        SystemVmSnapshot saved = null;
        long saveNs = 0;
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            try (SystemVm svm = systemVms.boot(profile, READY_LIMIT)) {
                cold[i] = System.nanoTime() - t0;
                if (saved == null) {
                    long t1 = System.nanoTime();
                    saved = systemVms.snapshot(svm.vm().id());
                    saveNs = System.nanoTime() - t1;
                }
            }
            System.err.printf("bench boot: cold boot to session %d/%d in %d ms%n", i + 1, n, cold[i] / 1_000_000);
        }
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            try (SystemVm svm = systemVms.restore(saved, READY_LIMIT)) {
                restored[i] = System.nanoTime() - t0;
            }
            System.err.printf("bench boot: restore to session %d/%d in %d ms%n", i + 1, n, restored[i] / 1_000_000);
        }
        // clones: the saved RAM decrypted once into memory (timed apart), each clone mapping it copy-on-write
        long[] cloned = new long[n];
        long templateNs;
        SystemVmSnapshot state = RamTemplate.withoutRam(saved);
        long t1 = System.nanoTime();
        try (RamTemplate template = RamTemplate.of(saved.vm(), RamTemplate.SHM)) {
            templateNs = System.nanoTime() - t1;
            for (int i = 0; i < n; i++) {
                long t0 = System.nanoTime();
                try (SystemVm svm = systemVms.clone(state, template.ram(), READY_LIMIT)) {
                    cloned[i] = System.nanoTime() - t0;
                }
                System.err.printf("bench boot: clone to session %d/%d in %d ms%n", i + 1, n, cloned[i] / 1_000_000);
            }
        }
        double coldMedian = BenchStats.median(cold);
        double restoredMedian = BenchStats.median(restored);
        double clonedMedian = BenchStats.median(cloned);
        StringBuilder out = new StringBuilder();
        out.append(String.format("System VM restore: a cold boot to an open agent session against a restore of a snapshot of it to the%n"
                + "new generation's open session (its own secret, reseeded entropy), and against a copy-on-write clone of it%n"
                + "(systemvm:clone: RAM mapped from a copy in memory made once), %d each, 1 vCPU, 256 MiB%n", n));
        out.append(String.format("  %-52s %10s %10s%n", "", "median ms", "max ms"));
        out.append(String.format("  %-52s %10.1f %10.1f%n", "cold boot to session", coldMedian / 1e6, max(cold) / 1e6));
        out.append(String.format("  %-52s %10.1f %10.1f%n", "restore to session", restoredMedian / 1e6, max(restored) / 1e6));
        out.append(String.format("  %-52s %10.1f %10.1f%n", "copy-on-write clone to session", clonedMedian / 1e6, max(cloned) / 1e6));
        out.append(String.format("  %-52s %10.1f%n", "(once for all clones: RAM into memory, " + Text.size(saved.vm().ramBytes()) + ")",
                templateNs / 1e6));
        out.append(String.format("  %-52s %10.1f%n", "save (quiesce, pause, copy " + Text.size(saved.vm().ramBytes()) + " touched)",
                saveNs / 1e6));
        out.append(String.format("  %-52s %s%n", "restore / cold boot (<= 1 is better), goal <= 0.1",
                BenchStats.fmtRatio(restoredMedian / coldMedian)));
        out.append(String.format("  %-52s %s", "clone / cold boot (<= 1 is better)", BenchStats.fmtRatio(clonedMedian / coldMedian)));
        return out.toString();
    }

    /** One NXIA boot: nanoseconds from before create to the VM's existence (built, files loaded), and to the ready line. */
    private record Boot(long created, long total) {
    }

    /**
     * Boots {@code profile} with its console streamed to a watcher (bytes as they
     * arrive, as QEMU's stdout is read), from before {@code create} (the files
     * still on disk) to the ready line; then stops it. The VM appears in
     * {@link VmManager#list()} once built and loaded, just before its first
     * instruction: that instant splits the span into its two phases.
     */
    private Boot nxiaBoot(LinuxProfile profile) throws Exception {
        Set<String> before = vms.list().stream().map(VirtualMachine::id).collect(Collectors.toSet());
        CountDownLatch ready = new CountDownLatch(1);
        long[] readyAt = new long[1];
        Appendable watcher = new Appendable() {
            private final StringBuilder seen = new StringBuilder();

            @Override
            public Appendable append(CharSequence text) {
                int from = Math.max(0, seen.length() - READY.length());
                seen.append(text);
                if (ready.getCount() > 0 && seen.indexOf(READY, from) >= 0) {
                    readyAt[0] = System.nanoTime();
                    ready.countDown();
                }
                if (seen.length() > 1 << 20) {
                    seen.delete(0, seen.length() - READY.length());
                }
                return this;
            }

            @Override
            public Appendable append(CharSequence text, int start, int end) {
                return append(text.subSequence(start, end));
            }

            @Override
            public Appendable append(char c) {
                return append(String.valueOf(c));
            }
        };
        long t0 = System.nanoTime();
        Thread runner = Thread.ofPlatform().name("bench-boot").start(() -> {
            try {
                vms.run(profile, watcher);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        VirtualMachine vm = null;
        long createdAt = 0;
        try {
            long deadline = t0 + READY_LIMIT.toNanos();
            while (vm == null && runner.isAlive() && System.nanoTime() < deadline) {
                vm = vms.list().stream().filter(v -> !before.contains(v.id())).findFirst().orElse(null);
                createdAt = System.nanoTime();
                LockSupport.parkNanos(20_000);
            }
            if (vm == null || !ready.await(deadline - System.nanoTime(), TimeUnit.NANOSECONDS)) {
                throw new IOException("NXIA: no ready line in " + READY_LIMIT.toMinutes() + " min"
                        + (vm == null ? "" : "; console:\n" + vm.console()));
            }
            return new Boot(createdAt - t0, readyAt[0] - t0);
        } finally {
            if (vm != null) {
                vm.stop();
            }
            runner.join(TimeUnit.SECONDS.toMillis(30));
        }
    }

    /** One peer boot: process start (QEMU reads the files) to the ready line on its serial console as bytes arrive, then kill it. */
    private static long qemuBoot(String qemu, Path kernel, Path initrd) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(qemu, "-M", "microvm,x-option-roms=off,rtc=off,isa-serial=on,acpi=off", "-enable-kvm",
                "-cpu", "host", "-m", "256M", "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
                "-serial", "stdio", "-no-reboot", "-kernel", kernel.toString(), "-initrd", initrd.toString(),
                "-append", PEER_CMDLINE));
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        // a QEMU that prints nothing more must not block the read below forever
        Thread watchdog = Thread.ofVirtual().start(() -> {
            try {
                if (!p.waitFor(READY_LIMIT.toNanos(), java.util.concurrent.TimeUnit.NANOSECONDS))
                    p.destroyForcibly();
            } catch (InterruptedException e) {
                // the boot ended first
            }
        });
        try (InputStream in = p.getInputStream()) {
            StringBuilder seen = new StringBuilder();
            byte[] buf = new byte[4096];
            long deadline = t0 + READY_LIMIT.toNanos();
            while (System.nanoTime() < deadline) {
                int n = in.read(buf);
                if (n < 0)
                    throw new IOException("qemu ended before the ready line: " + tail(seen));
                seen.append(new String(buf, 0, n, StandardCharsets.UTF_8));
                if (seen.indexOf(READY) >= 0)
                    return System.nanoTime() - t0;
            }
            throw new IOException("qemu: no ready line in " + READY_LIMIT.toMinutes() + " min: " + tail(seen));
        } finally {
            watchdog.interrupt();
            p.destroyForcibly().waitFor();
        }
    }

    static Path image(String given, String name) {
        if (!given.isEmpty())
            return Path.of(given);
        String dir = System.getProperty(IMAGE_PROPERTY);
        if (dir == null || !Files.isRegularFile(Path.of(dir, name)))
            throw new IllegalArgumentException("no System VM image: build it ('./nxia image build') or give --kernel and --initrd");
        return Path.of(dir, name);
    }

    /**
     * Runs {@code argv} in the guest (the caller puts its deadline in, e.g. {@code timeout}); its
     * standard output, or an error naming the command with its status and error output.
     */
    static String guestOutput(org.nxia.control.api.AgentSession s, String... argv) throws IOException {
        ExecResult r = s.exec(argv);
        if (r.status().signaled() || r.status().code() != 0)
            throw new IOException("in the guest: " + String.join(" ", argv) + " (" + r.status() + "): " + r.stderrText().strip());
        return r.stdoutText();
    }

    /** Why {@code qemu} cannot run here, or null. */
    static String missing(String qemu) {
        if (qemu.contains("/"))
            return Files.isExecutable(Path.of(qemu)) ? null : qemu + " is not an executable";
        String path = System.getenv().getOrDefault("PATH", "");
        for (String dir : path.split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, qemu)))
                return null;
        }
        return qemu + " not found on PATH";
    }

    private static String tail(StringBuilder s) {
        return s.length() <= 2000 ? s.toString() : s.substring(s.length() - 2000);
    }

    private static long max(long[] ns) {
        return Arrays.stream(ns).max().orElse(0);
    }
}
