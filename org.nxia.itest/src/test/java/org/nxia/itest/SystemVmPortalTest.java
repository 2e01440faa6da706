package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Hashtable;
import java.util.List;
import java.util.concurrent.locks.LockSupport;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Rights;
import org.nxia.portal.api.Ring;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.cm.ConfigurationAdmin;

/**
 * A Portal region in Linux processes (issue 13 §3): shown with virtio-pmem's dax=true, the
 * kernel makes it /dev/dax0.0 from the info block the VMM wrote, the agent links it by name,
 * and nxia-portal (libnxia) maps it in place: what the host wrote is read with no copy and no
 * flush, what the process writes is in the host's segment at once, and an SPSC ring pair in
 * the region carries messages both ways between a host thread and a Linux process.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsKernel
@ExamReactorStrategy(PerClass.class)
public class SystemVmPortalTest {

    static final long MIB = 1L << 20;
    static final int MESSAGES = 200;

    @Inject
    SystemVms systemVms;

    @Inject
    Portals portals;

    @Inject
    PortalStructures structures;

    @Inject
    Gemini gemini;

    @Inject
    CallPolicy policy;

    @Inject
    ConfigurationAdmin config;

    @Inject
    BundleContext context;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void aLinuxProcessMapsTheRegionInPlaceAndTalksToTheHostThroughItsRings() throws Exception {
        PortalRegion region = portals.create("px", 8 * MIB, "SystemVmPortalTest", Rights.RW, null);
        MemorySegment host = region.segment();
        fill(host.asSlice(4 * MIB, MIB), 7);
        String hostSum = sha256(host.asSlice(4 * MIB, MIB));
        Ring toGuest = structures.formatSpsc(host.asSlice(3 * MIB, MIB / 2), 64 * 1024);
        Ring fromGuest = structures.formatSpsc(host.asSlice(3 * MIB + MIB / 2, MIB / 2), 64 * 1024);
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withName("sysvm-portal").withVcpus(1).withMemory(256L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT)
                .withDevices(List.of(DeviceConfig.parse("portal:name=px"), DeviceConfig.parse("virtio-pmem:region=px,dax=true")));
        try (SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT)) {
            AgentSession s = svm.session();
            ExecResult list = sh(s, "ls -l /run/nxia/portal /dev/dax* ; /usr/bin/nxia-portal list");
            System.out.println("SystemVmPortalTest: the guest says:\n" + list.stdoutText());
            assertTrue(list.stdoutText(), list.stdoutText().matches("(?s).*px\\s+/dev/dax0\\.0\\s+mapped from 0x200000, 6291456 bytes.*"));

            ExecResult sum = sh(s, "/usr/bin/nxia-portal sum px 4M 1M");
            assertEquals("the process reads the host's bytes in place", hostSum, sum.stdoutText().strip());

            sh(s, "/usr/bin/nxia-portal fill px 6M 1M 9");
            MemorySegment expected = MemorySegment.ofArray(new byte[(int) MIB]);
            fill(expected, 9);
            assertEquals("the host sees the process's stores with no flush", -1L, host.asSlice(6 * MIB, MIB).mismatch(expected));

            ExecResult refused = s.exec("/usr/bin/nxia-portal", "sum", "px", "1M", "4K");
            assertEquals(refused.stderrText(), 1, refused.status().code());
            assertTrue(refused.stderrText(), refused.stderrText().contains("not in region px's mapping [0x200000, 0x800000)"));

            sh(s, "/usr/bin/nxia-portal echo px 3M 0x380000 20000 > /tmp/echo.log 2>&1 &");
            long t0 = System.nanoTime();
            MemorySegment into = MemorySegment.ofArray(new byte[4096]);
            for (int i = 0; i <= MESSAGES; i++) {
                byte[] msg = i == MESSAGES ? new byte[0] : ("message " + i).getBytes(StandardCharsets.US_ASCII);
                long deadline = System.nanoTime() + 30_000_000_000L;
                while (!toGuest.offer(MemorySegment.ofArray(msg))) {
                    waitOrFail(deadline, "the ring to the guest stayed full at message " + i, s);
                }
                int n;
                while ((n = fromGuest.poll(into)) < 0) {
                    waitOrFail(deadline, "no echo of message " + i, s);
                }
                assertEquals(new String(msg, StandardCharsets.US_ASCII),
                        new String(into.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII));
            }
            long perMessageNs = (System.nanoTime() - t0) / (MESSAGES + 1);
            System.out.printf("SystemVmPortalTest: %d messages echoed through the region's rings, %.1f us a round trip%n",
                    MESSAGES + 1, perMessageNs / 1000.0);
            ExecResult log = sh(s, "sleep 0.2; cat /tmp/echo.log");
            assertEquals("echoed " + MESSAGES + " messages\n", log.stdoutText());

            // the doorbell: a process sleeps in poll(2) on the region's count until the host rings
            sh(s, "/usr/bin/nxia-portal wait px 60000 > /tmp/wait.log 2>&1 &");
            String waiting = awaitGuestLog(s, "/tmp/wait.log", "waiting");
            portals.ring(svm.vm().id(), "px");
            String woken = awaitGuestLog(s, "/tmp/wait.log", "doorbell ");
            System.out.println("SystemVmPortalTest: the waiting process says: " + woken.strip().replace('\n', ';'));
            assertTrue(waiting, woken.matches("(?s)waiting \\(doorbell (\\d+)\\)\ndoorbell (\\d+)\n"));
        } finally {
            portals.delete("px");
        }
    }

    /** The host service for large arguments: SHA-256 of the bytes, read where they are. */
    public static final class Digest {
        volatile boolean inPlace;

        public String sha256(MemorySegment data) throws Exception {
            inPlace = data.isNative() && data.isReadOnly();   // a block of the region, not a copy on the heap
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(data.asByteBuffer());
            return HexFormat.of().formatHex(md.digest());
        }
    }

    /**
     * 64 MiB each way through the agent's broker as a reference into region "gemini" (issue 13 §3):
     * nxia-call passes a file to a host service, the host passes bytes to a program nxia-serve
     * runs; both sides' SHA-256 agree, and nothing that large fits a frame, so only a reference
     * could have carried it.
     */
    @Test
    public void sixtyFourMibCrossTheBrokerByReferenceBothWays() throws Exception {
        long mib64 = 64 * MIB;
        portals.create("gemini", Portals.LINUX_DAX_OFFSET + 2 * mib64 + 2 * MIB, "SystemVmPortalTest", Rights.RW, null);
        Digest digest = new Digest();
        Hashtable<String, Object> sp = new Hashtable<>();
        sp.put(Gemini.SERVICE_PROPERTY, "digest");
        ServiceRegistration<?> reg = context.registerService(Object.class.getName(), digest, sp);
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withName("sysvm-refs").withVcpus(1).withMemory(512L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT)
                .withDevices(List.of(DeviceConfig.parse("portal:name=gemini"), DeviceConfig.parse("virtio-pmem:region=gemini,dax=true")));
        try (Manifests m = Manifests.load(config, policy, "sysvm-refs", "allow out digest.*\nallow in sum.*\n");
             SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT)) {
            AgentSession s = svm.session();
            String guestSum = sh(s, "head -c " + mib64 + " /dev/urandom > /tmp/big && sha256sum /tmp/big").stdoutText().split("\\s+")[0];
            long t0 = System.nanoTime();
            ExecResult l2h = s.exec("/usr/bin/nxia-call", "-t", "300", "digest", "sha256", "@/tmp/big");
            long l2hNs = System.nanoTime() - t0;
            assertEquals(l2h.stderrText(), 0, l2h.status().code());
            assertEquals("the host read the process's 64 MiB", guestSum, l2h.stdoutText().strip());
            assertTrue("read in place in the region", digest.inPlace);

            sh(s, "/usr/bin/nxia-serve sum it sha256sum > /tmp/serve.log 2>&1 &");
            long end = System.nanoTime() + 30_000_000_000L;
            while (!s.exec("/bin/busybox", "cat", "/tmp/serve.log").stdoutText().contains("serving") && System.nanoTime() < end) {
                Thread.sleep(50);
            }
            byte[] big = new byte[(int) mib64];
            new java.util.Random(13).nextBytes(big);
            GeminiSession session = gemini.sessionOfVm(svm.vm().id()).orElseThrow();
            t0 = System.nanoTime();
            byte[] answer = (byte[]) session.call("sum", "it", Duration.ofSeconds(300), big);
            long h2lNs = System.nanoTime() - t0;
            assertEquals("the program read the host's 64 MiB", sha256(MemorySegment.ofArray(big)) + "  -",
                    new String(answer, StandardCharsets.US_ASCII).strip());
            System.out.printf("SystemVmPortalTest: 64 MiB by reference, with the peer's SHA-256 over it: L->H %.2f s, H->L %.2f s%n",
                    l2hNs / 1e9, h2lNs / 1e9);
        } finally {
            reg.unregister();
            portals.delete("gemini");
        }
    }

    /** The guest file's text once it holds {@code what}; fails after 30 s. */
    private static String awaitGuestLog(AgentSession s, String file, String what) throws Exception {
        long end = System.nanoTime() + 30_000_000_000L;
        String text = "";
        while (System.nanoTime() < end) {
            text = s.exec("/bin/busybox", "cat", file).stdoutText();
            if (text.contains(what)) {
                return text;
            }
            Thread.sleep(50);
        }
        fail(file + " never said '" + what + "': " + text);
        return text;
    }

    private static void waitOrFail(long deadline, String what, AgentSession s) throws Exception {
        if (System.nanoTime() > deadline) {
            fail(what + "; the guest's echo: " + s.exec("/bin/busybox", "cat", "/tmp/echo.log").stdoutText());
        }
        LockSupport.parkNanos(20_000);
    }

    /** nxia-portal fill's pattern: 64-bit LCG words from the seed, little-endian. */
    static void fill(MemorySegment s, long seed) {
        long x = seed;
        for (long i = 0; i < s.byteSize(); i += 8) {
            x = x * 6364136223846793005L + 1442695040888963407L;
            s.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i, x);
        }
    }

    private static String sha256(MemorySegment s) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.toArray(ValueLayout.JAVA_BYTE)));
    }

    private static ExecResult sh(AgentSession s, String script) throws IOException {
        ExecResult r = s.exec("/bin/busybox", "sh", "-c", script);
        assertEquals(script + ": " + r.stderrText() + r.stdoutText(), 0, r.status().code());
        return r;
    }
}
