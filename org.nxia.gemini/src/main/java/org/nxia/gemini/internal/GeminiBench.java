package org.nxia.gemini.internal;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Hashtable;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
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
 * (guests/gemini-echo.c) over rings in its RAM, measured in the same run.
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

    @Activate
    public GeminiBench(BundleContext context, @Reference Gemini gemini) {
        this.context = context;
        this.gemini = (GeminiImpl) gemini;
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

    @Descriptor("Gemini null-call round trip p50/p99, host->guest and guest->host: in-process loopback vs a guest on rings")
    public void gemini(@Descriptor("calls per figure") @Parameter(names = {"-n", "--calls"}, absentValue = "20000") int n)
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
        } finally {
            reg.unregister();
            manifest.delete();
        }
    }

    private String skipped = "";

    private static String fmt(double v) {
        return Double.isNaN(v) ? "n/a" : String.format(Locale.ROOT, "%.2f", v);
    }

    private static double[] stats(long[] ns, int count) {
        long[] s = Arrays.copyOf(ns, count);
        Arrays.sort(s);
        return new double[] {s[count / 2] / 1e3, s[Math.min(count - 1, (int) (count * 0.99))] / 1e3};
    }

    private static long[] gaps(long[] arrivals, int count) {
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
