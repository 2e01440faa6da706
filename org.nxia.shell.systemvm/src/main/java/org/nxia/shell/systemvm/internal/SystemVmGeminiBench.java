package org.nxia.shell.systemvm.internal;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Hashtable;
import java.util.List;
import java.util.Random;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Rights;
import org.nxia.shell.support.BenchStats;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.bench.Percentiles;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceReference;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code bench:sysgemini}: Gemini with a Linux process in the System VM, through the agent's broker
 * and over a ring session (Portal rings of the process's own in region {@value #RINGS}, docs/gemini-protocol.md).
 * Null call round trips L→H ({@code nxia-call -n}, timed in the guest; through the broker and with
 * {@code --ring}) and H→L (the host's session
 * to {@code nxia-serve -e}, timed on the host) against a Unix-socket round trip between two host
 * processes with the same payload (guest/floor/uds-rtt.c); then byte arguments of 4 KiB to 64 MiB
 * each way, copied (while a frame holds them) and by reference into region {@value #REGION} (L→H
 * also over the ring session), the
 * callee reading every byte in both cases, against a host {@code memcpy} of the same size; and the
 * crossover. Every figure is the median of its samples, all measured in this run. Needs hardware
 * virtualization; elsewhere it says why it did not run.
 */
@Component(service = SystemVmGeminiBench.class, property = {"osgi.command.scope=bench", "osgi.command.function=sysgemini"})
public final class SystemVmGeminiBench {

    static final long MIB = 1L << 20;
    static final String PROFILE = "gemini-bench-linux";
    static final String SERVICE = "benchl";
    static final String REGION = "gemini";
    /** The region the Linux process's ring session lives in: Linux's 2 MiB and 2 MiB for the rings. */
    static final String RINGS = "rings";
    static final long RINGS_BYTES = Portals.LINUX_DAX_OFFSET + 2 * MIB;
    /** A null call's CALL frame is about this size; the floor moves the same each way. */
    static final int PAYLOAD = 48;
    /** Two 64 MiB blocks past Linux's 2 MiB (and the arena's header). */
    static final long REGION_BYTES = Portals.LINUX_DAX_OFFSET + 2 * 64 * MIB + 2 * MIB;
    static final long[] SIZES = {4 << 10, 16 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20};
    /** The largest argument a frame carries copied (the broker's client frame less the call's own bytes). */
    static final long COPY_MAX = 20 << 10;
    static final Duration T = Duration.ofSeconds(120);
    static final String GEMINI = "org.nxia.gemini.api.Gemini";

    private final SystemVms systemVms;
    private final VmManager vms;
    private final Portals portals;
    private final ConfigurationAdmin config;
    private final BundleContext context;

    @Activate
    public SystemVmGeminiBench(@Reference SystemVms systemVms, @Reference VmManager vms, @Reference Portals portals,
                               @Reference ConfigurationAdmin config, BundleContext context) {
        this.systemVms = systemVms;
        this.vms = vms;
        this.portals = portals;
        this.config = config;
        this.context = context;
    }

    /** The host service the Linux side calls: nop for the null call, sum reads every byte as the Linux side's -s does. */
    public static final class Bench {
        public void nop() {
        }

        public long sum(MemorySegment data) {
            return byteSum(data);
        }
    }

    /** The sum of the little-endian 64-bit words (a short tail zero-padded), as nxia-serve -s adds them: every byte read once. */
    static long byteSum(MemorySegment data) {
        long total = 0;
        long n = data.byteSize();
        long i = 0;
        for (; i + 8 <= n; i += 8) {
            total += data.get(LE_LONG, i);
        }
        for (int shift = 0; i < n; i++, shift += 8) {
            total += (data.get(ValueLayout.JAVA_BYTE, i) & 0xffL) << shift;
        }
        return total;
    }

    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    /** One argument size: median nanoseconds a call, each way, copied and by reference, L→H by reference over the ring too (0: not measured). */
    record SizeRow(long bytes, double l2hCopy, double l2hRef, double l2hRing, double h2lCopy, double h2lRef, double memcpy) {
    }

    @Descriptor("Gemini with a Linux process in the System VM: null call RTT each way against a host Unix-socket round trip,"
            + " and 4 KiB..64 MiB arguments copied and by reference against a host memcpy")
    public String sysgemini(
            @Descriptor("null calls per side") @Parameter(names = {"-n", "--calls"}, absentValue = "2000") int calls,
            @Descriptor("kernel (default: the built System VM image)") @Parameter(names = {"-k", "--kernel"}, absentValue = "") String kernel,
            @Descriptor("initramfs (default: the built System VM image)") @Parameter(names = {"-r", "--initrd"}, absentValue = "") String initrd)
            throws Exception {
        if (calls < 10) {
            throw new IllegalArgumentException("at least 10 calls");
        }
        if (!vms.hypervisor().flavour().hardwareVirtualization()) {
            return "bench sysgemini: not run: " + vms.hypervisor().flavour().label()
                    + " host, stock kernel needs hardware virtualization (VMX or SVM)";
        }
        // Gemini by name: a System VM node leaves it out (distro/systemvm.bndrun), and this bundle must resolve there
        ServiceReference<?> geminiRef = context.getServiceReference(GEMINI);
        if (geminiRef == null) {
            return "bench sysgemini: not run: no Gemini service here (the System VM node's assembly leaves Gemini out; the full platform has it)";
        }
        Path floor = floorBinary();
        for (String r : List.of(REGION, RINGS)) {
            if (portals.find(r).isPresent()) {
                throw new IllegalStateException("a Portal region named " + r + " exists already; the bench makes its own");
            }
        }
        portals.create(REGION, REGION_BYTES, "bench:sysgemini", Rights.RW, null);
        portals.create(RINGS, RINGS_BYTES, "bench:sysgemini", Rights.RW, null);
        LinuxProfile profile = LinuxProfile.of(SystemVmBenchCommands.image(kernel, "bzImage"), SystemVmBenchCommands.image(initrd,
                        "initramfs.cpio.gz")).withName(PROFILE).withVcpus(1).withMemory(512L << 20).withTimeout(Duration.ofMinutes(30))
                .withDevices(List.of(DeviceConfig.parse("portal:name=" + REGION), DeviceConfig.parse("virtio-pmem:region=" + REGION + ",dax=true"),
                        DeviceConfig.parse("portal:name=" + RINGS), DeviceConfig.parse("virtio-pmem:region=" + RINGS + ",dax=true")));
        Hashtable<String, Object> sp = new Hashtable<>();
        sp.put("gemini.service", SERVICE);   // Gemini.SERVICE_PROPERTY, by value: see GeminiHostSide
        ServiceRegistration<?> reg = context.registerService(Object.class.getName(), new Bench(), sp);
        Configuration manifest = config.createFactoryConfiguration("org.nxia.lsm.policy.manifest", "?");
        Hashtable<String, Object> mp = new Hashtable<>();
        mp.put("manifest", "profile " + PROFILE + "\nallow out " + SERVICE + ".*\nallow in " + SERVICE + ".*\nallow out gemini.ring\n");
        manifest.update(mp);
        long[] out;
        long[] ring;
        long[] in = new long[calls];
        List<SizeRow> rows = new ArrayList<>();
        try (SystemVm svm = systemVms.boot(profile, SystemVmBenchCommands.READY_LIMIT)) {
            AgentSession s = svm.session();
            Thread.sleep(500); // ConfigAdmin delivers the manifest asynchronously
            out = samples(guest(s, "nxia-call -t 30 -n " + calls + " " + SERVICE + " nop"), calls, "nxia-call -n");
            ring = samples(guest(s, "nxia-call -t 30 -n " + calls + " --ring " + RINGS + " " + SERVICE + " nop"), calls, "nxia-call -n --ring");
            guest(s, "(nxia-serve -e " + SERVICE + " echo > /tmp/echo.log 2>&1 &); (nxia-serve -s " + SERVICE + " sum > /tmp/sum.log 2>&1 &);"
                    + " i=0; until grep -q serving /tmp/echo.log && grep -q serving /tmp/sum.log; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.05; done");
            HostSide host = GeminiHostSide.open(context.getService(geminiRef), svm.vm().id());
            for (int i = -calls / 10; i < calls; i++) {
                long t0 = System.nanoTime();
                host.nullCall();
                if (i >= 0) {
                    in[i] = System.nanoTime() - t0;
                }
            }
            for (long size : SIZES) {
                rows.add(sizeRow(s, host, size));
            }
        } finally {
            context.ungetService(geminiRef);
            reg.unregister();
            manifest.delete();
            portals.delete(REGION);
            portals.delete(RINGS);
        }
        Process p = new ProcessBuilder(floor.toString(), Integer.toString(calls), Integer.toString(PAYLOAD)).start();
        String floorOut = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            throw new IOException(floor + " failed: " + new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
        }
        return table(out, ring, in, samples(floorOut, calls, "uds-rtt"), calls, vms.hypervisor().flavour().label()) + "\n" + sizeTable(rows);
    }

    /** Calls a size takes: enough to move ~256 MiB, 3 to 50. */
    static int repeats(long size) {
        return (int) Math.max(3, Math.min(50, (256 * MIB) / size));
    }

    /** The host's end of the VM's broker session: only {@link GeminiHostSide} names Gemini's types. */
    interface HostSide {
        void nullCall();

        /** Calls nxia-serve -s with {@code data}, copied or by reference; the sum it answers. */
        Object sum(byte[] data, boolean byReference);
    }

    private SizeRow sizeRow(AgentSession s, HostSide session, long size) throws Exception {
        int n = repeats(size);
        String file = "/tmp/arg-" + size;
        guest(s, "head -c " + size + " /dev/urandom > " + file);
        double l2hCopy = size <= COPY_MAX ? median(samples(guest(s, "nxia-call -t 120 -m copy -n " + n + " " + SERVICE + " sum @" + file), n, "copy")) : 0;
        double l2hRef = median(samples(guest(s, "nxia-call -t 120 -m ref -n " + n + " " + SERVICE + " sum @" + file), n, "ref"));
        double l2hRing = median(samples(guest(s, "nxia-call -t 120 -m ref -n " + n + " --ring " + RINGS + " " + SERVICE + " sum @" + file), n, "ref, ring"));
        guest(s, "rm " + file);
        byte[] data = new byte[(int) size];
        new Random(size).nextBytes(data);
        long expected = byteSum(MemorySegment.ofArray(data));
        double h2lCopy = size <= COPY_MAX ? timeHostCalls(session, data, false, n, expected) : 0;
        double h2lRef = timeHostCalls(session, data, true, n, expected);
        return new SizeRow(size, l2hCopy, l2hRef, l2hRing, h2lCopy, h2lRef, memcpy(size, n));
    }

    private static double timeHostCalls(HostSide session, byte[] data, boolean byReference, int n, long expected) throws IOException {
        long[] ns = new long[n];
        for (int i = -1; i < n; i++) {
            long t0 = System.nanoTime();
            Object sum = session.sum(data, byReference);
            long dt = System.nanoTime() - t0;
            if (!Long.valueOf(expected).equals(sum)) {
                throw new IOException("nxia-serve -s summed " + data.length + " bytes (" + (byReference ? "by reference" : "copied")
                        + ") to " + sum + ", not " + expected);
            }
            if (i >= 0) {
                ns[i] = dt;
            }
        }
        return median(ns);
    }

    /** The floor for a size: a host memcpy between two native buffers, median of n after one warm-up. */
    static double memcpy(long size, int n) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment from = a.allocate(size, 64).fill((byte) 1);
            MemorySegment to = a.allocate(size, 64).fill((byte) 0);
            long[] ns = new long[n];
            for (int i = -1; i < n; i++) {
                long t0 = System.nanoTime();
                MemorySegment.copy(from, 0, to, 0, size);
                if (i >= 0) {
                    ns[i] = System.nanoTime() - t0;
                }
            }
            return median(ns);
        }
    }

    private static double median(long[] ns) {
        return Percentiles.nearestRankUnsorted(ns, 50);
    }

    /** Runs a shell line in the guest with a deadline (busybox timeout), failing with its error output. */
    private static String guest(AgentSession s, String script) throws IOException {
        return SystemVmBenchCommands.guestOutput(s, "/bin/busybox", "timeout", "600", "/bin/busybox", "sh", "-c", "PATH=/usr/bin:/bin; " + script);
    }

    /** The null-call table: one row per side, p50/p99 in µs, and each VM side's p50 over the floor's (≤ 1 is better; goal ≤ 3). */
    static String table(long[] lToH, long[] lToHRing, long[] hToL, long[] floor, int calls, String host) {
        double f50 = Percentiles.nearestRankUnsorted(floor, 50);
        StringBuilder s = new StringBuilder(String.format(
                "Gemini null call round trips with a Linux process in the System VM, through the agent's broker and over%n"
                        + "Portal rings of its own (a ring session) (%d calls a side,%n"
                        + "a tenth more unmeasured first; %s), against a %d-byte round trip over a Unix socket between two host%n"
                        + "processes (the floor), same run%n", calls, host, PAYLOAD));
        s.append(String.format("  %-52s %10s %10s %12s%n", "", "p50 us", "p99 us", "p50 / floor"));
        s.append(row("L->H: nxia-call -n in the guest, timed there", lToH, f50));
        s.append(row("L->H: nxia-call -n --ring (Portal rings), timed there", lToHRing, f50));
        s.append(row("H->L: host session to nxia-serve -e, timed on host", hToL, f50));
        s.append(row("floor: host Unix socket, two processes", floor, f50));
        s.append(String.format("  %-52s %s%n", "(p50 / floor: <= 1 is better; goal <= 3 on hardware KVM)", ""));
        return s.toString();
    }

    private static String row(String label, long[] ns, double floor50) {
        double p50 = Percentiles.nearestRankUnsorted(ns, 50);
        return String.format("  %-52s %10.1f %10.1f %12s%n", label, p50 / 1e3, Percentiles.nearestRankUnsorted(ns, 99) / 1e3,
                BenchStats.fmtRatio(p50 / floor50));
    }

    /**
     * The argument table: MiB/s of each way and kind (the callee reads every byte; median call time),
     * a host memcpy of the same size, by-reference over memcpy (>= 1 is better; goal >= 0.5 at 64 MiB),
     * and the crossover: the smallest size from which a reference is at least as fast as a copy, each way.
     */
    static String sizeTable(List<SizeRow> rows) {
        StringBuilder s = new StringBuilder(String.format(
                "Byte arguments through the broker, MiB/s (median call; the callee reads every byte), copied while a frame holds%n"
                        + "them (%d KiB) and by reference into region %s (L->H also by reference over a ring session), against a%n"
                        + "host memcpy of the same size, same run%n",
                COPY_MAX >> 10, REGION));
        s.append(String.format("  %-8s %10s %10s %10s %10s %10s %12s %14s%n", "size", "L->H copy", "L->H ref", "L->H ring", "H->L copy",
                "H->L ref", "host memcpy", "ref / memcpy"));
        for (SizeRow r : rows) {
            double best = Math.max(Math.max(rate(r.bytes(), r.l2hRef()), rate(r.bytes(), r.l2hRing())), rate(r.bytes(), r.h2lRef()));
            s.append(String.format("  %-8s %10s %10s %10s %10s %10s %12s %14s%n", size(r.bytes()), mibs(r.bytes(), r.l2hCopy()),
                    mibs(r.bytes(), r.l2hRef()), mibs(r.bytes(), r.l2hRing()), mibs(r.bytes(), r.h2lCopy()), mibs(r.bytes(), r.h2lRef()),
                    mibs(r.bytes(), r.memcpy()),
                    BenchStats.fmtRatio(best / rate(r.bytes(), r.memcpy()))));
        }
        s.append(String.format("  crossover (reference at least as fast as copy): L->H %s, H->L %s%n",
                crossover(rows, true), crossover(rows, false)));
        s.append("  (ref / memcpy: the faster way's reference over memcpy, >= 1 is better; goal >= 0.5 at 64 MiB on hardware KVM)\n");
        return s.toString();
    }

    static String crossover(List<SizeRow> rows, boolean l2h) {
        for (SizeRow r : rows) {
            double copy = l2h ? r.l2hCopy() : r.h2lCopy();
            double ref = l2h ? r.l2hRef() : r.h2lRef();
            if (copy == 0 || ref <= copy) {
                return copy == 0 ? size(r.bytes()) + " (no copy past " + (COPY_MAX >> 10) + " KiB)" : size(r.bytes());
            }
        }
        return "none measured";
    }

    private static double rate(long bytes, double ns) {
        return ns == 0 ? 0 : bytes / (double) MIB / (ns / 1e9);
    }

    private static String mibs(long bytes, double ns) {
        return ns == 0 ? "-" : String.format("%.1f", rate(bytes, ns));
    }

    private static String size(long bytes) {
        return bytes >= MIB ? bytes / MIB + " MiB" : (bytes >> 10) + " KiB";
    }

    /** Nanosecond samples, one a line; exactly {@code n} of them, all positive. */
    static long[] samples(String text, int n, String from) throws IOException {
        List<String> lines = text.lines().filter(l -> !l.isBlank()).toList();
        if (lines.size() != n) {
            throw new IOException(from + " gave " + lines.size() + " samples, not " + n);
        }
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            try {
                out[i] = Long.parseLong(lines.get(i).strip());
            } catch (NumberFormatException e) {
                throw new IOException(from + ": not a sample: " + lines.get(i));
            }
            if (out[i] <= 0) {
                throw new IOException(from + ": a sample of " + out[i] + " ns");
            }
        }
        return out;
    }

    private static Path floorBinary() {
        Path p = Path.of(System.getProperty("nxia.guest.images", "guest/target/images"), "uds-rtt");
        if (!Files.isExecutable(p)) {
            throw new IllegalArgumentException("no floor program " + p + ": build the guests (./nxia build)");
        }
        return p;
    }
}
