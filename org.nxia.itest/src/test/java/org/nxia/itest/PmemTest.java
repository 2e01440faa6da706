package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.control.api.SystemVms;
import org.nxia.control.api.ExecResult;
import org.nxia.portal.api.DoorbellLink;
import org.nxia.portal.api.PortalMapping;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Rights;
import org.nxia.portal.api.Ring;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * A Portal region as the System VM's /dev/pmem0 (virtio-pmem): the guest reads
 * what the host wrote and the host sees what the guest wrote, through one
 * memory slot; a flush reaches the backing file. Then a micro-VM's doorbell
 * for the same region is connected to the Linux VM's pmem interrupt line and
 * its rings show up in the guest's /proc/interrupts.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsKernel
@ExamReactorStrategy(PerClass.class)
public class PmemTest {

    static final long REGION = 2L << 20;
    static final int RINGS = 20;

    @Inject
    VmManager vms;

    @Inject
    PortalStructures structures;

    @Inject
    SystemVms systemVms;

    @Inject
    Portals portals;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void theGuestSeesTheRegionAsPmemAndAnotherVmsDoorbellInterruptsIt() throws Exception {
        Path dir = Files.createTempDirectory("nxia-pmem");
        PortalRegion region = portals.create("pmem", REGION, "PmemTest", Rights.RW, dir.resolve("pmem.img"));
        MemorySegment host = region.segment();
        for (long i = 0; i < REGION; i += 8) {
            host.set(ValueLayout.JAVA_LONG, i, i * 0x9e37_79b9_7f4a_7c15L + 1);
        }
        byte[] first64k = host.asSlice(0, 65536).toArray(ValueLayout.JAVA_BYTE);
        String expected = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(first64k));
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(1).withMemory(256L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT)
                .withDevices(List.of(DeviceConfig.parse("portal:name=pmem"), DeviceConfig.parse("virtio-pmem:region=pmem")));
        try (SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT)) {
            VirtualMachine linux = svm.vm();
            AgentSession s = svm.session();
            PortalMapping grant = portals.mappings().stream().filter(m -> m.vmId().equals(linux.id())).findFirst().orElseThrow();
            System.out.printf("PmemTest: pmem at 0x%x, agent ready after %d ms%n", grant.gpa(), svm.readyAfter().toMillis());
            ExecResult dmesg = s.exec("/bin/busybox", "sh", "-c", "dmesg | grep -i -E 'pmem|nd_|virtio' ; ls -l /dev/pmem*");
            System.out.println("PmemTest: guest kernel says:\n" + dmesg.stdoutText() + dmesg.stderrText());

            ExecResult read = sh(s, "dd if=/dev/pmem0 bs=4096 count=16 2>/dev/null | sha256sum");
            assertEquals("the guest's /dev/pmem0 holds the host's bytes", expected, read.stdoutText().split("\\s+")[0]);

            ExecResult write = sh(s, "echo -n nxia-pmem-guest-write | dd of=/dev/pmem0 bs=4096 seek=32 conv=sync,fsync 2>&1");
            assertEquals("dd: " + write.stdoutText(), 0, write.status().code());
            byte[] seen = host.asSlice(32 * 4096, 22).toArray(ValueLayout.JAVA_BYTE);
            assertEquals("the host sees the guest's write in the region", "nxia-pmem-guest-write\0", new String(seen, StandardCharsets.US_ASCII));
            String state = String.valueOf(linux.devices().stream().filter(d -> d.type().equals("virtio-pmem"))
                    .findFirst().orElseThrow().state());
            System.out.println("PmemTest: pmem device " + state);
            assertTrue("the fsync reached the device as a FLUSH: " + state, state.matches(".*flushes=[1-9].*"));
            byte[] onDisk = Files.readAllBytes(dir.resolve("pmem.img"));
            assertEquals("the file has the guest's write", 'n', onDisk[32 * 4096]);

            interVmDoorbell(s, linux);
            savedWithTheRegion(s, linux, grant.gpa(), dir.resolve("pmem.img"), host);
        } finally {
            portals.delete("pmem");
        }
    }

    /**
     * Issue 15: the System VM saved with its region: the agent's quiesce flushes /dev/pmem0 (one
     * more FLUSH at the device), and the snapshot holds the region by reference, where the guest
     * saw it: its file, and the SHA-256 of the content with the guest's write; the VM runs on.
     */
    private void savedWithTheRegion(AgentSession s, VirtualMachine linux, long gpa, Path file, MemorySegment host) throws Exception {
        long before = flushes(linux);
        SystemVmSnapshot saved = systemVms.snapshot(linux.id());
        assertTrue("the quiesce flushed the pmem disk: " + before + " -> " + flushes(linux), flushes(linux) > before);
        VmSnapshot.SavedPortal region = saved.vm().portals().stream().filter(p -> p.name().equals("pmem")).findFirst()
                .orElseThrow(() -> new AssertionError("no region 'pmem' in the snapshot: " + saved.vm().portals()));
        assertEquals(gpa, region.gpa());
        assertTrue("a file-backed region is saved by reference: " + region, region instanceof VmSnapshot.PortalFile);
        VmSnapshot.PortalFile byReference = (VmSnapshot.PortalFile) region;
        assertEquals(file.toAbsolutePath(), byReference.file());
        assertEquals('n', host.get(ValueLayout.JAVA_BYTE, 32 * 4096));
        assertTrue("the saved digest is of the content with the guest's write", byReference.holds(host));
        assertEquals("no copy of it in the snapshot", 0, saved.vm().portalBytes());
        assertEquals("the VM runs on", 0, sh(s, "true").status().code());
        System.out.printf("PmemTest: saved with region pmem (%d KiB) at 0x%x by reference to %s; flushes %d -> %d%n", region.size() >> 10,
                gpa, file, before, flushes(linux));
    }

    private static long flushes(VirtualMachine vm) {
        String state = String.valueOf(vm.devices().stream().filter(d -> d.type().equals("virtio-pmem")).findFirst().orElseThrow().state());
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("flushes=(\\d+)").matcher(state);
        assertTrue(state, m.find());
        return Long.parseLong(m.group(1));
    }

    /** A micro-VM echoes RINGS messages and rings after each; the rings become interrupts in the Linux guest. */
    private void interVmDoorbell(AgentSession s, VirtualMachine linux) throws Exception {
        long fdsBefore = openFds();
        PortalRegion region = portals.find("pmem").orElseThrow();
        long half = REGION / 2;
        Ring in = structures.formatSpsc(region.segment().asSlice(0, half), 64 * 1024);
        Ring out = structures.formatSpsc(region.segment().asSlice(half, half), 64 * 1024);
        VirtualMachine micro = vms.create(VmProfile.of(Path.of(System.getProperty("nxia.guest.images"), "portal-ring.elf"))
                .withMemory(4 * VmProfile.MIB).withTimeout(Duration.ofSeconds(120)).withArg(1)   // echo, ring when dry
                .withDevices(List.of(DeviceConfig.parse("portal:name=pmem"))));
        try {
            DoorbellLink link = portals.connect(micro.id(), linux.id(), "pmem");
            long before = interrupts(s, link.gsi());
            PortalMapping microGrant = portals.mappings().stream().filter(m -> m.vmId().equals(micro.id())).findFirst().orElseThrow();
            micro.start();
            MemorySegment into = MemorySegment.ofArray(new long[512]);
            for (int i = 0; i <= RINGS; i++) {
                byte[] msg = i == RINGS ? new byte[0] : ("ring " + i).getBytes(StandardCharsets.US_ASCII);
                while (!in.offer(MemorySegment.ofArray(msg))) {
                    Thread.onSpinWait();
                }
                long t0 = System.nanoTime();
                while (out.poll(into) < 0) {
                    if (System.nanoTime() - t0 > 60_000_000_000L) {
                        fail("the micro-VM did not echo message " + i + ": " + micro.console());
                    }
                    Thread.sleep(1);
                }
                // The next message waits until the guest took this ring: rings that arrive while an
                // earlier one is still pending merge into one interrupt (docs/linux-vm.md), so only then
                // must each ring be exactly one interrupt.
                awaitInterrupts(s, link.gsi(), before + i + 1, "ring " + (i + 1));
            }
            VmResult r = micro.await(Duration.ofSeconds(60));
            assertTrue("the echo guest ended well: " + r + " " + micro.console(), r.succeeded());
            long after = interrupts(s, link.gsi());
            long javaRings = microGrant.rings();
            System.out.printf("PmemTest: %s -> %s on GSI %d %s: guest interrupts %d -> %d for %d rings; rings through the VMM: %d%n",
                    micro.id(), linux.id(), link.gsi(), link.inHypervisor() ? "in the hypervisor" : "through the VMM",
                    before, after, RINGS + 1, javaRings);
            assertEquals("the Linux guest took each of the micro-VM's rings as one interrupt", RINGS + 1, after - before);
            assertEquals(link.inHypervisor() ? "no ring went through the VMM" : "the VMM forwarded every ring",
                    link.inHypervisor() ? 0 : RINGS + 1, javaRings);
        } finally {
            vms.destroy(micro.id());
        }
        assertTrue("the link went with the micro-VM", portals.links().isEmpty());
        assertEquals("no descriptor left open by the link or the micro-VM", fdsBefore, openFds());
    }

    /** Waits until the guest counted {@code expected} interrupts on {@code gsi}; more than that fails (one ring, one interrupt). */
    private static void awaitInterrupts(AgentSession s, int gsi, long expected, String ring) throws Exception {
        long deadline = System.nanoTime() + 60_000_000_000L;
        long counted;
        while ((counted = interrupts(s, gsi)) < expected) {
            if (System.nanoTime() > deadline) {
                fail(ring + " never reached the guest: " + counted + " interrupts on IRQ " + gsi + ", " + expected + " expected");
            }
            Thread.sleep(10);
        }
        assertEquals(ring + " is one interrupt in the guest", expected, counted);
    }

    private static ExecResult sh(AgentSession s, String script) throws IOException {
        ExecResult r = s.exec("/bin/busybox", "sh", "-c", script);
        assertEquals(script + ": " + r.stderrText(), 0, r.status().code());
        return r;
    }

    /**
     * The guest's count for IO-APIC pin {@code gsi} in /proc/interrupts (summed over CPUs), found by
     * its pin: Linux numbers the IRQ itself as the GSI without ACPI, and from 24 on with it.
     */
    private static long interrupts(AgentSession s, int gsi) throws IOException {
        String text = sh(s, "cat /proc/interrupts").stdoutText();
        Matcher m = Pattern.compile("(?m)^\\s*\\d+:((?:\\s+\\d+)+)\\s+IO-APIC\\s+" + gsi + "-").matcher(text);
        if (!m.find()) {
            fail("no IRQ " + gsi + " in the guest's /proc/interrupts:\n" + text);
        }
        long sum = 0;
        for (String n : m.group(1).trim().split("\\s+")) {
            sum += Long.parseLong(n);
        }
        return sum;
    }

    private static long openFds() throws IOException {
        try (var list = Files.list(Path.of("/proc/self/fd"))) {
            return list.count();
        }
    }
}
