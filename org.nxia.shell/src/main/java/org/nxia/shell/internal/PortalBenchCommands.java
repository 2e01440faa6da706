package org.nxia.shell.internal;

import static org.nxia.shell.internal.BenchCommands.faster;
import static org.nxia.shell.internal.BenchCommands.fmt;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.apache.felix.service.command.CommandSession;
import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.portal.api.PortalMapping;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Rights;
import org.nxia.portal.api.Ring;
import org.nxia.shell.support.GuestKit;
import org.nxia.shell.support.BenchStats;
import org.nxia.shell.support.Text;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.bench.Percentiles;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code bench:portal}: Portal regions and rings between the host and micro-VMs,
 * next to their host-only peers measured in the same run (a host memcpy of the
 * same size, a Unix-socket round trip).
 */
@Component(service = PortalBenchCommands.class, property = {"osgi.command.scope=bench", "osgi.command.function=portal"})
public final class PortalBenchCommands {

    private static final int ECHO = 1;
    private static final int PING = 7;
    private static final int COPY_IN = 1;
    private static final int COPY_OUT = 2;
    private static final int MESSAGE = 64;
    /** Busy polls before a polling host thread starts yielding. */
    private static final int SPINS = 1000;

    private final VmManager vms;
    private final Portals portals;
    private final PortalStructures structures;

    @Activate
    public PortalBenchCommands(@Reference VmManager vms, @Reference Portals portals, @Reference PortalStructures structures) {
        this.structures = structures;
        this.vms = vms;
        this.portals = portals;
    }

    @Descriptor("Portal: bulk copies through a region vs a host memcpy, ring round trips host<->guest and guest<->guest vs a Unix socket, doorbell wake-up")
    public void portal(CommandSession session,
            @Descriptor("round trips per latency figure") @Parameter(names = {"-n", "--trips"}, absentValue = "2000") int trips,
            @Descriptor("region size for the bulk figures, MiB (1 to 64)") @Parameter(names = {"-m", "--mib"}, absentValue = "8") int mib)
            throws Exception {
        PrintStream out = System.out;
        if (!vms.hypervisor().available()) {
            session.put(Text.EXIT_CODE, 1);
            throw new IllegalStateException("not run: " + vms.hypervisor().detail());
        }
        if (trips < 100 || mib < 1 || mib > 64) {
            throw new IllegalArgumentException("give at least 100 trips and 1 to 64 MiB");
        }
        List<List<String>> rows = new ArrayList<>();
        bulk(mib, rows);
        latency(trips, rows);
        out.println("bench portal: " + vms.hypervisor().flavour() + ", " + Runtime.getRuntime().availableProcessors()
                + " CPU(s), 64-byte messages, " + trips + " round trips per latency figure. In the kvm-rig guests run nested"
                + " under QEMU TCG (emulated): guest figures are only meaningful as ratios there.");
        out.print(Text.table(List.of("figure", "Portal", "host peer", BenchStats.RATIO_HEADING, "peer"), rows));
    }

    // ---- bulk ----

    private void bulk(int mib, List<List<String>> rows) throws Exception {
        long size = (long) mib * VmProfile.MIB;
        String name = "bench-bulk";
        PortalRegion region = portals.create(name, size, "bench:portal", Rights.RW, null);
        try {
            int reps = 4;
            for (int mode : new int[] {COPY_IN, COPY_OUT}) {
                double hostSeconds = hostCopy(region.segment(), reps, mode);
                VmProfile profile = VmProfile.of(GuestKit.resolve("portal-bench")).withMemory(size + 16 * VmProfile.MIB)
                        .withTimeout(Duration.ofMinutes(10)).withDevices(List.of(DeviceConfig.parse("portal:name=" + name)));
                runSeconds(profile.withArg(mode)); // warm-up
                double base = runSeconds(profile.withArg(mode));
                double guest = Math.max(1e-9, runSeconds(profile.withArg(mode | ((long) reps << 8))) - base);
                double guestMibs = mib * reps / guest;
                double hostMibs = mib * reps / hostSeconds;
                rows.add(List.of((mode == COPY_IN ? "bulk host->guest: guest copies the region in" : "bulk guest->host: guest copies into the region")
                        + " (MiB/s, " + mib + " MiB)", fmt(guestMibs), fmt(hostMibs), faster(guestMibs, hostMibs, true),
                        "host MemorySegment.copy, same direction, same first touch"));
            }
        } finally {
            portals.delete(name);
        }
    }

