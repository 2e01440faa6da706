package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import javax.inject.Inject;

import org.junit.After;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.PortalMapping;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Ref;
import org.nxia.portal.api.Rights;
import org.nxia.portal.api.Ring;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceReference;

/**
 * Portal regions shared between the host and real micro-VMs (guest/guests/portal-ring.c).
 * In the kvm-rig the guests run emulated (nested KVM under TCG), so the message
 * count is {@link #MESSAGES} (system property nxia.portal.messages) rather than
 * the 10^6 the host-only JUnit tests of org.nxia.portal move.
 */
@RunWith(KvmRequirement.class)
@ExamReactorStrategy(PerClass.class)
public class PortalTest {

    static final int MESSAGES = Integer.getInteger("nxia.portal.messages", 50_000);
    static final long REGION = 256 * 1024;
    static final long FNV_START = 0xcbf29ce484222325L;

    static final int ECHO = 1, PRODUCE = 2, CONSUME = 3, WRITE = 4, ARENA = 5, ROUNDTRIP = 6;

    @Inject
    BundleContext context;

    @Inject
    PortalStructures structures;

    @Inject
    VmManager vms;

    @Inject
    Portals portals;

    private final List<String> regions = new ArrayList<>();

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @After
    public void cleanUp() {
        for (VirtualMachine vm : vms.list()) {
            vms.destroy(vm.id());
        }
        for (String r : regions) {
            portals.delete(r);
        }
    }

    private PortalRegion region(String name, Rights rights, Path file) {
        PortalRegion r = portals.create(name, REGION, "PortalTest", rights, file);
        regions.add(name);
        return r;
    }

    /** Ring 0 at offset 0 and ring 1 at the middle, both SPSC or both MPMC. */
    private Ring[] formatRings(PortalRegion r, boolean mpmc) {
        MemorySegment s = r.segment();
        long half = s.byteSize() / 2;
        return new Ring[] {format(s.asSlice(0, half), mpmc), format(s.asSlice(half, half), mpmc)};
    }

    private Ring format(MemorySegment s, boolean mpmc) {
        return mpmc ? structures.formatMpmc(s, 512, 128) : structures.formatSpsc(s, 64 * 1024);
    }

    private VmProfile guest(int mode, long count, String... portalsGranted) {
        List<DeviceConfig> devices = new ArrayList<>();
        for (String grant : portalsGranted) {
            devices.add(DeviceConfig.parse("portal:" + grant));
        }
        return VmProfile.of(Path.of(System.getProperty("nxia.guest.images"), "portal-ring.elf"))
                .withMemory(4 * VmProfile.MIB).withTimeout(Duration.ofSeconds(120))
                .withArg(mode | (count << 8)).withDevices(devices);
    }

    /** Message i as the guest makes it: 8 + (i * 7) % 57 bytes, i then (i * 31 + j * 7). */
    static byte[] message(long i) {
        byte[] m = new byte[8 + (int) ((i * 7) % 57)];
        ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putLong(i);
        for (int j = 8; j < m.length; j++) {
            m[j] = (byte) (i * 31 + j * 7);
        }
        return m;
    }

    static long fnv(long h, byte[] bytes, int length) {
        for (int i = 0; i < length; i++) {
            h = (h ^ (bytes[i] & 0xff)) * 0x100000001b3L;
        }
        return h;
    }

    static long expectedSum(long count) {
        long h = FNV_START;
        for (long i = 0; i < count; i++) {
            byte[] m = message(i);
            h = fnv(h, m, m.length);
        }
        return h;
    }

    private VmResult await(VirtualMachine vm) throws Exception {
        VmResult r = vm.await(Duration.ofSeconds(150));
        System.out.println("PortalTest " + vm.id() + ": " + r.reason() + " " + r.exitStatus() + " in "
                + r.runTime().toMillis() + " ms: " + r.detail() + " console: " + vm.console().strip());
        return r;
    }

