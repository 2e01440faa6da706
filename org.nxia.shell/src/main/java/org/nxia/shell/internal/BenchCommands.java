package org.nxia.shell.internal;

import java.io.IOException;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.felix.service.command.CommandSession;
import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.device.virtio.vsock.VsockUnixClient;
import org.nxia.shell.support.GuestKit;
import org.nxia.shell.support.BenchStats;
import org.nxia.shell.support.Text;
import org.nxia.vmm.api.Sandbox;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.bench.ExitTimeRecorder;
import org.nxia.vmm.bench.Percentiles;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code bench:*}: the platform's figures next to the C floor (the project's
 * minimal C KVM loop, {@code guest/floor/kvm-floor.c}) running the same guest
 * image in the same run.
 */
@Component(service = BenchCommands.class, property = {
        "osgi.command.scope=bench", "osgi.command.function=exits", "osgi.command.function=sandbox", "osgi.command.function=snapshot",
        "osgi.command.function=devices", "osgi.command.function=all"})
public final class BenchCommands {

    private static final long RAM = 4 * VmProfile.MIB;
    /** Runs of the boot-only blk-bench whose median is subtracted from each transfer run. */
    private static final int BASELINE_RUNS = 5;

    private final VmManager vms;
    private final PortalBenchCommands portal;

    @Activate
    public BenchCommands(@Reference VmManager vms, @Reference PortalBenchCommands portal) {
        this.vms = vms;
        this.portal = portal;
    }

    @Descriptor("run every micro-VM benchmark (exits, sandbox, devices, portal)")
    public void all(CommandSession session) throws Exception {
        exits(session, 200_000);
        System.out.println();
        sandbox(session, 200);
        System.out.println();
        devices(session, 64);
        System.out.println();
        portal.portal(session, 2000, 8);
    }

    @Descriptor("virtio-blk MiB/s seen from the guest (1 MiB sequential write and read, 4 KiB random read) against the same file used directly on the host; virtio-vsock echo latency and throughput against a host Unix-socket pair")
    public void devices(CommandSession session,
            @Descriptor("MiB moved per figure") @Parameter(names = {"-n", "--mib"}, absentValue = "64") int mib) throws Exception {
        PrintStream out = System.out;
        requireBackend(session);
        if (mib < 4 || mib > 4096) {
            throw new IllegalArgumentException("give 4 to 4096 MiB");
        }
        Path image = GuestKit.resolve("blk-bench");
        Path disk = Files.createTempFile("nxia-bench", ".img");
        try {
            try (var ch = java.nio.channels.FileChannel.open(disk, java.nio.file.StandardOpenOption.WRITE)) {
                ch.truncate(0);
                ch.write(java.nio.ByteBuffer.allocate(1), (long) mib * VmProfile.MIB - 1);
            }
            VmProfile profile = VmProfile.of(image).withMemory(16 * VmProfile.MIB).withTimeout(Duration.ofMinutes(10))
                    .withDevices(List.of(org.nxia.vmm.api.device.DeviceConfig.parse("virtio-blk:path=" + disk)));
            blkRun(profile, 0, mib);                          // warm-up
            // boot, find and set up the device: subtracted; the median of repeated runs, as one run is noisy
            double[] baselines = new double[BASELINE_RUNS];
            for (int i = 0; i < BASELINE_RUNS; i++) {
                baselines[i] = blkRun(profile, 0, mib).seconds();
            }
            double baseline = BenchStats.median(baselines);
            String[] names = {"sequential write, 1 MiB requests", "sequential read, 1 MiB requests", "random read, 4 KiB requests"};
            List<List<String>> rows = new ArrayList<>();
            List<String> notes = new ArrayList<>();
            for (int m = 1; m <= 3; m++) {
                BlkRun run = blkRun(profile, m, mib);
                if (m == 1) {
                    notes.add("virtio-blk: " + run.notifyPath());
                }
                double guestSeconds = run.seconds() - baseline;
                double hostSeconds = hostIo(disk, m, mib);
                double host = mib / hostSeconds;
                if (guestSeconds < baseline / 20) {
                    // the transfer hid in the noise of booting the guest: no figure rather than an absurd one
                    rows.add(List.of(names[m - 1] + " (MiB/s)", "below noise, raise -n", fmt(host), "-", ">= 0.70"));
                    continue;
                }
                double guest = mib / guestSeconds;
                rows.add(List.of(names[m - 1] + " (MiB/s)", fmt(guest), fmt(host), faster(guest, host, true), ">= 0.70"));
            }
            int transfers = Math.min(mib, 16);
            rows.addAll(vsockRows(transfers, notes));
            out.println("bench devices: virtio-blk over a " + mib + " MiB raw image, guest 'blk-bench', one request in flight;");
            out.println("  guest MiB/s = MiB / (the run's time - the median of " + BASELINE_RUNS + " boot-only runs);");
            out.println("  virtio-vsock: guest 'virtio-vsock' echoes a host Unix-socket client (CONNECT over uds), peer: a host Unix-socket echo thread;");
            out.println("  1000 round trips of 64 B, then " + transfers + " x 1 MiB echoed (MiB/s counted one way); the round trips again with notify=mmio-exit");
            for (String note : notes) {
                out.println("  kicks, " + note);
            }
            out.print(Text.table(List.of("figure", "guest", "host direct", BenchStats.RATIO_HEADING, "goal"), rows));
        } finally {
            Files.deleteIfExists(disk);
        }
    }

