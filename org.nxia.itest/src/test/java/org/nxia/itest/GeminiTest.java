package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Hashtable;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.device.virtio.vsock.VsockEndpoint;
import org.nxia.device.virtio.vsock.VsockListener;
import org.nxia.device.virtio.vsock.VsockStream;
import org.nxia.gemini.api.CallContext;
import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.Marshalling;
import org.nxia.gemini.api.TokenInfo;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Ref;
import org.nxia.portal.api.Rights;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.cm.ConfigurationAdmin;

/** Gemini calls between a real guest (guests/gemini-echo.c) on /dev/kvm and the host, both ways. */
@RunWith(KvmRequirement.class)
@ExamReactorStrategy(PerClass.class)
public class GeminiTest {

    static final Duration T = Duration.ofSeconds(60);

    @Inject
    BundleContext context;

    @Inject
    PortalStructures structures;

    @Inject
    VmManager vms;

    @Inject
    Gemini gemini;

    @Inject
    CallPolicy policy;

    @Inject
    ConfigurationAdmin config;

    @Inject
    Portals portals;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    /** The host service the guest calls; registered by this test, after Gemini started. */
    public static final class ItestService {
        public long add(long a, long b) {
            return a + b;
        }

        public CapabilityToken grant(CallContext ctx) {
            return ctx.session().grant("itest", GeminiSession.READ, Duration.ofMinutes(5));
        }

        public String check(CallContext ctx) {
            ctx.require(GeminiSession.READ);
            return "token accepted";
        }

        /** Reads its argument in place when it came by reference. */
        public long sum(MemorySegment data) {
            return checksum(data);
        }

        public String how(Object v) {
            return v instanceof Ref ? "ref" : v instanceof byte[] ? "copy" : "other";
        }
    }

    /** gemini-echo's checksum: the length plus every little-endian u64 word plus each tail byte. */
    static long checksum(MemorySegment s) {
        long n = s.byteSize();
        long h = n;
        long i = 0;
        for (; i + 8 <= n; i += 8) {
            h += s.get(ValueLayout.JAVA_LONG_UNALIGNED, i);
        }
        for (; i < n; i++) {
            h += s.get(ValueLayout.JAVA_BYTE, i) & 0xff;
        }
        return h;
    }