    private long[] result(VmResult r) {
        ByteBuffer b = ByteBuffer.wrap(r.output()).order(ByteOrder.LITTLE_ENDIAN);
        return new long[] {b.getLong(), b.getLong()};
    }

    private PortalMapping mapping(String vmId, String region) {
        return portals.mappings().stream().filter(m -> m.vmId().equals(vmId) && m.region().equals(region))
                .findFirst().orElseThrow();
    }

    // ---- host <-> guest ----

    @Test
    public void hostToGuestAndBackThroughSpsc() throws Exception {
        hostEcho("h2g-spsc", false);
    }

    @Test
    public void hostToGuestAndBackThroughMpmc() throws Exception {
        hostEcho("h2g-mpmc", true);
    }

    /** The host sends MESSAGES through ring 0; the guest echoes them into ring 1; the host checks every byte. */
    private void hostEcho(String name, boolean mpmc) throws Exception {
        PortalRegion r = region(name, Rights.RW, null);
        Ring[] rings = formatRings(r, mpmc);
        VirtualMachine vm = vms.create(guest(ECHO, 0, "name=" + name + ",rights=rw"));
        PortalMapping m = mapping(vm.id(), name);
        assertTrue(m.mapped());
        vm.start();
        long start = System.nanoTime();
        MemorySegment buffer = Arena.ofAuto().allocate(4096);
        byte[] got = new byte[4096];
        long sent = 0;
        long received = 0;
        long sum = FNV_START;
        long waits = 0;
        while (received <= MESSAGES) {
            if (sent <= MESSAGES) {
                byte[] msg = sent == MESSAGES ? new byte[0] : message(sent);
                if (rings[0].offer(MemorySegment.ofArray(msg))) {
                    sent++;
                }
            }
            long seen = m.rings();
            int len = rings[1].poll(buffer);
            if (len < 0) {
                if (sent > MESSAGES) { // nothing left to send: block on the doorbell
                    m.awaitRing(seen, Duration.ofMillis(5));
                    waits++;
                }
                continue;
            }
            if (received == MESSAGES) {
                assertEquals("the terminator comes back empty", 0, len);
                received++;
                break;
            }
            MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, 0, got, 0, len);
            byte[] want = message(received);
            assertEquals("length of echo " + received, want.length, len);
            sum = fnv(sum, got, len);
            received++;
        }
        long nanos = System.nanoTime() - start;
        VmResult result = await(vm);
        assertEquals(result.detail(), VmResult.Reason.EXITED, result.reason());
        assertEquals(0, result.exitStatus());
        assertEquals("checksum of the echoes", expectedSum(MESSAGES), sum);
        assertTrue("the guest rang the doorbell", m.rings() > 0);
        System.out.printf("PortalTest %s: %d messages host->guest->host in %d ms (%.1f us round trip, emulated guest),"
                + " %d doorbell rings, %d waits%n", name, MESSAGES, nanos / 1_000_000, nanos / 1000.0 / MESSAGES,
                m.rings(), waits);
    }

    // ---- guest <-> guest ----

    @Test
    public void guestToGuestThroughSpsc() throws Exception {
        guestToGuest("g2g-spsc", false);
    }

    @Test
    public void guestToGuestThroughMpmc() throws Exception {
        guestToGuest("g2g-mpmc", true);
    }

    private void guestToGuest(String name, boolean mpmc) throws Exception {
        PortalRegion r = region(name, Rights.RW, null);
        formatRings(r, mpmc);
        VirtualMachine producer = vms.create(guest(PRODUCE, MESSAGES, "name=" + name));
        VirtualMachine consumer = vms.create(guest(CONSUME, 0, "name=" + name));
        consumer.start();
        producer.start();
        VmResult p = await(producer);
        VmResult c = await(consumer);
        assertEquals(p.detail(), VmResult.Reason.EXITED, p.reason());
        assertEquals(c.detail(), VmResult.Reason.EXITED, c.reason());
        long want = expectedSum(MESSAGES);
        assertEquals(MESSAGES, result(p)[0]);
        assertEquals(want, result(p)[1]);
        assertEquals("messages the consumer took", MESSAGES, result(c)[0]);
        assertEquals("the consumer's checksum", want, result(c)[1]);
        System.out.printf("PortalTest %s: %d messages guest->guest in %d ms (emulated guests)%n", name, MESSAGES,
                Math.max(p.runTime().toMillis(), c.runTime().toMillis()));
    }

    /** Two VMs share one region both ways: A sends on ring 0 and checks echoes on ring 1, B echoes; B sees it at another address. */
    @Test
    public void twoVmsShareOneRegionBothWays() throws Exception {
        region("spacer", Rights.RW, null);
        PortalRegion r = region("both", Rights.RW, null);
        formatRings(r, true);
        VirtualMachine a = vms.create(guest(ROUNDTRIP, MESSAGES, "name=both").withInput("both".getBytes(StandardCharsets.US_ASCII)));
        VirtualMachine b = vms.create(guest(ECHO, 0, "name=spacer", "name=both").withInput("both".getBytes(StandardCharsets.US_ASCII)));
        assertNotEquals("one backing, a different guest address in each VM",
                mapping(a.id(), "both").gpa(), mapping(b.id(), "both").gpa());
        b.start();
        a.start();
        VmResult ra = await(a);
        VmResult rb = await(b);
        assertEquals(ra.detail(), VmResult.Reason.EXITED, ra.reason());
        assertEquals(rb.detail(), VmResult.Reason.EXITED, rb.reason());
        assertEquals(MESSAGES, result(ra)[0]);
        assertEquals(expectedSum(MESSAGES), result(ra)[1]);
    }

    // ---- rights and capabilities ----

    @Test
    public void guestWriteToReadOnlyRegionStopsTheVm() throws Exception {
        PortalRegion r = region("ro", Rights.RW, null);
        r.segment().set(ValueLayout.JAVA_LONG, 0, 41);
        VirtualMachine vm = vms.create(guest(WRITE, 0, "name=ro,rights=ro"));
        vm.start();
        VmResult result = await(vm);
        assertEquals(VmResult.Reason.GUEST_ERROR, result.reason());
        assertTrue(result.detail(), result.detail().contains("read-only portal 'ro'"));
        assertEquals("the write did not land", 41, r.segment().get(ValueLayout.JAVA_LONG, 0));
    }

    @Test
    public void guestWriteToReadWriteRegionLands() throws Exception {
        PortalRegion r = region("rw", Rights.RW, null);
        r.segment().set(ValueLayout.JAVA_LONG, 0, 41);
        VirtualMachine vm = vms.create(guest(WRITE, 0, "name=rw,rights=rw"));
        vm.start();
        VmResult result = await(vm);
        assertEquals(result.detail(), VmResult.Reason.EXITED, result.reason());
        assertEquals(42, r.segment().get(ValueLayout.JAVA_LONG, 0));
    }

    @Test
    public void vmWithoutTheCapabilityIsRefused() throws Exception {
        region("cap", Rights.RO, null);
        VirtualMachine plain = vms.create(guest(WRITE, 0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> portals.map(plain.id(), "cap"));
        assertTrue(e.getMessage(), e.getMessage().contains("no capability"));
        // A grant above the region's rights is refused when the VM is made.
        IllegalArgumentException rw = assertThrows(IllegalArgumentException.class, () -> vms.create(guest(WRITE, 0, "name=cap,rights=rw")));
        assertTrue(rw.getMessage(), rw.getMessage().contains("at most ro"));
        // Unmap and map again through the service the portal:* commands use.
        VirtualMachine granted = vms.create(guest(WRITE, 0, "name=cap,rights=ro"));
        assertFalse(portals.unmap(granted.id(), "cap").mapped());
        assertTrue(portals.map(granted.id(), "cap").mapped());
        IllegalStateException inUse = assertThrows(IllegalStateException.class, () -> portals.delete("cap"));
        assertTrue(inUse.getMessage(), inUse.getMessage().contains("is mapped into " + granted.id()));
    }

    // ---- bounded references ----

    @Test
    public void staleAndForgedRefsAreRefusedByHostAndGuest() throws Exception {
        PortalRegion r = region("arena", Rights.RW, null);
        PortalArena arena = structures.formatArena(r.segment(), 4096);
        Ref live = arena.allocate(100);
        arena.deref(live).set(ValueLayout.JAVA_LONG, 0, 0x1122334455667788L);
        Ref freed = arena.allocate(100);
        arena.free(freed);
        Ref pastEnd = new Ref(r.size() + 4096, 8, 0);
        Ref overflow = new Ref(live.offset(), Long.MAX_VALUE, live.generation());
        Ref misaligned = new Ref(live.offset() + 8, 8, live.generation());
        Ref[] refs = {live, freed, pastEnd, overflow, misaligned};
        for (int i = 1; i < refs.length; i++) {
            Ref bad = refs[i];
            assertThrows("host deref of " + bad, PortalException.class, () -> arena.deref(bad));
        }
        ByteBuffer input = ByteBuffer.allocate(24 * refs.length).order(ByteOrder.LITTLE_ENDIAN);
        for (Ref ref : refs) {
            input.putLong(ref.offset()).putLong(ref.length()).putInt(ref.generation()).putInt(0);
        }
        VirtualMachine vm = vms.create(guest(ARENA, 0, "name=arena,rights=ro").withInput(input.array()));
        vm.start();
        VmResult result = await(vm);
        assertEquals(result.detail(), VmResult.Reason.EXITED, result.reason());
        ByteBuffer out = ByteBuffer.wrap(result.output()).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals("the guest reads the live block", 0x1122334455667788L, out.getLong());
        for (int i = 1; i < refs.length; i++) {
            assertEquals("guest deref of " + refs[i], -4, out.getLong()); // NXIA_PORTAL_ESTALE
        }
    }

    // ---- persistence ----

    @Test
    public void fileBackedRegionKeepsItsContentAcrossVmAndPortalRestarts() throws Exception {
        Path file = Files.createTempFile("nxia-portal-test", ".region");
        Files.delete(file);
        int count = 500;
        try {
            PortalRegion r = region("persist", Rights.RW, file);
            formatRings(r, false);
            VirtualMachine producer = vms.create(guest(PRODUCE, count, "name=persist"));
            producer.start();
            VmResult p = await(producer);
            assertEquals(p.detail(), VmResult.Reason.EXITED, p.reason());
            vms.destroy(producer.id());

            // Restart the Portal bundle: every region is unmapped from the host, only the file remains.
            Bundle portal = bundle("org.nxia.portal");
            portal.stop();
            portal.start();
            portals = service(Portals.class);
            regions.clear();
            region("persist", Rights.RW, file);

            VirtualMachine consumer = vms.create(guest(CONSUME, 0, "name=persist"));
            consumer.start();
            VmResult c = await(consumer);
            assertEquals(c.detail(), VmResult.Reason.EXITED, c.reason());
            assertEquals(count, result(c)[0]);
            assertEquals(expectedSum(count), result(c)[1]);
        } finally {
            cleanUp();
            regions.clear();
            Files.deleteIfExists(file);
        }
    }

    private Bundle bundle(String name) {
        for (Bundle b : context.getBundles()) {
            if (b.getSymbolicName().equals(name)) {
                return b;
            }
        }
        throw new AssertionError(name + " is not installed");
    }

    private <T> T service(Class<T> type) throws InterruptedException {
        for (int i = 0; i < 100; i++) {
            ServiceReference<T> ref = context.getServiceReference(type);
            if (ref != null) {
                return context.getService(ref);
            }
            Thread.sleep(50);
        }
        throw new AssertionError(type.getName() + " did not come back");
    }
}
