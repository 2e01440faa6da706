package org.nxia.gemini.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Hashtable;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.Marshalling;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Rights;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.bench.Percentiles;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

/**
 * {@code bench:gemini}: null-call round trips both ways, in-process loopback
 * (the floor: codec, session and dispatch without a VM) and a real guest
 * (guests/gemini-echo.c) over rings in its RAM, measured in the same run; then
 * argument throughput host to guest, copied versus by Portal reference, from
 * 4 KiB to 64 MiB in the same guest, and the crossover size.
 */
@Component(service = GeminiBench.class, property = {"osgi.command.scope=bench", "osgi.command.function=gemini"})
public final class GeminiBench {
    static final String PROFILE = "gemini-bench";
    static final String MANIFEST = "profile " + PROFILE + "\nallow out bench.*\nallow in calc.*\n";
    static final Duration T = Duration.ofSeconds(30);

    private final BundleContext context;
    private final GeminiImpl gemini;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    volatile VmManager vms;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    volatile ConfigurationAdmin config;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    volatile Portals portals;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    volatile PortalStructures structures;

    /** Argument sizes of the throughput sweep; the three (4 KiB, 1 MiB, 64 MiB) among them. */
    static final int[] SIZES = {4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20};
    /** log2 of the throughput guest's ring capacity: 256 MiB, so a 64 MiB argument can be copied (a frame is half a ring). */
    static final int BIG_RING_LOG = 28;
    /** The throughput guest's RAM: both rings and both frame buffers (3 x 256 MiB, touched as used) plus the image. */
    static final long BIG_GUEST_MEMORY = 832 * VmProfile.MIB;
    /** Keep measuring one figure for at least this long (and at least 3 calls). */
    static final long FIGURE_NANOS = 400_000_000L;

    @Activate
    public GeminiBench(BundleContext context, @Reference GeminiImpl gemini) {
        this.context = context;
        this.gemini = gemini;
    }

    /** The host service the bench guest calls: records when each call arrives. */
    public static final class BenchService {
        final long[] arrivals;
        final AtomicInteger count = new AtomicInteger();

        BenchService(int n) {
            arrivals = new long[n];
        }

        public void nop() {
            int i = count.getAndIncrement();
            if (i < arrivals.length) {
                arrivals[i] = System.nanoTime();
            }
        }
    }

    @Descriptor("Gemini: null-call round trip p50/p99 both ways (in-process loopback vs a guest on rings), then host->guest "
            + "argument throughput 4 KiB..64 MiB, copied vs by Portal reference, and the crossover size")
    public void gemini(@Descriptor("calls per null-call figure") @Parameter(names = {"-n", "--calls"}, absentValue = "20000") int n,
                       @Descriptor("only the argument throughput (skip the null calls)")
                       @Parameter(names = {"-t", "--throughput"}, absentValue = "false", presentValue = "true") boolean throughputOnly)
            throws Exception {
        if (n < 100 || n > 10_000_000) {
            throw new IllegalArgumentException("give 100 to 10000000 calls");
        }
        ConfigurationAdmin cm = config;
        if (cm == null) {
            throw new IllegalStateException("bench:gemini needs ConfigurationAdmin to install its policy manifest");
        }
        Configuration manifest = cm.createFactoryConfiguration("org.nxia.lsm.policy.manifest", "?");
        Hashtable<String, Object> props = new Hashtable<>();
        props.put("manifest", MANIFEST);
        manifest.update(props);
        BenchService bench = new BenchService(n);
        Hashtable<String, Object> sp = new Hashtable<>();
        sp.put(Gemini.SERVICE_PROPERTY, "bench");
        ServiceRegistration<?> reg = context.registerService(Object.class.getName(), bench, sp);
        try {
            Thread.sleep(200); // ConfigAdmin delivers the manifest asynchronously
            if (!throughputOnly) {
                nullCalls(n);
            }
            throughput();
        } finally {
            reg.unregister();
            manifest.delete();
        }
    }

