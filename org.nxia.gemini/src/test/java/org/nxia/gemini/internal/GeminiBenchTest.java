package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Dictionary;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.gemini.api.Gemini;
import org.nxia.lsm.policy.internal.PolicyService;
import org.nxia.portal.internal.PortalsImpl;
import org.nxia.portal.internal.Structures;
import org.nxia.vmm.api.VmManager;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;

/**
 * bench:gemini's arithmetic (crossover, sizes, percentiles, MiB/s, the guest's checksum) with
 * known inputs, and the command's loopback half end to end; its guest halves need KVM and run in
 * the rig, so here only their refusals (no VM manager, no image, a VM that cannot be created).
 */
class GeminiBenchTest {

    @Test
    void crossoverIsTheSmallestSizeFromWhichReferencesWinByTheMarginEverAfter() {
        assertEquals(1, GeminiBench.crossover(new double[][] {{1, 1.01}, {1, 1.2}, {1, 3}}), "1.01x is a tie");
        assertEquals(2, GeminiBench.crossover(new double[][] {{1, 2}, {1, 0.9}, {1, 3}}), "a loss in between resets it");
        assertEquals(0, GeminiBench.crossover(new double[][] {{1, 1.05}, {1, 2}}), "exactly the margin wins");
        assertEquals(-1, GeminiBench.crossover(new double[][] {{1, 2}, {1, 1}}), "copies win at the largest size");
        assertEquals(1, GeminiBench.crossover(new double[][] {{10, 10.4}, {10, 10.5}}), "the margin scales with the copy figure");
        assertEquals(-1, GeminiBench.crossover(new double[0][]));
    }

    @Test
    void sizesPrintInTheirUnit() {
        assertEquals("4 KiB", GeminiBench.size(4096));
        assertEquals("64 MiB", GeminiBench.size(64 << 20));
        assertEquals("1 MiB", GeminiBench.size(1 << 20));
        assertEquals("1025 KiB", GeminiBench.size((1 << 20) + 1024));
        assertEquals("1 KiB", GeminiBench.size(1024));
        assertEquals("1023 B", GeminiBench.size(1023));
        assertEquals("1025 B", GeminiBench.size(1025));
        assertEquals("1000 B", GeminiBench.size(1000));
        assertEquals("0 B", GeminiBench.size(0));
    }

    @Test
    void percentilesComeFromTheFirstCountSamplesSorted() {
        long[] ns = new long[200]; // only the first 100 count; the rest are zeros that must not
        for (int i = 0; i < 100; i++) {
            ns[i] = (100 - i) * 1000L; // 100 µs down to 1 µs
        }
        assertArrayEquals(new double[] {50.0, 99.0}, GeminiBench.stats(ns, 100), "nearest rank: the 50th and 99th of 100");
        assertArrayEquals(new double[] {2.0, 3.0}, GeminiBench.stats(new long[] {3000, 1000, 2000}, 3), "p99 of 3 is the largest");
        long[] thousand = new long[1000];
        for (int i = 0; i < 1000; i++) {
            thousand[i] = i * 1000L;
        }
        assertArrayEquals(new double[] {499.0, 989.0}, GeminiBench.stats(thousand, 1000), "p50 and p99: the 500th and 990th of 1000");
        assertArrayEquals(new double[] {1.0, 2.0}, GeminiBench.stats(new long[] {2000, 1000}, 2), "p50 of two is the lower");
    }

    @Test
    void gapsAreTheDifferencesOfConsecutiveArrivals() {
        assertArrayEquals(new long[] {5, 20}, GeminiBench.gaps(new long[] {10, 15, 35, 99}, 3));
    }

    @Test
    void throughputIsTheSizeOverTheMedianTime() {
        assertEquals(0.5, GeminiBench.mibs(1 << 20, new long[] {3_000_000_000L, 1_000_000_000L, 2_000_000_000L, 1}, 3), 1e-12);
        assertEquals(10.0, GeminiBench.mibs(4 << 20, new long[] {500_000_000L, 400_000_000L}, 2), 1e-12, "p50 of two: the lower");
    }

    @Test
    void figuresPrintWithTwoDecimalsOrNa() {
        assertEquals("n/a", GeminiBench.fmt(Double.NaN));
        assertEquals("1.23", GeminiBench.fmt(1.234));
        assertEquals("1000.50", GeminiBench.fmt(1000.5));
    }