    static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 7 + 3);
        }
        return b;
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + T.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                fail("timed out waiting for " + what);
            }
            Thread.sleep(20);
        }
    }

    @Test
    public void callsCrossTheBoundaryBothWaysAndDieWithTheVm() throws Exception {
        org.osgi.service.cm.Configuration manifest = config.createFactoryConfiguration("org.nxia.lsm.policy.manifest", "?");
        Hashtable<String, Object> props = new Hashtable<>();
        props.put("manifest", "profile gemini-itest\nallow out itest.*\nallow in calc.*\n");
        manifest.update(props);
        await("the manifest to load", () -> policy.manifests().containsKey("gemini-itest"));

        Hashtable<String, Object> sp = new Hashtable<>();
        sp.put(Gemini.SERVICE_PROPERTY, "itest");
        ServiceRegistration<?> reg = context.registerService(Object.class.getName(), new ItestService(), sp);
        VirtualMachine vm = vms.create(VmProfile.of(Path.of(System.getProperty("nxia.guest.images"), "gemini-echo.elf"))
                .withName("gemini-itest").withMemory(16 * VmProfile.MIB).withTimeout(T));
        try {
            vm.start();
            await("the guest to serve", () -> vm.console().contains("serving") || vm.result().isPresent());
            System.out.println("gemini-echo console:\n" + vm.console());
            assertTrue(vm.console(), vm.console().contains("itest.add: 42"));
            assertTrue(vm.console(), vm.console().contains("itest.check: token accepted"));
            assertTrue(vm.console(), vm.console().contains("itest.check forged: error 8"));
            assertTrue(vm.console(), vm.console().contains("net.open: error 7"));
            assertTrue(vm.console(), vm.console().contains("l2h ok"));
            assertTrue("the denial is audited", policy.audit(100).stream()
                    .anyMatch(a -> a.request().service().equals("net") && a.request().caller().equals("guest:" + vm.id())));

            GeminiSession session = gemini.sessionOfVm(vm.id()).orElseThrow();
            assertEquals("gemini-echo", session.peer());
            assertEquals(5L, session.call("calc", "add", T, 2L, 3L));
            long start = System.nanoTime();
            int n = 200;
            for (int i = 0; i < n; i++) {
                assertEquals((long) i, session.call("calc", "add", T, (long) i, 0L));
            }
            System.out.println("H->L calc.add round trip (nested KVM under TCG): " + (System.nanoTime() - start) / n / 1000 + " us");
            GeminiException denied = null;
            try {
                session.call("admin", "wipe", T);
            } catch (GeminiException e) {
                denied = e;
            }
            assertEquals(ErrorCode.DENIED, denied.code());
            List<TokenInfo> live = session.tokens().stream().filter(t -> !t.revoked()).toList(); // captured before the VM dies
            assertFalse("the guest's token is live", live.isEmpty());

            CompletableFuture<Object> dying = session.callAsync("calc", "die", List.of(), T);
            try {
                dying.get(30, TimeUnit.SECONDS);
                fail("calc.die returned");
            } catch (ExecutionException e) {
                GeminiException g = (GeminiException) e.getCause();
                assertEquals(ErrorCode.CLOSED, g.code());
                assertTrue(g.getMessage(), g.getMessage().contains("stopped"));
            }
            VmResult r = vm.await(T);
            assertEquals(7, r.exitStatus());
            assertFalse(session.isOpen());
            for (TokenInfo t : live) {
                assertFalse("token " + t.token() + " was revoked with its session (none left live to revoke)", session.revoke(t.token()));
            }
            assertTrue("the closed session holds no token", session.tokens().isEmpty());
            assertFalse(gemini.sessionOfVm(vm.id()).isPresent());
        } finally {
            vms.destroy(vm.id());
            reg.unregister();
            manifest.delete();
        }
    }

    /**
     * Large arguments by reference into the Portal region "gemini", both ways, and references
     * outside the region or stale from either side: a BAD_REF reply, the VM keeps running.
     */
    @Test
    public void largeArgumentsCrossByReferenceAndBadReferencesAreRefusedBothWays() throws Exception {
        org.osgi.service.cm.Configuration manifest = config.createFactoryConfiguration("org.nxia.lsm.policy.manifest", "?");
        Hashtable<String, Object> props = new Hashtable<>();
        props.put("manifest", "profile gemini-refs\nallow out itest.*\nallow in calc.*\n");
        manifest.update(props);
        await("the manifest to load", () -> policy.manifests().containsKey("gemini-refs"));
        Hashtable<String, Object> sp = new Hashtable<>();
        sp.put(Gemini.SERVICE_PROPERTY, "itest");
        ServiceRegistration<?> reg = context.registerService(Object.class.getName(), new ItestService(), sp);
        PortalRegion region = portals.create("gemini", 8 * VmProfile.MIB, "GeminiTest", Rights.RW, null);
        PortalArena hostView = structures.formatArena(region.segment(), 1 << 20);
        VirtualMachine vm = vms.create(VmProfile.of(Path.of(System.getProperty("nxia.guest.images"), "gemini-echo.elf"))
                .withName("gemini-refs").withMemory(16 * VmProfile.MIB).withTimeout(T)
                .withDevices(List.of(DeviceConfig.parse("portal:name=gemini,rights=rw"))));
        try {
            vm.start();
            await("the guest to serve", () -> vm.console().contains("serving") || vm.result().isPresent());
            System.out.println("gemini-echo console:\n" + vm.console());
            String console = vm.console();
            assertTrue(console, console.contains("region gemini bound"));
            assertTrue(console, console.contains("itest.sum ref: ok"));
            assertTrue("guest-originated stale reference: " + console, console.contains("itest.sum stale: error 15"));
            assertTrue("guest-originated reference outside the region: " + console, console.contains("itest.sum outside: error 15"));
            assertTrue("C AUTO above the threshold goes by reference: " + console, console.contains("itest.how big: ref"));
            assertTrue(console, console.contains("itest.how small: copy"));
            assertTrue(console, console.contains("itest.how small forced: ref"));
            assertTrue(console, console.contains("refs ok"));

            GeminiSession session = gemini.sessionOfVm(vm.id()).orElseThrow();
            assertEquals(Optional.of("gemini"), session.referenceRegion());
            byte[] mib = pattern(1 << 20);
            long expected = checksum(MemorySegment.ofArray(mib));
            assertEquals("a 1 MiB argument goes by reference (above the threshold, and larger than a frame)", "ref", session.call("calc", "how", T, (Object) mib));
            assertEquals(expected, session.call("calc", "sum", T, (Object) mib));
            assertEquals(expected, session.call("calc", "sum", Marshalling.REFERENCE, T, (Object) mib));
            byte[] small = pattern((int) Math.min(session.referenceThreshold() - 1, 30_000)); // below the threshold, fits a frame
            assertEquals("copy", session.call("calc", "how", T, (Object) small));
            assertEquals(checksum(MemorySegment.ofArray(small)), session.call("calc", "sum", Marshalling.COPY, T, (Object) small));
            assertEquals(checksum(MemorySegment.ofArray(small)), session.call("calc", "sum", Marshalling.REFERENCE, T, (Object) small));

            GeminiException outside = null;
            try {
                session.call("calc", "sum", T, new Ref(1L << 40, 16, 0));
            } catch (GeminiException e) {
                outside = e;
            }
            assertEquals("host-originated reference outside the region", ErrorCode.BAD_REF, outside.code());
            Ref stale = hostView.allocate(64);
            hostView.free(stale);
            GeminiException staleError = null;
            try {
                session.call("calc", "sum", T, stale);
            } catch (GeminiException e) {
                staleError = e;
            }
            assertEquals("host-originated stale reference", ErrorCode.BAD_REF, staleError.code());
            assertEquals("the session and the VM keep running", 5L, session.call("calc", "add", T, 2L, 3L));
            assertTrue(session.isOpen());
            assertFalse(vm.result().isPresent());
            session.close("test done");
            assertEquals(0, vm.await(T).exitStatus());
        } finally {
            vms.destroy(vm.id());
            portals.delete("gemini");
            reg.unregister();
            manifest.delete();
        }
    }

    /** The same protocol over a virtio-vsock stream (guests/gemini-vsock.c), the portable path: calls both ways. */
    @Test
    public void callsCrossOverVirtioVsock() throws Exception {
        org.osgi.service.cm.Configuration manifest = config.createFactoryConfiguration("org.nxia.lsm.policy.manifest", "?");
        Hashtable<String, Object> props = new Hashtable<>();
        props.put("manifest", "profile gemini-vsock\nallow out itest.*\nallow in calc.*\n");
        manifest.update(props);
        await("the manifest to load", () -> policy.manifests().containsKey("gemini-vsock"));
        Hashtable<String, Object> sp = new Hashtable<>();
        sp.put(Gemini.SERVICE_PROPERTY, "itest");
        ServiceRegistration<?> reg = context.registerService(Object.class.getName(), new ItestService(), sp);
        VirtualMachine vm = vms.create(VmProfile.of(Path.of(System.getProperty("nxia.guest.images"), "gemini-vsock.elf"))
                .withName("gemini-vsock").withMemory(16 * VmProfile.MIB).withTimeout(T)
                .withDevices(List.of(DeviceConfig.parse("virtio-vsock"))));
        try {
            VsockEndpoint endpoint = (VsockEndpoint) vm.devices().get(0);
            GeminiSession session;
            try (VsockListener listener = endpoint.listen(7000)) {
                vm.start();
                VsockStream stream = listener.accept(T);
                assertTrue("the guest connected\n" + vm.console(), stream != null);
                session = gemini.open(stream, "gemini-vsock", vm.id());
            }
            await("the guest to serve", () -> vm.console().contains("serving") || vm.result().isPresent());
            System.out.println("gemini-vsock console:\n" + vm.console());
            assertTrue(vm.console(), vm.console().contains("itest.add: 42"));
            assertEquals("gemini-vsock", session.peer());
            assertEquals(session, gemini.sessionOfVm(vm.id()).orElseThrow());
            long start = System.nanoTime();
            int n = 100;
            for (int i = 0; i < n; i++) {
                assertEquals((long) i + 3, session.call("calc", "add", T, (long) i, 3L));
            }
            System.out.println("H->L calc.add round trip over vsock (nested KVM under TCG): " + (System.nanoTime() - start) / n / 1000 + " us");
            GeminiException denied = null;
            try {
                session.call("admin", "wipe", T);
            } catch (GeminiException e) {
                denied = e;
            }
            assertEquals(ErrorCode.DENIED, denied.code());
            session.close("test done");
            VmResult r = vm.await(T);
            assertEquals(vm.console(), 0, r.exitStatus());
            assertTrue(vm.console(), vm.console().contains("closed after serving " + (n + 0) + " calls"));
        } finally {
            vms.destroy(vm.id());
            reg.unregister();
            manifest.delete();
        }
    }
}