    private void nullCalls(int n) throws Exception {
        double[] loop = loopback(n);
        double[] vm = guest(n);
        System.out.println("bench gemini: " + n + " null calls per figure (microseconds; 4 KiB echo in MiB/s)");
        String[] names = {"H->L round trip p50", "H->L round trip p99", "L->H round trip p50", "L->H round trip p99",
                "H->L 4 KiB echo MiB/s"};
        System.out.printf(Locale.ROOT, "%-26s %14s %16s%n", "figure", "loopback", "guest on rings");
        for (int i = 0; i < names.length; i++) {
            System.out.printf(Locale.ROOT, "%-26s %14s %16s%n", names[i], fmt(loop[i]), vm == null ? "n/a" : fmt(vm[i]));
        }
        System.out.println("L->H on the guest is the gap between consecutive calls as the host sees them (one full round trip).");
        if (vm == null) {
            System.out.println("guest: " + skipped);
        }
    }

    /** gemini-echo's calc.sum: the length plus every little-endian u64 word plus each tail byte. */
    static long checksum(byte[] data) {
        MemorySegment s = MemorySegment.ofArray(data);
        long h = data.length;
        int i = 0;
        for (; i + 8 <= data.length; i += 8) {
            h += s.get(ValueLayout.JAVA_LONG_UNALIGNED, i);
        }
        for (; i < data.length; i++) {
            h += data[i] & 0xff;
        }
        return h;
    }

    /**
     * Host to guest calls of calc.sum (the guest reads every byte where it lies) with each size
     * copied and by reference, in one guest: 256 MiB rings so a 64 MiB copy fits a frame, and the
     * Portal region "gemini" (one 64 MiB block) for references.
     */
    private void throughput() throws Exception {
        VmManager m = vms;
        Portals p = portals;
        PortalStructures ps = structures;
        Path image = Path.of(System.getProperty("nxia.guest.images", "guest/target/images"), "gemini-echo.elf");
        if (m == null || p == null || ps == null || !Files.exists(image)) {
            System.out.println("argument throughput: skipped (" + (m == null ? "no VM manager" : p == null || ps == null ? "no Portal service"
                    : "no guest image " + image) + ")");
            return;
        }
        int largest = SIZES[SIZES.length - 1];
        PortalRegion region = p.create("gemini", largest + 2 * VmProfile.MIB, "bench:gemini", Rights.RW, null);
        VirtualMachine vm = null;
        try {
            ps.formatArena(region.segment(), largest);
            try {
                vm = m.create(VmProfile.of(image).withName(PROFILE).withMemory(BIG_GUEST_MEMORY)
                        .withArg(((long) BIG_RING_LOG << 32) | 1).withTimeout(Duration.ofMinutes(30))
                        .withDevices(List.of(DeviceConfig.parse("portal:name=gemini,rights=rw"))));
            } catch (RuntimeException e) {
                System.out.println("argument throughput: skipped (cannot create a VM here: " + e.getMessage() + ")");
                return;
            }
            VirtualMachine guest = vm;
            guest.start();
            long end = System.nanoTime() + Duration.ofMinutes(10).toNanos();
            while (!guest.console().contains("serving") && guest.result().isEmpty() && System.nanoTime() < end) {
                Thread.sleep(5);
            }
            GeminiSession session = gemini.sessionOfVm(guest.id()).orElse(null);
            if (session == null || session.referenceRegion().isEmpty()) {
                System.out.println("argument throughput: the guest did not bind its region: "
                        + guest.result().map(Object::toString).orElse(guest.console()));
                return;
            }
            System.out.println("bench gemini: host->guest calc.sum(bytes), the guest reads every byte; one guest, 256 MiB rings, "
                    + "region 'gemini' (MiB/s from the median call; copy and reference calls alternate)");
            System.out.printf(Locale.ROOT, "%-10s %12s %12s %10s%n", "argument", "copy", "reference", "ref/copy");
            double[][] figures = new double[SIZES.length][];
            for (int i = 0; i < SIZES.length; i++) {
                byte[] data = new byte[SIZES[i]];
                for (int j = 0; j < data.length; j++) {
                    data[j] = (byte) (j * 7 + 3);
                }
                long expected = checksum(data);
                figures[i] = copyVsReference(session, data, expected);
                double copy = figures[i][0];
                double ref = figures[i][1];
                System.out.printf(Locale.ROOT, "%-10s %12.1f %12.1f %9.2fx%n", size(SIZES[i]), copy, ref, ref / copy);
            }
            int crossover = crossover(figures);
            System.out.println("crossover (smallest size from which references win by >= 5% at every larger size): "
                    + (crossover < 0 ? "none up to " + size(largest) : size(SIZES[crossover])) + "; AUTO threshold in force: "
                    + size(session.referenceThreshold()) + " (default " + size(GeminiImpl.DEFAULT_REFERENCE_THRESHOLD)
                    + ", -D" + GeminiImpl.THRESHOLD_PROPERTY + "=BYTES)");
            session.close("bench done");
            try {
                guest.await(Duration.ofSeconds(30));
            } catch (TimeoutException e) {
                guest.stop();
            }
        } finally {
            if (vm != null) {
                m.destroy(vm.id());
            }
            p.delete("gemini");
        }
    }