    /**
     * The host peer of one direction: {@code reps} copies between the region and
     * fresh, untouched memory, the first touch inside the timed span as in the
     * guest, whose copies also meet its RAM for the first time (COPY_IN: region
     * to memory; COPY_OUT: memory to region).
     */
    private static double hostCopy(MemorySegment region, int reps, int mode) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment memory = arena.allocate(region.byteSize(), 4096);
            long t0 = System.nanoTime();
            for (int i = 0; i < reps; i++) {
                if (mode == COPY_IN) {
                    MemorySegment.copy(region, 0, memory, 0, region.byteSize());
                } else {
                    MemorySegment.copy(memory, 0, region, 0, region.byteSize());
                }
            }
            return (System.nanoTime() - t0) / 1e9;
        }
    }

    private double runSeconds(VmProfile profile) throws Exception {
        VirtualMachine vm = vms.create(profile);
        try {
            long t0 = System.nanoTime();
            vm.start();
            VmResult r = vm.await(profile.timeout());
            long t1 = System.nanoTime();
            if (!r.succeeded()) {
                throw new IllegalStateException(profile.name() + " failed: " + Text.outcome(r) + "\n" + vm.console());
            }
            return (t1 - t0) / 1e9;
        } finally {
            vms.destroy(vm.id());
        }
    }

    // ---- latency ----

    private void latency(int trips, List<List<String>> rows) throws Exception {
        double[] socket = unixSocket(trips);
        double[] polled = hostGuest(trips, false);
        double[] belled = hostGuest(trips, true);
        rows.add(List.of("ring round trip host<->guest, both poll (host yields after 1000 spins), p50 (µs)", fmt(polled[0]), fmt(socket[0]), faster(polled[0], socket[0], false), "Unix socket round trip"));
        rows.add(List.of("ring round trip host<->guest, both poll (host yields after 1000 spins), p99 (µs)", fmt(polled[1]), fmt(socket[1]), faster(polled[1], socket[1], false), ""));
        rows.add(List.of("doorbell wake-up: round trip, host parks on the doorbell, p50 (µs)", fmt(belled[0]), fmt(socket[0]), faster(belled[0], socket[0], false), "Unix socket round trip"));
        rows.add(List.of("doorbell wake-up: round trip, host parks on the doorbell, p99 (µs)", fmt(belled[1]), fmt(socket[1]), faster(belled[1], socket[1], false), ""));
        double[] g2g = guestGuest(trips);
        rows.add(List.of("ring round trip guest<->guest, both poll, p50 (µs; each trip's guest TSC ticks at the measured TSC rate)", fmt(g2g[0]), fmt(socket[0]), faster(g2g[0], socket[0], false), "Unix socket round trip"));
        rows.add(List.of("ring round trip guest<->guest, both poll, p99 (µs; each trip's guest TSC ticks at the measured TSC rate)", fmt(g2g[1]), fmt(socket[1]), faster(g2g[1], socket[1], false), ""));
        rows.add(List.of("ring round trip guest<->guest, mean (µs; runs of n and n/2 trips, differenced)", fmt(g2g[2]), fmt(socket[2]), faster(g2g[2], socket[2], false), "Unix socket mean"));
    }

    /** p50, p99 and mean in µs of a 64-byte ping-pong between two host threads over a Unix socket pair. */
    private static double[] unixSocket(int trips) throws Exception {
        Path dir = Files.createTempDirectory("nxia-bench");
        Path sock = dir.resolve("s");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(sock));
            Thread echo = Thread.ofPlatform().start(() -> {
                try (SocketChannel c = server.accept()) {
                    ByteBuffer b = ByteBuffer.allocateDirect(MESSAGE);
                    while (true) {
                        b.clear();
                        while (b.hasRemaining()) {
                            if (c.read(b) < 0) {
                                return;
                            }
                        }
                        b.flip();
                        while (b.hasRemaining()) {
                            c.write(b);
                        }
                    }
                } catch (IOException e) {
                    // the client closed: done
                }
            });
            long[] times = new long[trips];
            try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(sock))) {
                ByteBuffer b = ByteBuffer.allocateDirect(MESSAGE);
                for (int i = -trips / 10; i < trips; i++) {
                    long t0 = System.nanoTime();
                    b.clear();
                    while (b.hasRemaining()) {
                        c.write(b);
                    }
                    b.clear();
                    while (b.hasRemaining()) {
                        c.read(b);
                    }
                    if (i >= 0) {
                        times[i] = System.nanoTime() - t0;
                    }
                }
            }
            echo.join();
            return stats(times);
        } finally {
            Files.deleteIfExists(sock);
            Files.deleteIfExists(dir);
        }
    }

    /** p50, p99, mean in µs of host -> guest -> host ping-pongs through two SPSC rings. */
    private double[] hostGuest(int trips, boolean doorbell) throws Exception {
        String name = "bench-rtt";
        PortalRegion region = portals.create(name, 256 * 1024, "bench:portal", Rights.RW, null);
        try {
            Ring[] rings = formatRings(region);
            VirtualMachine vm = vms.create(VmProfile.of(GuestKit.resolve("portal-ring")).withMemory(4 * VmProfile.MIB)
                    .withArg(ECHO | ((doorbell ? 0L : 1L) << 8)).withTimeout(Duration.ofMinutes(10))
                    .withDevices(List.of(DeviceConfig.parse("portal:name=" + name))));
            try {
                PortalMapping m = portals.mappings().stream().filter(x -> x.vmId().equals(vm.id())).findFirst().orElseThrow();
                vm.start();
                MemorySegment msg = MemorySegment.ofArray(new byte[MESSAGE]);
                MemorySegment into = Arena.ofAuto().allocate(4096);
                long[] times = new long[trips];
                for (int i = -trips / 10; i < trips; i++) {
                    long seen = m.rings();
                    long t0 = System.nanoTime();
                    while (!rings[0].offer(msg)) {
                        Thread.onSpinWait();
                    }
                    for (int spins = 0; rings[1].poll(into) < 0; spins++) {
                        if (doorbell) {
                            seen = m.awaitRing(seen, Duration.ofSeconds(10));
                        } else if (spins < SPINS) {
                            Thread.onSpinWait();
                        } else {
                            Thread.yield(); // let the vCPU thread run where CPUs are scarce (the rig has one)
                        }
                    }
                    if (i >= 0) {
                        times[i] = System.nanoTime() - t0;
                    }
                }
                rings[0].offer(MemorySegment.ofArray(new byte[0]));
                VmResult r = vm.await(Duration.ofMinutes(1));
                if (!r.succeeded()) {
                    throw new IllegalStateException("portal-ring echo failed: " + Text.outcome(r) + "\n" + vm.console());
                }
                return stats(times);
            } finally {
                vms.destroy(vm.id());
            }
        } finally {
            portals.delete(name);
        }
    }

    /**
     * p50, p99 and mean µs per round trip of guest A pinging guest B one message
     * at a time. The ping guest times each trip with its TSC (micro-VMs have no
     * wall clock of their own); the percentiles are those ticks at the host's
     * measured TSC rate (KVM runs the guest's TSC at the host's). The mean comes
     * from runs of n and n/2 trips, differenced (VM start-up cancels out).
     */
    private double[] guestGuest(int trips) throws Exception {
        PairRun full = guestPair(trips);
        PairRun half = guestPair(trips / 2);
        double meanNanos = (full.seconds() - half.seconds()) / (trips - trips / 2) * 1e9;
        double hz = BenchCommands.tscHz();
        return new double[] {BenchStats.micros(Percentiles.nearestRankUnsorted(full.tripTicks(), 50), hz),
                BenchStats.micros(Percentiles.nearestRankUnsorted(full.tripTicks(), 99), hz), meanNanos / 1e3};
    }

    /** One ping-pong run: its wall time and each trip's TSC ticks. */
    private record PairRun(double seconds, long[] tripTicks) {
    }

    private PairRun guestPair(int trips) throws Exception {
        String name = "bench-g2g";
        PortalRegion region = portals.create(name, 256 * 1024, "bench:portal", Rights.RW, null);
        try {
            formatRings(region);
            VmProfile base = VmProfile.of(GuestKit.resolve("portal-ring")).withMemory(4 * VmProfile.MIB)
                    .withTimeout(Duration.ofMinutes(10)).withDevices(List.of(DeviceConfig.parse("portal:name=" + name)));
            VirtualMachine echo = vms.create(base.withArg(ECHO | (1L << 8)));
            VirtualMachine ping = vms.create(base.withArg(PING | ((long) trips << 8)));
            try {
                echo.start();
                ping.start();
                VmResult p = ping.await(Duration.ofMinutes(10));
                VmResult e = echo.await(Duration.ofMinutes(1));
                if (!p.succeeded() || !e.succeeded()) {
                    throw new IllegalStateException("guest ping-pong failed: " + Text.outcome(p) + " / " + Text.outcome(e)
                            + "\n" + ping.console() + echo.console());
                }
                ByteBuffer out = ByteBuffer.wrap(p.output()).order(ByteOrder.LITTLE_ENDIAN);
                int samples = out.remaining() >= 32 ? (int) Math.min(out.getLong(24), (out.remaining() - 32) / 4) : 0;
                long[] tripTicks = new long[samples];
                for (int i = 0; i < samples; i++) {
                    tripTicks[i] = Integer.toUnsignedLong(out.getInt(32 + 4 * i));
                }
                return new PairRun(p.runTime().toNanos() / 1e9, tripTicks);
            } finally {
                vms.destroy(ping.id());
                vms.destroy(echo.id());
            }
        } finally {
            portals.delete(name);
        }
    }

    private Ring[] formatRings(PortalRegion region) {
        long half = region.size() / 2;
        return new Ring[] {structures.formatSpsc(region.segment().asSlice(0, half), 64 * 1024),
                structures.formatSpsc(region.segment().asSlice(half, half), 64 * 1024)};
    }

    private static double[] stats(long[] times) {
        return new double[] {Percentiles.nearestRankUnsorted(times, 50) / 1e3, Percentiles.nearestRankUnsorted(times, 99) / 1e3, BenchStats.mean(times) / 1e3};
    }
}
