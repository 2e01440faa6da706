package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceReference;

/**
 * virtio-net with passt under a real Linux driver, on the host's loopback
 * only: the guest's agent gets a lease by DHCP, the guest fetches from a
 * server on the host's 127.0.0.1 through passt's gateway mapping, a host
 * client reaches busybox httpd in the guest through a forwarded port (also
 * right after passt's restart, before the guest has sent it anything), bulk
 * transfers both ways arrive with equal SHA-256, and killing passt takes the
 * guest's carrier down until the supervisor's restart brings it back.
 *
 * <p>Issue 14's resets and stalls here were the device's: the transmit ring's
 * avail_event left behind the chains taken (the guest stopped kicking, its
 * ACKs and data sat unsent until passt reset the connections), passt's socket
 * left full by a slow guest (this passt then cuts a frame behind its length),
 * and a restarted passt sending to the broadcast MAC. {@code -Dnxia.net.diag=true}
 * runs passt with a packet capture and, on a failed forwarded GET, prints the
 * device's state, passt's log, the capture's TCP flags and the guest's TCP counters.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsKernel
@ExamReactorStrategy(PerClass.class)
public class NetTest {

    // busybox wget's -T (Debian's static 1.35) dies of SIGSEGV: busybox timeout bounds it instead.

    /** The forwarded host port (the guest's httpd listens on 80). */
    static final int FORWARD = Integer.getInteger("nxia.net.forward", 18080);
    static final int BULK_MIB = Integer.getInteger("nxia.net.bulkMiB", 64);
    /** Where the figures were taken: tools/kvm-rig/itest.sh sets nxia.rig. */
    static final String WHERE = Boolean.getBoolean("nxia.rig") ? "rig: emulated" : "KVM";
    static final String GATEWAY = "10.0.2.2";
    /** Diagnostics: passt with --pcap through a wrapper; a failed forwarded GET prints the evidence (see the class comment). */
    static final boolean DIAG = Boolean.getBoolean("nxia.net.diag");
    static final long WAIT_MS = 120_000;

    @Inject
    SystemVms systemVms;

    @Inject
    BundleContext context;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void guestAndHostTalkThroughPasstAndARestartReconnects() throws Exception {
        byte[] bulk = new byte[BULK_MIB << 20];
        new Random(14).nextBytes(bulk);
        try (ServerSocket server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress())) {
            Thread.ofPlatform().daemon().name("net-test-http").start(() -> serve(server, bulk));
            // Addresses given, not copied from a default route: the rig has only lo.
            String passtOpt = "";
            if (DIAG) {
                Path w = Path.of("/tmp/nettest-passt.sh");
                // not --debug: this passt (0.0~git20230309) segfaults in its debug log at the first forwarded connection
                java.nio.file.Files.writeString(w, "#!/bin/sh\nexec /usr/bin/passt \"$@\" --pcap /tmp/nettest-passt-$$.pcap\n");
                w.toFile().setExecutable(true, false);
                passtOpt = ",passt=" + w;
            }
            DeviceConfig net = DeviceConfig.parse("virtio-net:forward=" + FORWARD + ":80,address=10.0.2.15/24,gateway=" + GATEWAY
                    + ",interface=lo" + passtOpt);
            LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                            Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                    .withVcpus(1).withMemory(512L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT)
                    .withDevices(List.of(net));
            SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT);
            ServiceReference<AgentSession> ref = context.getServiceReferences(AgentSession.class,
                    "(" + SystemVms.VM_ID + "=" + svm.vm().id() + ")").iterator().next();
            AgentSession s = context.getService(ref);
            try {
                awaitLease(s);
                String url = "http://" + GATEWAY + ":" + server.getLocalPort();
                assertEquals("hello from the host\n", ok(s, "timeout", "60", "wget", "-q", "-O", "-", url + "/hello").stdoutText());

                ok(s, "sh", "-c", "mkdir -p /tmp/www && echo 'hello from the guest' > /tmp/www/index.html && "
                        + "dd if=/dev/urandom of=/tmp/www/bulk bs=1048576 count=" + BULK_MIB + " 2>/dev/null && "
                        + "busybox httpd -p 80 -h /tmp/www");
                assertEquals("hello from the guest\n", new String(diag(svm.vm(), s, "/index.html"), StandardCharsets.UTF_8));

                killPasstAndAwaitItsRestart(svm.vm(), s);
                // the forwarded port first: the new passt knows the guest's MAC from the device, not from the guest
                assertEquals("hello from the guest\n", new String(diag(svm.vm(), s, "/index.html"), StandardCharsets.UTF_8));
                assertEquals("hello from the host\n", ok(s, "timeout", "60", "wget", "-q", "-O", "-", url + "/hello").stdoutText());

                long t0 = System.nanoTime();
                ExecResult w = s.exec("/bin/busybox", "timeout", "300", "wget", "-O", "/tmp/in", url + "/bulk");
                double in = mibPerSecond(BULK_MIB, t0);
                String got = ok(s, "sh", "-c", "wc -c < /tmp/in; sha256sum /tmp/in").stdoutText();
                System.out.printf("NetTest: host->guest wget: %s, %s; %s; device %s%n", w.status(), w.stderrText().strip(),
                        got.replace('\n', ' '), device(svm.vm()).state());
                assertTrue("host to guest, " + BULK_MIB + " MiB: " + got, got.contains(sha256(bulk)));

                System.out.printf("NetTest: %d MiB host->guest (wget through passt's gateway) %.1f MiB/s (%s)%n", BULK_MIB, in, WHERE);
                String sum = ok(s, "sha256sum", "/tmp/www/bulk").stdoutText().substring(0, 64);
                long t1 = System.nanoTime();
                byte[] out = diag(svm.vm(), s, "/bulk");
                double outRate = mibPerSecond(BULK_MIB, t1);
                assertEquals("guest to host, " + BULK_MIB + " MiB (got " + out.length + " bytes)", sum, sha256(out));
                System.out.printf("NetTest: %d MiB guest->host (forwarded port) %.1f MiB/s (%s)%n", BULK_MIB, outRate, WHERE);
            } finally {
                context.ungetService(ref);
                svm.close();
                if (DIAG) {
                    try (var files = java.nio.file.Files.list(Path.of("/tmp"))) {
                        files.filter(f -> f.getFileName().toString().startsWith("nettest-passt")).forEach(f -> f.toFile().delete());
                    }
                }
            }
        }
    }

    /** {@link #get}, and on failure (with {@link #DIAG}) the device's state, passt's log, its pcap summed up, and the guest's TCP counters. */
    private static byte[] diag(VirtualMachine vm, AgentSession s, String path) throws Exception {
        long t0 = System.nanoTime();
        try {
            byte[] b = get(path);
            if (DIAG) {
                System.out.printf("NetTest diag: GET %s: %d bytes in %.1f s%n", path, b.length, (System.nanoTime() - t0) / 1e9);
                dump(vm, s, 40);
            }
            return b;
        } catch (Throwable e) {
            System.out.printf("NetTest diag: GET %s failed after %.1f s: %s%n", path, (System.nanoTime() - t0) / 1e9, e);
            if (DIAG) {
                dump(vm, s, 400);
            }
            throw e;
        }
    }

    private static void dump(VirtualMachine vm, AgentSession s, int lines) {
        try {
            String state = device(vm).state().toString();
            System.out.println("NetTest diag: device " + state);
            Matcher m = Pattern.compile("socket=([^,\\]]+)/passt.sock").matcher(state);
            if (m.find()) {
                List<String> log = java.nio.file.Files.readAllLines(Path.of(m.group(1), "passt.log"));
                System.out.println("NetTest diag: passt.log (" + log.size() + " lines), last " + lines + ":");
                log.subList(Math.max(0, log.size() - lines), log.size()).forEach(l -> System.out.println("  passt| " + l));
            }
            Matcher pid = Pattern.compile("pid=(\\d+)").matcher(state);
            if (pid.find()) {
                Path pcap = Path.of("/tmp/nettest-passt-" + pid.group(1) + ".pcap");
                if (java.nio.file.Files.exists(pcap)) {
                    pcapSummary(pcap, lines);
                }
            }
            for (String c : new String[] {"cat /proc/net/snmp", "cat /proc/net/netstat", "netstat -tn", "dmesg | tail -20", "ps"}) {
                ExecResult r = s.exec("/bin/busybox", "sh", "-c", c);
                System.out.println("NetTest diag: guest$ " + c + "\n" + r.stdoutText() + r.stderrText());
            }
        } catch (Throwable t) {
            System.out.println("NetTest diag: dump failed: " + t);
        }
    }

    /** TCP segments in passt's pcap: every SYN/FIN/RST, and the segments before each RST. */
    private static void pcapSummary(Path pcap, int limit) throws IOException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(java.nio.file.Files.readAllBytes(pcap)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.position(24);
        java.util.ArrayDeque<String> recent = new java.util.ArrayDeque<>();
        int printed = 0;
        int frames = 0;
        long first = -1;
        while (b.remaining() >= 16 && printed < limit) {
            long sec = Integer.toUnsignedLong(b.getInt());
            long usec = Integer.toUnsignedLong(b.getInt());
            int incl = b.getInt();
            b.getInt();
            if (incl < 0 || incl > b.remaining()) {
                break;
            }
            byte[] f = new byte[incl];
            b.get(f);
            frames++;
            long t = sec * 1_000_000 + usec;
            if (first < 0) {
                first = t;
            }
            java.nio.ByteBuffer e = java.nio.ByteBuffer.wrap(f);
            String line;
            boolean mark = false;
            if (incl >= 34 && e.getShort(12) == 0x0800 && f[23] == 6) {
                int ihl = (f[14] & 15) * 4;
                int tot = e.getShort(16) & 0xffff;
                int th = 14 + ihl;
                int doff = ((f[th + 12] >> 4) & 15) * 4;
                int flags = f[th + 13] & 0xff;
                String fl = ((flags & 2) != 0 ? "S" : "") + ((flags & 1) != 0 ? "F" : "") + ((flags & 4) != 0 ? "R" : "")
                        + ((flags & 8) != 0 ? "P" : "") + ((flags & 16) != 0 ? "." : "");
                boolean fromGuest = (f[26] & 0xff) == 10 && f[29] == 15;
                line = String.format("%9.3f #%d %s %d>%d [%s] seq %d ack %d win %d len %d frame %d", (t - first) / 1e6, frames,
                        fromGuest ? "guest->passt" : "passt->guest", e.getShort(th) & 0xffff, e.getShort(th + 2) & 0xffff, fl,
                        Integer.toUnsignedLong(e.getInt(th + 4)), Integer.toUnsignedLong(e.getInt(th + 8)), e.getShort(th + 14) & 0xffff,
                        tot - ihl - doff, incl);
                mark = (flags & 7) != 0;
                if ((flags & 4) != 0) {
                    for (String r : recent) {
                        System.out.println("  pcap  " + r);
                        printed++;
                    }
                    recent.clear();
                }
            } else {
                line = String.format("%9.3f #%d ethertype %04x frame %d", (t - first) / 1e6, frames, e.getShort(12) & 0xffff, incl);
                mark = true;
            }
            if (mark) {
                System.out.println("  pcap* " + line);
                printed++;
            } else {
                recent.add(line);
                if (recent.size() > 25) {
                    recent.poll();
                }
            }
        }
        System.out.println("NetTest diag: pcap " + pcap + ": " + frames + " frames; last ones:");
        recent.forEach(r -> System.out.println("  pcap  " + r));
    }

    /** Kills the VM's passt; the supervisor starts another, and the guest's carrier went down and up. */
    private static void killPasstAndAwaitItsRestart(VirtualMachine vm, AgentSession s) throws Exception {
        int carrierChanges = Integer.parseInt(ok(s, "cat", "/sys/class/net/eth0/carrier_changes").stdoutText().strip());
        Matcher m = passt(vm);
        long pid = Long.parseLong(m.group(1));
        assertEquals("one passt so far: " + m.group(), 1, Integer.parseInt(m.group(2)));
        assertTrue("passt " + pid + " is killed", ProcessHandle.of(pid).orElseThrow().destroyForcibly());
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (true) {
            m = passt(vm);
            if (Integer.parseInt(m.group(2)) >= 2 && device(vm).state().toString().contains("linkUp=true")) {
                break;
            }
            if (System.currentTimeMillis() > deadline) {
                fail("passt was not restarted: " + device(vm).state());
            }
            Thread.sleep(100);
        }
        String state = device(vm).state().toString();
        assertTrue("the supervisor says why: " + state, state.contains("exited with status"));
        int after = Integer.parseInt(ok(s, "cat", "/sys/class/net/eth0/carrier_changes").stdoutText().strip());
        assertEquals("the guest saw the link go down and come back", carrierChanges + 2, after);
        System.out.println("NetTest: after killing passt " + pid + ": " + m.group());
    }

    private static Device device(VirtualMachine vm) {
        return vm.devices().stream().filter(d -> d.type().equals("virtio-net")).findFirst().orElseThrow();
    }

    private static Matcher passt(VirtualMachine vm) {
        Matcher m = Pattern.compile("backend=State\\[pid=(\\d+), starts=(\\d+)").matcher(device(vm).state().toString());
        assertTrue(device(vm).state().toString(), m.find());
        return m;
    }

    /** Waits for udhcpc (started by the agent at boot) to configure eth0 from passt's DHCP. */
    private static void awaitLease(AgentSession s) throws Exception {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        String seen = "";
        while (System.currentTimeMillis() < deadline) {
            seen = s.exec("/bin/busybox", "ifconfig", "eth0").stdoutText();
            if (seen.contains("inet addr:10.0.2.15")) {
                return;
            }
            Thread.sleep(500);
        }
        fail("eth0 got no lease from passt: " + seen);
    }

    private static ExecResult ok(AgentSession s, String... argv) throws IOException {
        String[] full = new String[argv.length + 1];
        full[0] = "/bin/busybox";
        System.arraycopy(argv, 0, full, 1, argv.length);
        ExecResult r = s.exec(full);
        assertTrue(String.join(" ", argv) + ": " + r.status() + ", stderr " + r.stderrText(), !r.status().signaled() && r.status().code() == 0);
        return r;
    }

    /** GET {@code path} from the guest's httpd through the forwarded port, retrying while httpd starts. */
    private static byte[] get(String path) throws Exception {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        IOException last = null;
        while (System.currentTimeMillis() < deadline) {
            try (Socket c = new Socket(InetAddress.getLoopbackAddress(), FORWARD)) {
                c.setSoTimeout(60_000);
                c.getOutputStream().write(("GET " + path + " HTTP/1.0\r\nHost: guest\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                byte[] all = c.getInputStream().readAllBytes();
                int body = indexOf(all, "\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                if (body > 0 && new String(all, 0, 12, StandardCharsets.US_ASCII).contains(" 200")) {
                    return java.util.Arrays.copyOfRange(all, body + 4, all.length);
                }
                last = new IOException("answer: " + new String(all, 0, Math.min(all.length, 200), StandardCharsets.UTF_8));
            } catch (IOException e) {
                last = e;
            }
            Thread.sleep(500);
        }
        throw new AssertionError("no answer through forwarded port " + FORWARD, last);
    }

    /** A one-thread HTTP/1.0 server: /hello and /bulk. */
    private static void serve(ServerSocket server, byte[] bulk) {
        while (!server.isClosed()) {
            try (Socket c = server.accept()) {
                c.setSoTimeout(60_000);
                InputStream in = c.getInputStream();
                ByteArrayOutputStream request = new ByteArrayOutputStream();
                int b;
                while ((b = in.read()) >= 0 && request.size() < 4096) {
                    request.write(b);
                    if (request.toString(StandardCharsets.US_ASCII).endsWith("\r\n\r\n")) {
                        break;
                    }
                }
                String line = request.toString(StandardCharsets.US_ASCII);
                byte[] body = line.startsWith("GET /bulk") ? bulk : "hello from the host\n".getBytes(StandardCharsets.UTF_8);
                OutputStream out = c.getOutputStream();
                out.write(("HTTP/1.0 200 OK\r\nContent-Length: " + body.length + "\r\nConnection: close\r\n\r\n")
                        .getBytes(StandardCharsets.US_ASCII));
                out.write(body);
                out.flush();
            } catch (IOException e) {
                // the next request
            }
        }
    }

    private static int indexOf(byte[] a, byte[] b) {
        outer:
        for (int i = 0; i + b.length <= a.length; i++) {
            for (int j = 0; j < b.length; j++) {
                if (a[i + j] != b[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    private static String sha256(byte[] data) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    }

    private static double mibPerSecond(int mib, long since) {
        return mib / ((System.nanoTime() - since) / 1e9);
    }
}