    /**
     * References "win" when they are at least this much faster: closer figures are a tie within
     * the noise of a shared (or emulated) machine.
     */
    static final double WIN_MARGIN = 1.05;

    /** The index of the smallest size from which references win at every larger size, or -1. */
    static int crossover(double[][] copyVsRef) {
        int from = -1;
        for (int i = copyVsRef.length - 1; i >= 0 && copyVsRef[i][1] >= WIN_MARGIN * copyVsRef[i][0]; i--) {
            from = i;
        }
        return from;
    }

    /**
     * Copy and reference throughput for one size, from the median call time. The two alternate
     * call by call, so both see the same background (in the rig, other emulated work) and a
     * stall skews neither.
     */
    private static double[] copyVsReference(GeminiSession s, byte[] data, long expected) {
        for (Marshalling how : List.of(Marshalling.COPY, Marshalling.REFERENCE)) {
            Object first = s.call("calc", "sum", how, T, (Object) data); // warm-up; the guest must read what was sent
            if (!Long.valueOf(expected).equals(first)) {
                throw new IllegalStateException("calc.sum of " + size(data.length) + " " + how + " returned " + first
                        + ", expected " + expected);
            }
        }
        long[] copy = new long[100_000];
        long[] ref = new long[copy.length];
        int rounds = 0;
        long t0 = System.nanoTime();
        do {
            long a = System.nanoTime();
            s.call("calc", "sum", Marshalling.COPY, T, (Object) data);
            long b = System.nanoTime();
            s.call("calc", "sum", Marshalling.REFERENCE, T, (Object) data);
            copy[rounds] = b - a;
            ref[rounds] = System.nanoTime() - b;
            rounds++;
        } while ((System.nanoTime() - t0 < 2 * FIGURE_NANOS || rounds < 5) && rounds < copy.length);
        return new double[] {mibs(data.length, copy, rounds), mibs(data.length, ref, rounds)};
    }

    /** MiB/s of {@code size} bytes in the p50 of {@code nanos[0, count)}. */
    static double mibs(int size, long[] nanos, int count) {
        return size / (double) (1 << 20) / (Percentiles.nearestRankUnsorted(nanos, count, 50) / 1e9);
    }

    static String size(long bytes) {
        return bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? bytes / (1 << 20) + " MiB"
                : bytes >= 1024 && bytes % 1024 == 0 ? bytes / 1024 + " KiB" : bytes + " B";
    }

    private String skipped = "";

    static String fmt(double v) {
        return Double.isNaN(v) ? "n/a" : String.format(Locale.ROOT, "%.2f", v);
    }