    @Test
    void checksumIsTheLengthPlusLittleEndianWordsPlusTailBytes() {
        assertEquals(0, GeminiBench.checksum(new byte[0]));
        assertEquals(3 + 0xff + 2 + 3, GeminiBench.checksum(new byte[] {(byte) 0xff, 2, 3}), "tail bytes are unsigned");
        byte[] nine = {1, 0, 0, 0, 0, 0, 0, 1, 5};
        assertEquals(9 + 0x0100000000000001L + 5, GeminiBench.checksum(nine));
        assertEquals(8 + 0x0100000000000001L, GeminiBench.checksum(new byte[] {1, 0, 0, 0, 0, 0, 0, 1}), "8 bytes are one word");
        byte[] sixteen = new byte[16];
        sixteen[0] = 2;
        sixteen[8] = 3;
        assertEquals(16 + 2 + 3, GeminiBench.checksum(sixteen));
    }

    /** What the command did to its OSGi surroundings. */
    private static final class Surroundings {
        final List<String> events = new ArrayList<>();
        final PolicyService policy = new PolicyService();

        BundleContext context() {
            return (BundleContext) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {BundleContext.class},
                    (p, m, a) -> switch (m.getName()) {
                        case "registerService" -> {
                            events.add("register " + ((Dictionary<?, ?>) a[2]).get(Gemini.SERVICE_PROPERTY));
                            yield Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {ServiceRegistration.class},
                                    (q, n, b) -> {
                                        events.add(n.getName());
                                        return null;
                                    });
                        }
                        default -> throw new UnsupportedOperationException(m.getName());
                    });
        }

        /** ConfigurationAdmin delivering the manifest to the real policy service, as the platform's does. */
        ConfigurationAdmin configAdmin() {
            return (ConfigurationAdmin) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {ConfigurationAdmin.class},
                    (p, m, a) -> switch (m.getName()) {
                        case "createFactoryConfiguration" -> {
                            events.add("create " + a[0]);
                            yield Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {Configuration.class},
                                    (q, n, b) -> {
                                        switch (n.getName()) {
                                            case "update" -> {
                                                events.add("update");
                                                policy.updated("bench", (Dictionary<String, ?>) b[0]);
                                            }
                                            case "delete" -> {
                                                events.add("delete");
                                                policy.deleted("bench");
                                            }
                                            default -> throw new UnsupportedOperationException(n.getName());
                                        }
                                        return null;
                                    });
                        }
                        default -> throw new UnsupportedOperationException(m.getName());
                    });
        }
    }

    private static String captured(ThrowingRunnable r) throws Exception {
        PrintStream was = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            r.run();
        } finally {
            System.setOut(was);
        }
        String out = buf.toString(StandardCharsets.UTF_8);
        was.print(out);
        return out;
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    @Test
    void theCommandRefusesBadCountsAndRunsNothingWithoutConfigAdmin() throws Exception {
        Surroundings s = new Surroundings();
        GeminiImpl gemini = new GeminiImpl(s.policy, Map.of(), Map.of());
        try {
            GeminiBench bench = new GeminiBench(s.context(), gemini);
            bench.config = s.configAdmin();
            assertEquals("give 100 to 10000000 calls", assertThrows(IllegalArgumentException.class, () -> bench.gemini(99, false)).getMessage());
            assertThrows(IllegalArgumentException.class, () -> bench.gemini(10_000_001, false));
            assertThrows(IllegalArgumentException.class, () -> bench.gemini(-100, false));
            assertEquals(List.of(), s.events, "nothing was installed for a refused count");
            bench.config = null;
            assertThrows(IllegalStateException.class, () -> bench.gemini(10_000_000, false), "the largest count is allowed");
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> bench.gemini(100, false));
            assertTrue(e.getMessage().contains("ConfigurationAdmin"), e.getMessage());
        } finally {
            gemini.deactivate();
        }
    }

    /**
     * The loopback figures come out as a table beside "n/a" for the guest, the policy manifest the
     * command installs lets its calls through and is removed after, and the guest halves say why
     * they were skipped.
     */
    @Test
    void theLoopbackHalfRunsAndTheGuestHalvesSayWhyTheyWereSkipped() throws Exception {
        Surroundings s = new Surroundings();
        GeminiImpl gemini = new GeminiImpl(s.policy, Map.of("bench", new GeminiBench.BenchService(1)), Map.of());
        try {
            GeminiBench bench = new GeminiBench(s.context(), gemini);
            bench.config = s.configAdmin();
            String out = captured(() -> bench.gemini(100, false));
            assertEquals(List.of("create org.nxia.lsm.policy.manifest", "update", "register bench", "unregister", "delete"), s.events);
            assertTrue(s.policy.manifests().isEmpty(), "the manifest is gone after the run: " + s.policy.manifests());
            String[] lines = out.split("\n");
            assertEquals("bench gemini: 100 null calls per figure (microseconds; 4 KiB echo in MiB/s)", lines[0]);
            assertEquals(List.of("figure", "loopback", "guest", "on", "rings"), List.of(lines[1].trim().split("\\s+")));
            double[] loop = new double[5];
            String[] names = {"H->L round trip p50", "H->L round trip p99", "L->H round trip p50", "L->H round trip p99",
                    "H->L 4 KiB echo MiB/s"};
            for (int i = 0; i < 5; i++) {
                assertTrue(lines[2 + i].startsWith(names[i]), lines[2 + i]);
                String[] w = lines[2 + i].substring(26).trim().split("\\s+");
                assertEquals("n/a", w[1], lines[2 + i]);
                assertTrue(w[0].matches("\\d+\\.\\d\\d"), lines[2 + i]);
                loop[i] = Double.parseDouble(w[0]);
                // a latency under 10 s (in µs), a rate under 100 000 MiB/s: far from what a wrong formula gives
                assertTrue(loop[i] > 0 && loop[i] < (i < 4 ? 1e7 : 1e5), "a plausible loopback figure: " + lines[2 + i]);
            }
            assertTrue(loop[0] <= loop[1] && loop[2] <= loop[3], "p50 <= p99: " + out);
            assertEquals("L->H on the guest is the gap between consecutive calls as the host sees them (one full round trip).", lines[7]);
            assertEquals("guest: no VM manager", lines[8]);
            assertEquals("argument throughput: skipped (no VM manager)", lines[9]);
            assertEquals(10, lines.length, out);
            long until = System.nanoTime() + 5_000_000_000L;
            while (!gemini.sessions().isEmpty() && System.nanoTime() < until) {
                Thread.sleep(5);
            }
            assertEquals(0, gemini.sessions().size(), "the loopback session is closed");

            String only = captured(() -> bench.gemini(100, true));
            assertEquals("argument throughput: skipped (no VM manager)\n", only, "-t skips the null calls");
        } finally {
            gemini.deactivate();
        }
    }

    /** A VM manager that cannot create a VM (as on a host without KVM): both guest halves say so and clean up. */
    @Test
    void aVmThatCannotBeCreatedSkipsTheGuestHalvesAndFreesTheRegion(@TempDir Path images) throws Exception {
        Surroundings s = new Surroundings();
        GeminiImpl gemini = new GeminiImpl(s.policy, Map.of("bench", new GeminiBench.BenchService(1)), Map.of());
        String was = System.getProperty("nxia.guest.images");
        PortalsImpl portals = new PortalsImpl();
        try {
            GeminiBench bench = new GeminiBench(s.context(), gemini);
            bench.config = s.configAdmin();
            System.setProperty("nxia.guest.images", images.toString());
            String out = captured(() -> bench.gemini(100, false));
            assertTrue(out.contains("\nguest: no VM manager\n"), out);
            List<String> created = new ArrayList<>();
            bench.vms = (VmManager) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VmManager.class},
                    (p, m, a) -> {
                        if (m.getName().equals("create")) {
                            created.add(a[0].toString());
                            throw new IllegalStateException("no /dev/kvm");
                        }
                        throw new UnsupportedOperationException(m.getName());
                    });
            out = captured(() -> bench.gemini(100, false));
            assertTrue(out.contains("\nguest: no guest image " + images.resolve("gemini-echo.elf") + " (build the guests)\n"), out);
            assertTrue(out.contains("argument throughput: skipped (no Portal service)"), out);
            Files.write(images.resolve("gemini-echo.elf"), new byte[] {0x7f, 'E', 'L', 'F'});
            out = captured(() -> bench.gemini(100, false));
            assertTrue(out.contains("\nguest: cannot create a VM here: no /dev/kvm\n"), out);
            assertEquals(1, created.size());
            bench.portals = portals;
            out = captured(() -> bench.gemini(100, true));
            assertTrue(out.contains("argument throughput: skipped (no Portal service)"), "no PortalStructures yet: " + out);
            bench.structures = new Structures();
            out = captured(() -> bench.gemini(100, true));
            assertEquals("argument throughput: skipped (cannot create a VM here: no /dev/kvm)\n", out);
            assertEquals(2, created.size());
            assertEquals(List.of(), portals.list(), "the region the run made is deleted");
            Files.delete(images.resolve("gemini-echo.elf"));
            out = captured(() -> bench.gemini(100, true));
            assertEquals("argument throughput: skipped (no guest image " + images.resolve("gemini-echo.elf") + ")\n", out);
        } finally {
            if (was == null) {
                System.clearProperty("nxia.guest.images");
            } else {
                System.setProperty("nxia.guest.images", was);
            }
            gemini.deactivate();
        }
    }
}
