package org.nxia.shell.systemvm.internal;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.spi.HypervisorInfo;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code bench:io} (issue 14's benchmark): the System VM on its Debian root runs fio on a
 * virtio-blk disk and on a virtio-fs share, and iperf3 through passt both ways; the host runs the
 * same fio jobs on a file in the same directory and iperf3 between two of its processes on the
 * loopback, in the same run. Every figure is Debian's own tools' (fio's terse output, iperf3's
 * JSON), read the same way on both sides.
 */
@Component(service = SystemVmIoBench.class, property = {"osgi.command.scope=bench", "osgi.command.function=io"})
public final class SystemVmIoBench {

    static final String GATEWAY = "10.0.2.2";
    static final int GUEST_IPERF_PORT = 5201;
    /** The longest one guest command may take: fio of a few hundred MiB under emulation. */
    static final Duration STEP_LIMIT = Duration.ofMinutes(10);

    private final SystemVms systemVms;
    private final VmManager vms;

    @Activate
    public SystemVmIoBench(@Reference SystemVms systemVms, @Reference VmManager vms) {
        this.systemVms = systemVms;
        this.vms = vms;
    }

    /** One fio job: its name, and the options both sides give it (the file comes after). */
    record Job(String name, String label, boolean write, boolean random, String options) {
    }

    static List<Job> jobs(long size) {
        String common = "--size=" + size + " --ioengine=psync --invalidate=1 --output-format=terse --terse-version=3";
        return List.of(
                new Job("seqwrite", "sequential write 1 MiB, MiB/s", true, false, "--rw=write --bs=1M --end_fsync=1 " + common),
                new Job("seqread", "sequential read 1 MiB, MiB/s", false, false, "--rw=read --bs=1M " + common),
                new Job("randwrite", "random write 4 KiB, IOPS", true, true, "--rw=randwrite --bs=4k --end_fsync=1 " + common),
                new Job("randread", "random read 4 KiB, IOPS", false, true, "--rw=randread --bs=4k " + common));
    }

    /**
     * The job's figure from fio's terse (version 3) line: MiB/s for a sequential job, IOPS for a
     * random one, of its read or write part.
     */
    static double fioFigure(String terse, Job job) {
        String line = terse.lines().filter(l -> l.startsWith("3;")).reduce((a, b) -> b)
                .orElseThrow(() -> new IllegalArgumentException("no fio terse line in: " + clip(terse)));
        String[] f = line.split(";");
        // terse v3, 0-based: 6 read bandwidth KiB/s, 7 read IOPS; 47 write bandwidth KiB/s, 48 write IOPS
        int at = (job.write() ? 47 : 6) + (job.random() ? 1 : 0);
        if (f.length <= 48) {
            throw new IllegalArgumentException("fio's terse line has " + f.length + " fields, not version 3's: " + clip(line));
        }
        double v = Double.parseDouble(f[at]);
        return job.random() ? v : v / 1024;
    }

    private static final Pattern RECEIVED = Pattern.compile("\"sum_received\"\\s*:\\s*\\{[^}]*?\"bits_per_second\"\\s*:\\s*([0-9.eE+-]+)");

    /** MiB/s the receiver counted, from iperf3's JSON ({@code -J}). */
    static double iperfMibPerSecond(String json) {
        Matcher m = RECEIVED.matcher(json);
        if (!m.find()) {
            throw new IllegalArgumentException("no sum_received in iperf3's output: " + clip(json));
        }
        return Double.parseDouble(m.group(1)) / 8 / (1 << 20);
    }

    @Descriptor("fio on virtio-blk and virtio-fs, iperf3 through passt both ways, in the System VM on its Debian root,"
            + " against the same jobs on the host in the same run")
    public String io(
            @Descriptor("bytes each fio job moves (default 64M)") @Parameter(names = {"-s", "--size"}, absentValue = "64M") String size,
            @Descriptor("seconds each iperf3 run takes") @Parameter(names = {"-t", "--time"}, absentValue = "5") int seconds,
            @Descriptor("the Debian root image (./nxia image rootfs)") @Parameter(names = {"--rootfs"}, absentValue = "") String rootfs,
            @Descriptor("where the disk image, the share and the host's files go (default: a temporary directory)")
            @Parameter(names = {"-d", "--dir"}, absentValue = "") String dir,
            @Descriptor("kernel (default: the built System VM image)") @Parameter(names = {"-k", "--kernel"}, absentValue = "") String kernel,
            @Descriptor("initramfs (default: the built System VM image)") @Parameter(names = {"-r", "--initrd"}, absentValue = "") String initrd)
            throws Exception {
        long bytes = VmProfile.parseSize(size);
        if (bytes < (1 << 20) || seconds < 1 || seconds > 600)
            throw new IllegalArgumentException("at least 1M a job and 1..600 s an iperf3 run");
        HypervisorInfo h = vms.hypervisor();
        if (!h.flavour().hardwareVirtualization())
            return "bench io: not run: " + h.flavour().label() + " host, stock kernel needs hardware virtualization (VMX or SVM)";
        if (rootfs.isEmpty())
            return "bench io: not run: it needs the Debian root (fio and iperf3 are in it): ./nxia image rootfs, then --rootfs PATH";
        for (String tool : List.of("fio", "iperf3")) {
            String why = SystemVmBenchCommands.missing(tool);
            if (why != null)
                return "bench io: not run: the host's side needs " + tool + " (" + why + "; apt-get install fio iperf3)";
        }
        Path work = dir.isEmpty() ? Files.createTempDirectory("nxia-bench-io") : Files.createDirectories(Path.of(dir));
        try {
            return run(bytes, seconds, rootfs, work, kernel, initrd);
        } finally {
            if (dir.isEmpty())
                deleteTree(work);
        }
    }

    private String run(long bytes, int seconds, String rootfs, Path work, String kernel, String initrd) throws Exception {
        Path disk = work.resolve("disk.img");
        try (var f = java.nio.channels.FileChannel.open(disk, java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.WRITE)) {
            f.truncate(0);
            f.write(java.nio.ByteBuffer.wrap(new byte[1]), bytes + (1 << 20) - 1);   // room for the job, a sparse file
        }
        Path share = Files.createDirectories(work.resolve("share"));
        Path hostFiles = Files.createDirectories(work.resolve("host"));
        int forward = freePort();
        List<DeviceConfig> devices = List.of(
                DeviceConfig.parse("virtio-blk:path=" + disk),
                SystemVmCommands.shareDevice(share.toString()),
                DeviceConfig.parse("virtio-net:forward=" + forward + ":" + GUEST_IPERF_PORT + ",address=10.0.2.15/24,gateway=" + GATEWAY
                        // loopback as the template: the host peer is on it, and the rig has no other interface
                        + ",interface=lo"));
        LinuxProfile profile = RootFs.apply(LinuxProfile.of(SystemVmBenchCommands.image(kernel, "bzImage"),
                        SystemVmBenchCommands.image(initrd, "initramfs.cpio.gz")).withName("bench-io").withVcpus(1).withMemory(1L << 30)
                .withTimeout(Duration.ofHours(1)).withDevices(devices), rootfs);
        List<Job> jobs = jobs(bytes);
        StringBuilder out = new StringBuilder();
        try (SystemVm svm = systemVms.boot(profile, SystemVmBenchCommands.READY_LIMIT)) {
            SystemVmCommands.mountShare(svm, Duration.ofMinutes(2));
            String blkDevice = "/dev/vdb";   // after the root, /dev/vda
            out.append(String.format("fio jobs of %s each (psync, one job; the guest's page cache and the host's alike, writes end with"
                    + " fsync; %s), in the System VM (Debian, 1 vCPU) and the same job on the host, same run; guest / host: >= 1 is better%n",
                    org.nxia.shell.support.Text.size(bytes), dropHostCaches() ? "the host's page cache dropped before each job"
                            : "the host's page cache NOT dropped (not root): reads may be warm"));
            out.append(String.format("  %-34s %12s %12s %12s %12s%n", "job", "virtio-blk", "virtio-fs", "host file", "blk / host"));
            List<String> fsRatios = new ArrayList<>();
            for (Job job : jobs) {
                dropHostCaches();
                double blk = fioFigure(guest(svm, fio(job, blkDevice)), job);
                dropHostCaches();
                double fs = fioFigure(guest(svm, fio(job, SystemVmCommands.SHARE_MOUNT + "/fio.dat")), job);
                dropHostCaches();
                double host = fioFigure(host(List.of(fio(job, hostFiles.resolve("fio.dat").toString()))), job);
                out.append(String.format("  %-34s %12.1f %12.1f %12.1f %11.2fx%n", job.label(), blk, fs, host, blk / host));
                fsRatios.add(String.format("%s %.2fx", job.name(), fs / host));
                System.err.printf("bench io: %s done%n", job.name());
            }
            out.append("  virtio-fs / host: ").append(String.join(", ", fsRatios))
                    .append(" (goals on hardware KVM: blk >= 0.7x, virtio-fs sequential >= 0.5x)\n\n");

            double floor = loopbackFloor(seconds);
            double toHost = guestToHost(svm, seconds);
            double toGuest = hostToGuest(svm, forward, seconds);
            out.append(String.format("iperf3 TCP through passt, %d s each, MiB/s as the receiver counts; floor: iperf3 between two host"
                    + " processes on the loopback, same run; / floor: >= 1 is better (goal on hardware KVM >= 0.5x)%n", seconds));
            out.append(String.format("  %-34s %12.1f %11.2fx%n", "guest -> host (gateway " + GATEWAY + ")", toHost, toHost / floor));
            out.append(String.format("  %-34s %12.1f %11.2fx%n", "host -> guest (forwarded port)", toGuest, toGuest / floor));
            out.append(String.format("  %-34s %12.1f %11.2fx%n", "floor: host loopback", floor, 1.0));
        }
        return out.toString();
    }

    /** fio's command line for {@code job} on {@code file}, the same on both sides. */
    static String[] fio(Job job, String file) {
        return Stream.concat(Stream.of("fio", "--name=" + job.name(), "--filename=" + file), Stream.of(job.options().split(" ")))
                .toArray(String[]::new);
    }

    /** Whether the host's page cache is dropped before each job (root can; others' figures may read it warm). */
    private static boolean dropHostCaches() {
        try {
            new ProcessBuilder("sync").start().waitFor(60, TimeUnit.SECONDS);
            Files.writeString(Path.of("/proc/sys/vm/drop_caches"), "1");
            return true;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    /** Runs {@code argv} in the guest under a time limit; its standard output, or an error with its standard error. */
    private static String guest(SystemVm svm, String... argv) throws Exception {
        return SystemVmBenchCommands.guestOutput(svm.session(),
                Stream.concat(Stream.of("timeout", String.valueOf(STEP_LIMIT.toSeconds())), Stream.of(argv)).toArray(String[]::new));
    }

    /** Runs {@code argv} on the host under a time limit; its standard output, or an error with its standard error. */
    private static String host(List<String> argv) throws IOException, InterruptedException {
        Path err = Files.createTempFile("nxia-bench-io", ".err");
        try {
            Process p = new ProcessBuilder(argv).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .start();
            byte[] stdout = p.getInputStream().readAllBytes();   // fio and iperf3 end their output when they end
            if (!p.waitFor(STEP_LIMIT.toSeconds(), TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("bench io: on the host, " + String.join(" ", argv) + " did not end within " + STEP_LIMIT.toMinutes() + " min");
            }
            if (p.exitValue() != 0)
                throw new IOException("bench io: on the host, " + String.join(" ", argv) + " exited with " + p.exitValue() + ": "
                        + clip(Files.readString(err)));
            return new String(stdout, StandardCharsets.UTF_8);
        } finally {
            Files.deleteIfExists(err);
        }
    }

    /** A host iperf3 server for one test on 127.0.0.1:port; the caller waits for it. */
    private static Process iperfServer(int port) throws IOException {
        return new ProcessBuilder("iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", String.valueOf(port))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    }

    private static double loopbackFloor(int seconds) throws Exception {
        int port = freePort();
        Process server = iperfServer(port);
        try {
            Thread.sleep(300);   // iperf3 has no ready signal; its client retries nothing
            return iperfMibPerSecond(host(List.of("iperf3", "-c", "127.0.0.1", "-p", String.valueOf(port), "-t", String.valueOf(seconds), "-J")));
        } finally {
            end(server);
        }
    }

    /** The guest's client sends to a host server through passt's gateway, which passt maps to the host's loopback. */
    private static double guestToHost(SystemVm svm, int seconds) throws Exception {
        int port = freePort();
        Process server = iperfServer(port);
        try {
            Thread.sleep(300);
            return iperfMibPerSecond(guest(svm, "iperf3", "-c", GATEWAY, "-p", String.valueOf(port), "-t", String.valueOf(seconds), "-J"));
        } finally {
            end(server);
        }
    }

    /** A host client sends to the guest's server through the forwarded port. */
    private static double hostToGuest(SystemVm svm, int forward, int seconds) throws Exception {
        guest(svm, "sh", "-c", "iperf3 -s -1 -D -p " + GUEST_IPERF_PORT + " && sleep 1");
        return iperfMibPerSecond(host(List.of("iperf3", "-c", "127.0.0.1", "-p", String.valueOf(forward), "-t", String.valueOf(seconds), "-J")));
    }

    private static void end(Process p) throws InterruptedException {
        if (!p.waitFor(5, TimeUnit.SECONDS))
            p.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
    }

    private static int freePort() throws IOException {
        try (var s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList())
                Files.deleteIfExists(p);
        }
    }

    private static String clip(String s) {
        String t = s.strip();
        return t.length() <= 400 ? t : t.substring(0, 400) + "...";
    }
}