    /** p50 and p99 in µs of {@code ns[0, count)}, by the definition every bench table uses. */
    static double[] stats(long[] ns, int count) {
        return new double[] {Percentiles.nearestRankUnsorted(ns, count, 50) / 1e3, Percentiles.nearestRankUnsorted(ns, count, 99) / 1e3};
    }

    static long[] gaps(long[] arrivals, int count) {
        long[] g = new long[count - 1];
        for (int i = 1; i < count; i++) {
            g[i - 1] = arrivals[i] - arrivals[i - 1];
        }
        return g;
    }

    private double[] loopback(int n) {
        LoopbackTransport[] wire = LoopbackTransport.pair();
        GeminiSession host = gemini.openSession(wire[0], PROFILE, null);
        Session peer = gemini.client(wire[1], new PeerHandler()
                .export("calc", "nop", (a, c) -> null)
                .export("calc", "echo", (a, c) -> a.get(0)), "bench-loopback");
        try {
            double[] h2l = roundTrips(host, n);
            long[] t = new long[n];
            for (int i = 0; i < n; i++) {
                long t0 = System.nanoTime();
                peer.call("bench", "nop", T);
                t[i] = System.nanoTime() - t0;
            }
            double[] l2h = stats(t, n);
            return new double[] {h2l[0], h2l[1], l2h[0], l2h[1], echo(host, Math.max(100, n / 10))};
        } finally {
            peer.close("bench done");
        }
    }

    private static double[] roundTrips(GeminiSession s, int n) {
        for (int i = 0; i < Math.min(n, 2000); i++) {
            s.call("calc", "nop", T); // warm-up
        }
        long[] t = new long[n];
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            s.call("calc", "nop", T);
            t[i] = System.nanoTime() - t0;
        }
        return stats(t, n);
    }

    private static double echo(GeminiSession s, int n) {
        byte[] page = new byte[4096];
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            s.call("calc", "echo", T, (Object) page);
        }
        return 2.0 * n * page.length / (1 << 20) / ((System.nanoTime() - t0) / 1e9);
    }

    private double[] guest(int n) throws Exception {
        VmManager m = vms;
        String images = System.getProperty("nxia.guest.images", "guest/target/images");
        Path image = Path.of(images, "gemini-echo.elf");
        if (m == null || !Files.exists(image)) {
            skipped = m == null ? "no VM manager" : "no guest image " + image + " (build the guests)";
            return null;
        }
        BenchService bench = (BenchService) gemini.hostService("bench");
        bench.count.set(0);
        VirtualMachine vm;
        try {
            vm = m.create(VmProfile.of(image).withName(PROFILE).withMemory(16 * VmProfile.MIB).withArg(n)
                    .withTimeout(Duration.ofMinutes(10)));
        } catch (RuntimeException e) {
            skipped = "cannot create a VM here: " + e.getMessage();
            return null;
        }
        try {
            vm.start();
            long end = System.nanoTime() + Duration.ofMinutes(10).toNanos();
            while (!vm.console().contains("serving") && vm.result().isEmpty() && System.nanoTime() < end) {
                Thread.sleep(5);
            }
            Optional<GeminiSession> session = gemini.sessionOfVm(vm.id());
            if (session.isEmpty() || bench.count.get() < n) {
                skipped = "the guest did not finish its calls: " + vm.result().map(Object::toString).orElse(vm.console());
                return null;
            }
            double[] l2h = stats(gaps(bench.arrivals, n), n - 1);
            double[] h2l = roundTrips(session.get(), n);
            double mibs = echo(session.get(), Math.max(100, n / 10));
            session.get().close("bench done");
            try {
                vm.await(Duration.ofSeconds(30));
            } catch (TimeoutException e) {
                System.out.println("warning: the guest did not exit within 30 s of CLOSE; stopping it");
                vm.stop();
            }
            return new double[] {h2l[0], h2l[1], l2h[0], l2h[1], mibs};
        } finally {
            m.destroy(vm.id());
        }
    }
}