    private static final int VSOCK_PORT = 6000;

    /**
     * virtio-vsock against a plain Unix-socket pair on the host: latency p50/p99 of 64-byte echoes, then 1 MiB transfers;
     * the round trips again with kicks as MMIO exits ({@code notify=mmio-exit}), the peer of the doorbell path.
     */
    private List<List<String>> vsockRows(int transfers, List<String> notes) throws Exception {
        Path dir = Files.createTempDirectory("nxv");
        Path uds = dir.resolve("v.sock");
        Path byExitUds = dir.resolve("x.sock");
        Path peer = dir.resolve("peer.sock");
        try {
            GuestEcho guest = guestEcho(uds, "", transfers);
            GuestEcho byExit = guestEcho(byExitUds, ",notify=mmio-exit", 0);
            notes.add("virtio-vsock: " + guest.notifyPath() + "; second run: " + byExit.notifyPath());
            EchoFigures host;
            try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
                server.bind(UnixDomainSocketAddress.of(peer));
                Thread echo = Thread.ofPlatform().daemon().name("bench-uds-echo").start(() -> {
                    try (SocketChannel s = server.accept()) {
                        ByteBuffer b = ByteBuffer.allocateDirect(4096);
                        while (s.read(b) >= 0) {
                            b.flip();
                            while (b.hasRemaining()) {
                                s.write(b);
                            }
                            b.clear();
                        }
                    } catch (IOException ignored) {
                        // the client went away: the figures are taken
                    }
                });
                try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(peer))) {
                    host = echoFigures(ch, transfers);
                }
                echo.join(10_000);
            }
            List<List<String>> rows = new ArrayList<>();
            EchoFigures g = guest.figures();
            EchoFigures x = byExit.figures();
            rows.add(List.of("vsock round trip 64 B p50 (us)", fmt(g.p50 / 1e3), fmt(host.p50 / 1e3), faster(g.p50, host.p50, false), ""));
            rows.add(List.of("vsock round trip 64 B p99 (us)", fmt(g.p99 / 1e3), fmt(host.p99 / 1e3), faster(g.p99, host.p99, false), ""));
            rows.add(List.of("vsock round trip 64 B p50 (us), kicks by MMIO exit", fmt(x.p50 / 1e3), fmt(host.p50 / 1e3), faster(x.p50, host.p50, false),
                    "ioeventfd vs exit " + faster(g.p50, x.p50, false)));
            rows.add(List.of("vsock round trip 64 B p99 (us), kicks by MMIO exit", fmt(x.p99 / 1e3), fmt(host.p99 / 1e3), faster(x.p99, host.p99, false),
                    "ioeventfd vs exit " + faster(g.p99, x.p99, false)));
            rows.add(List.of("vsock 1 MiB transfers, echoed (MiB/s)", fmt(g.mibPerSecond), fmt(host.mibPerSecond),
                    faster(g.mibPerSecond, host.mibPerSecond, true), ""));
            return rows;
        } finally {
            Files.deleteIfExists(uds);
            Files.deleteIfExists(byExitUds);
            Files.deleteIfExists(peer);
            Files.deleteIfExists(dir);
        }
    }

    private record EchoFigures(double p50, double p99, double mibPerSecond) {
    }

    /** The guest's echo figures and how its kicks arrived ({@link Text#notifyPath}). */
    private record GuestEcho(EchoFigures figures, String notifyPath) {
    }

    /** Echoes through the 'virtio-vsock' guest; {@code extra} is appended to the device's parameters. */
    private GuestEcho guestEcho(Path uds, String extra, int transfers) throws Exception {
        VmProfile profile = VmProfile.of(GuestKit.resolve("virtio-vsock")).withMemory(RAM).withTimeout(Duration.ofMinutes(10))
                .withArg((long) VSOCK_PORT << 32)
                .withDevices(List.of(org.nxia.vmm.api.device.DeviceConfig.parse("virtio-vsock:uds=" + uds + extra)));
        VirtualMachine vm = vms.create(profile);
        try {
            vm.start();
            long end = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
            while (!vm.console().contains("listening on port " + VSOCK_PORT)) {
                if (System.nanoTime() > end || vm.state() == org.nxia.vmm.api.VmState.STOPPED) {
                    throw new IllegalStateException("the virtio-vsock guest did not listen:\n" + vm.console());
                }
                Thread.sleep(5);
            }
            EchoFigures figures;
            try (SocketChannel ch = VsockUnixClient.connect(uds, VSOCK_PORT, Duration.ofMinutes(1))) {
                figures = echoFigures(ch, transfers);
            }
            VmResult r = vm.await(Duration.ofMinutes(2));
            if (!r.succeeded()) {
                throw new IllegalStateException("virtio-vsock guest failed: " + Text.outcome(r) + "\n" + vm.console());
            }
            return new GuestEcho(figures, Text.notifyPath(vm.info().counters()));
        } finally {
            vms.destroy(vm.id());
        }
    }

    /** Round trips of 64 bytes, then {@code transfers} MiB written by one thread while this one reads the echo; ends the stream. */
    private static EchoFigures echoFigures(SocketChannel ch, int transfers) throws Exception {
        int rounds = 1000;
        long[] nanos = new long[rounds];
        ByteBuffer small = ByteBuffer.allocateDirect(64);
        ByteBuffer back = ByteBuffer.allocateDirect(64);
        for (int i = -100; i < rounds; i++) {
            small.clear();
            back.clear();
            long t0 = System.nanoTime();
            while (small.hasRemaining()) {
                ch.write(small);
            }
            while (back.hasRemaining()) {
                if (ch.read(back) < 0) {
                    throw new IOException("the echo ended early");
                }
            }
            if (i >= 0) {
                nanos[i] = System.nanoTime() - t0;
            }
        }
        Arrays.sort(nanos);
        long total = (long) transfers << 20;
        long t0 = System.nanoTime();
        java.util.concurrent.CompletableFuture<Void> writer = java.util.concurrent.CompletableFuture.runAsync(() -> {
            ByteBuffer mib = ByteBuffer.allocateDirect(1 << 20);
            try {
                for (int i = 0; i < transfers; i++) {
                    mib.clear();
                    while (mib.hasRemaining()) {
                        ch.write(mib);
                    }
                }
                ch.shutdownOutput();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        });
        ByteBuffer in = ByteBuffer.allocateDirect(1 << 20);
        long read = 0;
        while (read < total) {
            in.clear();
            int n = ch.read(in);
            if (n < 0) {
                throw new IOException("the echo ended after " + read + " of " + total + " bytes");
            }
            read += n;
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        writer.get(1, TimeUnit.MINUTES);
        return new EchoFigures(Percentiles.nearestRank(nanos, rounds, 50), Percentiles.nearestRank(nanos, rounds, 99), transfers / seconds);
    }

    /** Seconds for one blk-bench VM run (create to stop), and how its kicks arrived. */
    private record BlkRun(double seconds, String notifyPath) {
    }

    private BlkRun blkRun(VmProfile profile, int mode, int mib) throws Exception {
        VirtualMachine vm = vms.create(profile.withArg(((long) mib << 8) | mode));
        try {
            long t0 = System.nanoTime();
            vm.start();
            VmResult r = vm.await(Duration.ofMinutes(10));
            long t1 = System.nanoTime();
            if (!r.succeeded()) {
                throw new IllegalStateException("blk-bench mode " + mode + " failed: " + Text.outcome(r) + "\n" + vm.console());
            }
            return new BlkRun((t1 - t0) / 1e9, Text.notifyPath(vm.info().counters()));
        } finally {
            vms.destroy(vm.id());
        }
    }

    /** The same I/O done by the host on the same file: the peer figure. */
    private static double hostIo(Path disk, int mode, int mib) throws IOException {
        java.nio.ByteBuffer buffer = java.nio.ByteBuffer.allocateDirect(mode == 3 ? 4096 : 1 << 20);
        long size = (long) mib << 20;
        long t0 = System.nanoTime();
        try (var ch = java.nio.channels.FileChannel.open(disk, java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
            if (mode == 3) {
                long x = 0x9e3779b97f4a7c15L;
                for (long i = 0; i < (long) mib * 256; i++) {
                    x ^= x << 13;
                    x ^= x >>> 7;
                    x ^= x << 17;
                    buffer.clear();
                    ch.read(buffer, Math.floorMod(x, size / 4096) * 4096);
                }
            } else {
                for (long at = 0; at < size; at += 1 << 20) {
                    buffer.clear();
                    if (mode == 1) {
                        ch.write(buffer, at);
                    } else {
                        ch.read(buffer, at);
                    }
                }
            }
        }
        return (System.nanoTime() - t0) / 1e9;
    }

    @Descriptor("port-I/O exits per second and user-space time per exit: Java VMM vs the C floor, same guest image, same span")
    public void exits(CommandSession session,
            @Descriptor("number of exits") @Parameter(names = {"-n", "--exits"}, absentValue = "200000") int n) throws Exception {
        PrintStream out = System.out;
        requireBackend(session);
        if (n < 100) {
            throw new IllegalArgumentException("give at least 100 exits for a p99");
        }
        Path image = GuestKit.resolve("exits");
        // Warm the JIT on the exit path before measuring.
        runExits(image, Math.min(n, 50_000), null);
        // Allocation per exit is taken at the margin, (A(n) - A(n/2)) / (n/2), so the
        // fixed cost of starting and stopping a vCPU cancels out.
        ExitRun half = runExits(image, n / 2, null);
        long[] sink = new long[Math.min(n, 2_000_000)];
        ExitRun java = runExits(image, n, sink);
        double marginalBytes = half.allocated < 0 || java.allocated < 0 ? Double.NaN
                : Math.max(0, java.allocated - half.allocated) / (double) (n - n / 2);
        Arrays.sort(sink, 0, java.recorded);
        FloorRun c = floorWithSamples("exits", image.toString(), Integer.toString(n));
        double hz = tscHz();

        // One definition on both sides: the counted exits over the guest's own TSC span (the same
        // instructions, from before its first exit to after its last), percentiles of raw samples here.
        double javaRate = BenchStats.perSecond(n, java.guestTicks, hz);
        double cRate = BenchStats.perSecond((long) number(c.values(), "n"), (long) number(c.values(), "guest_ticks"), hz);
        double javaP50 = Percentiles.nearestRank(sink, java.recorded, 50);
        double javaP99 = Percentiles.nearestRank(sink, java.recorded, 99);
        double cP50 = Percentiles.nearestRankUnsorted(c.samples(), 50);
        double cP99 = Percentiles.nearestRankUnsorted(c.samples(), 99);
        out.println("bench exits: " + n + " port-I/O exits by guest 'exits' (" + java.mode + "), the same span on both sides:");
        out.println("  exits/s: counted exits / the guest's TSC ticks from before its first exit to after its last"
                + " (TSC " + fmt(hz / 1e6) + " MHz, measured);");
        out.println("  ns/exit: user space from KVM_RUN's return to the next KVM_RUN, raw samples of both"
                + " (" + java.recorded + " Java, " + c.samples().length + " C), nearest-rank percentiles");
        List<List<String>> rows = new ArrayList<>();
        rows.add(List.of("exits/s", fmt(javaRate), fmt(cRate), faster(javaRate, cRate, true), ">= 0.90"));
        rows.add(List.of("user-space ns/exit p50", fmt(javaP50), fmt(cP50), faster(javaP50, cP50, false), "Java <= 1000 ns"));
        rows.add(List.of("user-space ns/exit p99", fmt(javaP99), fmt(cP99), faster(javaP99, cP99, false), ""));
        rows.add(List.of("bytes allocated per exit on the vCPU thread (marginal)", String.format(Locale.ROOT, "%.4f", marginalBytes),
                "n/a", "", "0"));
        rows.add(List.of("bytes allocated by the vCPU thread, whole run", Long.toString(java.allocated),
                "n/a", "", "(start and stop included)"));
        out.print(Text.table(List.of("figure", "Java VMM", "C floor", BenchStats.RATIO_HEADING, "goal"), rows));
    }

    /** One run of 'exits': the guest's TSC span of its exits, the exit times recorded, the vCPU thread's allocation. */
    private record ExitRun(long guestTicks, int recorded, long allocated, String mode) {
    }

    private ExitRun runExits(Path image, int n, long[] sink) throws Exception {
        VirtualMachine vm = vms.create(VmProfile.of(image).withMemory(RAM).withArg(n).withTimeout(Duration.ofMinutes(10)));
        try {
            ExitTimeRecorder recorder = vm instanceof ExitTimeRecorder r ? r : none -> 0;   // a VMM that cannot records nothing
            if (sink != null) {
                recorder.recordExitTimes(sink);
            }
            vm.start();
            VmResult r = vm.await(Duration.ofMinutes(10));
            if (!r.succeeded()) {
                throw new IllegalStateException("the exits guest did not finish: " + Text.outcome(r));
            }
            int recorded = sink != null ? recorder.recordExitTimes(null) : 0;
            var info = vm.info();
            long counted = info.counters().getOrDefault("bench_exits", -1L);
            long ticks = exitsSpan(r.output(), n);
            if (counted != n || ticks <= 0) {
                throw new IllegalStateException("the exits guest made " + counted + " of " + n + " exits or reported no TSC span"
                        + " (an image from before the span was added? run ./nxia build)");
            }
            long allocated = info.counters().getOrDefault("vcpu_thread_allocated_bytes", -1L);
            return new ExitRun(ticks, recorded, allocated, info.executionMode());
        } finally {
            vms.destroy(vm.id());
        }
    }

    /** The 'exits' guest's output, {u64 exits, u64 TSC ticks}: the ticks if it made {@code n} exits, else -1. */
    static long exitsSpan(byte[] output, long n) {
        if (output.length != 16) {
            return -1;
        }
        ByteBuffer b = ByteBuffer.wrap(output).order(ByteOrder.LITTLE_ENDIAN);
        return b.getLong(0) == n ? b.getLong(8) : -1;
    }

    @Descriptor("create -> run -> destroy of 'hello': p50/p99, VMs per second, RSS per extra idle VM, vs the C floor")
    public void sandbox(CommandSession session,
            @Descriptor("number of cycles (at least 100)") @Parameter(names = {"-n", "--runs"}, absentValue = "200") int runs) throws Exception {
        PrintStream out = System.out;
        requireBackend(session);
        if (runs < 100) {
            throw new IllegalArgumentException("give at least 100 runs for a p99");
        }
        VmProfile profile = helloProfile();
        ColdCycles cold = coldCycles(profile, runs);
        long[] times = cold.vmm();
        double seconds = cold.seconds();
        Rss before = Rss.read();
        List<VirtualMachine> idle = new ArrayList<>();
        int extra = 32;
        for (int i = 0; i < extra; i++) {
            idle.add(vms.create(profile));
        }
        Rss after = Rss.read();
        for (VirtualMachine vm : idle) {
            vms.destroy(vm.id());
        }
        FloorRun c = cold.floor();

        double p50 = Percentiles.nearestRank(times, runs, 50) / 1e3;
        double p99 = Percentiles.nearestRank(times, runs, 99) / 1e3;
        double cP50 = Percentiles.nearestRankUnsorted(c.samples(), 50) / 1e3;
        double cP99 = Percentiles.nearestRankUnsorted(c.samples(), 99) / 1e3;
        double rate = runs / seconds;
        double cRate = number(c.values(), "runs") / number(c.values(), "seconds");
        double vmm = (after.anonAndFile() - before.anonAndFile()) / (double) extra / 1024;
        double guest = (after.shmem() - before.shmem()) / (double) extra / 1024;
        out.println("bench sandbox: create -> run -> destroy of 'hello' (" + Text.size(RAM) + " RAM), " + runs + " runs");
        List<List<String>> rows = new ArrayList<>();
        rows.add(List.of("cycle p50 (µs)", fmt(p50), fmt(cP50), faster(p50, cP50, false), "<= 1000 µs and >= 0.83"));
        rows.add(List.of("cycle p99 (µs)", fmt(p99), fmt(cP99), faster(p99, cP99, false), ""));
        rows.add(List.of("VMs per second", fmt(rate), fmt(cRate), faster(rate, cRate, true), ""));
        rows.add(List.of("RSS per extra idle VM, VMM (KiB)", fmt(vmm), "", "", "<= 5120 KiB"));
        rows.add(List.of("RSS per extra idle VM, guest RAM touched (KiB)", fmt(guest), "", "", "(not counted)"));
        out.print(Text.table(List.of("figure", "Java VMM", "C floor", BenchStats.RATIO_HEADING, "goal"), rows));
    }

    private static VmProfile helloProfile() {
        return VmProfile.of(GuestKit.resolve("hello")).withMemory(RAM);
    }

    /**
     * Cold cycles of {@code profile}: the Java VMM's create -> run -> destroy (sorted nanoseconds, after 50 to warm up, and
     * the seconds they took together), then the C floor's {@code sandbox} mode on the same image and RAM.
     */
    record ColdCycles(long[] vmm, double seconds, FloorRun floor) {
    }

    private ColdCycles coldCycles(VmProfile profile, int runs) throws Exception {
        for (int i = 0; i < 50; i++) {
            cycle(profile);
        }
        long[] times = new long[runs];
        long start = System.nanoTime();
        for (int i = 0; i < runs; i++) {
            times[i] = cycle(profile);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        Arrays.sort(times);
        FloorRun c = floorWithSamples("sandbox", profile.image().toString(), Integer.toString(runs), "--ram",
                Long.toString(profile.memoryBytes() >> 20));
        return new ColdCycles(times, seconds, c);
    }

    @Descriptor("sandbox cycle of 'hello' by in-place restore (a template saved at its entry point, reset to it for each run)"
            + " vs the Java VMM's and the C floor's cold create -> run -> destroy, all in this run: p50/p99 and their ratios")
    public void snapshot(CommandSession session,
            @Descriptor("number of cycles of each kind (at least 100)") @Parameter(names = {"-n", "--runs"}, absentValue = "200") int runs)
            throws Exception {
        PrintStream out = System.out;
        requireBackend(session);
        if (runs < 100) {
            throw new IllegalArgumentException("give at least 100 runs for a p99");
        }
        VmProfile profile = helloProfile();
        VmSnapshot template;
        VirtualMachine created = vms.create(profile);
        try {
            template = created.snapshot();
        } finally {
            vms.destroy(created.id());
        }
        long[] restore = new long[runs];
        long pages;
        try (Sandbox sandbox = vms.sandbox(template)) {
            for (int i = 0; i < 50; i++) {
                restoreCycle(sandbox);
            }
            for (int i = 0; i < runs; i++) {
                restore[i] = restoreCycle(sandbox);
            }
            pages = sandbox.pagesRewritten();
        }
        Arrays.sort(restore);
        ColdCycles cold = coldCycles(profile, runs);

        out.println("bench snapshot: sandbox cycle of 'hello' (" + Text.size(RAM) + " RAM), " + runs + " runs each; restore in place ="
                + " reset to the template + run to exit (" + pages + " pages rewritten per reset), cold = create -> run -> destroy");
        List<List<String>> rows = new ArrayList<>();
        for (int p : new int[] {50, 99}) {
            double r = Percentiles.nearestRank(restore, runs, p) / 1e3;
            double java = Percentiles.nearestRank(cold.vmm(), runs, p) / 1e3;
            double c = Percentiles.nearestRankUnsorted(cold.floor().samples(), p) / 1e3;
            rows.add(List.of("cycle p" + p + " (µs)", fmt(r), fmt(java), fmt(c), BenchStats.fmtRatio(r / c), BenchStats.fmtRatio(r / java),
                    p == 50 ? "<= 0.5 of the C floor's cold cycle" : ""));
        }
        out.print(Text.table(List.of("figure", "restore in place", "Java cold", "C floor cold",
                "restore ÷ C floor cold (<= 1 is better)", "restore ÷ Java cold (<= 1 is better)", "goal"), rows));
    }

    /** One sandbox run of 'hello' from its template, reset first: nanoseconds. */
    private static long restoreCycle(Sandbox sandbox) throws InterruptedException {
        long t0 = System.nanoTime();
        VmResult r = sandbox.run(null);
        long t = System.nanoTime() - t0;
        if (!r.succeeded()) {
            throw new IllegalStateException("hello did not exit 0 from its template: " + Text.outcome(r));
        }
        return t;
    }

    private long cycle(VmProfile profile) throws Exception {
        long t0 = System.nanoTime();
        VirtualMachine vm = vms.create(profile);
        try {
            vm.start();
            VmResult r = vm.await(Duration.ofSeconds(30));
            if (!r.succeeded()) {
                throw new IllegalStateException("hello did not exit 0: " + Text.outcome(r));
            }
        } finally {
            vms.destroy(vm.id());
        }
        return System.nanoTime() - t0;
    }

    private void requireBackend(CommandSession session) {
        if (!vms.hypervisor().available()) {
            session.put(Text.EXIT_CODE, 1);
            throw new IllegalStateException("not run: " + vms.hypervisor().detail());
        }
    }

    /** Runs the C floor and returns the key=value pairs of its result line. */
    static Map<String, String> floor(String... args) throws IOException, InterruptedException {
        Path floor = GuestKit.floor();
        if (!Files.isExecutable(floor)) {
            throw new IllegalStateException("the C floor " + floor + " is missing: run ./nxia build");
        }
        List<String> command = new ArrayList<>();
        command.add(floor.toString());
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        byte[] stdout = p.getInputStream().readAllBytes();
        if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
            throw new IllegalStateException("the C floor failed (" + String.join(" ", command) + "), exit " + p.exitValue());
        }
        String prefix = "floor " + args[0] + " ";
        for (String line : new String(stdout, StandardCharsets.UTF_8).split("\n")) {
            if (line.startsWith(prefix)) {
                Map<String, String> values = new HashMap<>();
                for (String kv : line.substring(prefix.length()).trim().split("\\s+")) {
                    int eq = kv.indexOf('=');
                    if (eq > 0) {
                        values.put(kv.substring(0, eq), kv.substring(eq + 1));
                    }
                }
                return values;
            }
        }
        throw new IllegalStateException("the C floor printed no '" + prefix.trim() + "' line");
    }

    static double number(Map<String, String> values, String key) {
        String v = values.get(key);
        if (v == null) {
            throw new IllegalStateException("the C floor's result has no " + key);
        }
        return Double.parseDouble(v);
    }

    /** The C floor's result line and the raw samples it wrote (--samples). */
    record FloorRun(Map<String, String> values, long[] samples) {
    }

    /** Runs the C floor with {@code --samples} and reads them back. */
    static FloorRun floorWithSamples(String... args) throws IOException, InterruptedException {
        Path file = Files.createTempFile("nxia-floor", ".samples");
        try {
            String[] all = Arrays.copyOf(args, args.length + 2);
            all[args.length] = "--samples";
            all[args.length + 1] = file.toString();
            Map<String, String> values = floor(all);
            return new FloorRun(values, samples(Files.readAllBytes(file)));
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /** The C floor's samples: little-endian u32 nanoseconds. */
    static long[] samples(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long[] samples = new long[bytes.length / 4];
        for (int i = 0; i < samples.length; i++) {
            samples[i] = Integer.toUnsignedLong(b.getInt(4 * i));
        }
        return samples;
    }

    /** The host TSC's rate as the C floor measures it: what turns a guest's TSC ticks into time. */
    static double tscHz() throws IOException, InterruptedException {
        return number(floor("tsc"), "hz");
    }

    static String fmt(double v) {
        return BenchStats.fmt(v);
    }

    /** A ratio cell: {@link BenchStats#speedRatio}, the same way round in every row of every bench. */
    static String faster(double ours, double peer, boolean higherIsBetter) {
        return BenchStats.fmtRatio(BenchStats.speedRatio(ours, peer, higherIsBetter));
    }

    /** This process's resident memory by kind, from /proc/self/status. */
    record Rss(long anon, long file, long shmem) {
        long anonAndFile() {
            return anon + file;
        }

        static Rss read() throws IOException {
            long anon = 0;
            long file = 0;
            long shmem = 0;
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                String[] f = line.split("\\s+");
                if (f.length < 2 || !f[0].startsWith("Rss")) {
                    continue;
                }
                long bytes = Long.parseLong(f[1]) * 1024;
                switch (f[0]) {
                    case "RssAnon:" -> anon = bytes;
                    case "RssFile:" -> file = bytes;
                    case "RssShmem:" -> shmem = bytes;
                    default -> {
                    }
                }
            }
            return new Rss(anon, file, shmem);
        }
    }
}
