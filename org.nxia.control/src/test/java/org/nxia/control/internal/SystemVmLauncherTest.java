package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.reflect.Proxy;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.control.api.Confinement;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmResult;
import org.nxia.lsm.policy.api.GuestConfinement;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;

/**
 * The launcher without KVM: a fake VMM whose "VM" prints the ready line at once
 * and whose vsock device is a Unix socket server that either goes silent after
 * CONNECT or hands the stream to the real agent binary, started with the secret
 * file the launcher appended to the initramfs.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SystemVmLauncherTest {

    @TempDir
    Path dir;

    private final List<String> calls = new CopyOnWriteArrayList<>();
    private final List<AutoCloseable> cleanup = new CopyOnWriteArrayList<>();
    private LinuxProfile created;
    private byte[] initrdSeen;
    private String initrdMode;
    private volatile boolean stopped;
    /** What the fake VM's console shows; the ready line unless a test says otherwise. */
    private volatile String console = "Linux version 6\n" + SystemVmLauncher.READY + "\n";
    /** What the fake VM does when paused, and the machine state its snapshot() gives. */
    private volatile Runnable onPause = () -> { };
    private volatile org.nxia.vmm.api.VmSnapshot saved;
    /** The secret the guest's agent knows when it is not the initramfs's: a restored guest's, from its saved RAM. */
    private volatile byte[] agentSecret;
    /** The snapshot the fake VMM was asked to restore. */
    private volatile org.nxia.vmm.api.VmSnapshot restored;
    /** How the fake VM ended, once it has. */
    private VmResult ended;
    /** Whether the fake VM ends POWERED_OFF once its agent has exited (a SHUTDOWN), as an ACPI guest does. */
    private volatile boolean poweredOffByAgent = true;
    /** The service object last registered. */
    private volatile Object registered;
    /** The RAM file the fake VMM was asked to clone from. */
    private volatile org.nxia.vmm.spi.RamFile clonedFrom;
    /** uname(2) on x86_64. */
    private static final int SYS_UNAME = 63;
    /** What the fake VMM's create() throws once it has read the profile, if anything. */
    private volatile RuntimeException createFails;
    /** What the fake hypervisor says it is. */
    private volatile HypervisorInfo.Flavour flavour = HypervisorInfo.Flavour.HARDWARE_VMX;
    /** The agent the fake vsock device spliced to, once it has. */
    private volatile AgentProcess agentSeen;

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : cleanup)
            c.close();
    }

    /** The VMM: create() reads the initramfs as LinuxVm does, then starts the vsock device. */
    private VmManager vmm(boolean silent) {
        VirtualMachine vm = (VirtualMachine) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VirtualMachine.class},
                (proxy, m, args) -> {
                    calls.add(m.getName());
                    return switch (m.getName()) {
                        case "id" -> "vm-1";
                        case "console" -> console;
                        case "result" -> result();
                        case "await" -> {
                            long end = System.nanoTime() + ((Duration) args[0]).toNanos();
                            while (result().isEmpty() && System.nanoTime() < end)
                                Thread.sleep(10);
                            yield result().orElseThrow(TimeoutException::new);
                        }
                        case "stop" -> {
                            stopped = true;
                            yield null;
                        }
                        case "pause" -> {
                            onPause.run();
                            yield null;
                        }
                        case "snapshot" -> saved;
                        default -> null;
                    };
                });
        return (VmManager) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VmManager.class}, (proxy, m, args) -> {
            switch (m.getName()) {
                case "hypervisor":
                    return new HypervisorInfo("fake", flavour, true, "", 0);
                case "create":
                    created = (LinuxProfile) args[0];
                    initrdSeen = Files.readAllBytes(created.initrd());
                    if (createFails != null)
                        throw createFails;
                    initrdMode = PosixFilePermissions.toString(Files.getPosixFilePermissions(created.initrd()));
                    String uds = created.devices().getLast().get("uds", null);
                    startDevice(Path.of(uds), silent);
                    return vm;
                case "clone":
                    clonedFrom = (org.nxia.vmm.spi.RamFile) args[1];
                    // fall through: the VM is made as a restore's
                case "restore":
                    restored = (org.nxia.vmm.api.VmSnapshot) args[0];
                    created = (LinuxProfile) restored.spec();
                    initrdSeen = Files.readAllBytes(created.initrd());
                    startDevice(Path.of(created.devices().getLast().get("uds", null)), silent);
                    return vm;
                case "destroy":
                    calls.add("destroy " + args[0]);
                    return true;
                default:
                    throw new UnsupportedOperationException(m.getName());
            }
        });
    }

    /** Stopped from the host; else, as an ACPI guest does once its agent has powered it off, POWERED_OFF. */
    private synchronized Optional<VmResult> result() {
        if (ended == null && stopped)
            ended = new VmResult(VmResult.Reason.STOPPED, 0, "", null, Duration.ZERO);
        AgentProcess agent = agentSeen;
        if (ended == null && poweredOffByAgent && agent != null && !agent.process.isAlive())
            ended = new VmResult(VmResult.Reason.POWERED_OFF, 0, "the guest powered off (ACPI S5)", null, Duration.ZERO);
        return Optional.ofNullable(ended);   // the first end wins, as VmCore's
    }

    /** Answers CONNECT with OK, then stays silent or splices the stream to the agent. */
    private void startDevice(Path uds, boolean silent) throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(uds));
        cleanup.add(server);
        Thread.ofVirtual().start(() -> {
            try {
                SocketChannel host = server.accept();
                cleanup.add(host);
                ByteBuffer one = ByteBuffer.allocate(1);
                do {
                    one.clear();
                    if (host.read(one) < 0)
                        return;
                } while (one.get(0) != '\n');
                host.write(ByteBuffer.wrap("OK 1\n".getBytes(StandardCharsets.US_ASCII)));
                if (silent)
                    return;
                AgentProcess agent = agentWithTheSecretFile();
                SocketChannel guest = agent.channel();
                cleanup.add(guest);
                Thread.ofVirtual().start(() -> splice(guest, host));
                splice(host, guest);
            } catch (IOException | InterruptedException e) {
                // the test sees it in boot()
            }
        });
    }

    private static void splice(SocketChannel from, SocketChannel to) {
        ByteBuffer b = ByteBuffer.allocate(65536);
        try {
            while (from.read(b) >= 0) {
                b.flip();
                while (b.hasRemaining())
                    to.write(b);
                b.clear();
            }
            to.shutdownOutput();
        } catch (IOException e) {
            // one side went away
        }
    }

    /** The agent as the guest would start it: the secret from the file in the appended archive. */
    private AgentProcess agentWithTheSecretFile() throws IOException, InterruptedException {
        byte[] image = Files.readAllBytes(dir.resolve("image"));
        InitramfsTest.Entry file = InitramfsTest.read(initrdSeen, image.length).get(Initramfs.SECRET_FILE);
        Path secret = Files.write(dir.resolve("secret"), agentSecret != null
                ? (java.util.HexFormat.of().formatHex(agentSecret) + "\n").getBytes(StandardCharsets.US_ASCII) : file.data());
        Path own = Files.createDirectories(dir.resolve("agent"));
        AgentProcess agent = new AgentProcess(own, List.of(), List.of("--secret-file", secret.toString()));
        cleanup.add(agent);
        agentSeen = agent;
        return agent;
    }

    private LinuxProfile profile() throws IOException {
        Path image = Files.write(dir.resolve("image"), new byte[] {0x1f, (byte) 0x8b, 8, 0, 0});  // 5 bytes: padding needed
        return LinuxProfile.of(dir.resolve("bzImage"), image).withCmdline("loglevel=4");
    }

    @Test
    void theSecretTravelsInTheInitramfsNotOnTheCommandLine() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), fakeContext(), Duration.ofSeconds(10));
        org.nxia.vmm.spi.HostPlacement placement = new org.nxia.vmm.spi.HostPlacement(List.of(1), true, false);
        try (SystemVm vm = launcher.boot(profile().withPlacement(placement), Duration.ofSeconds(10))) {
            assertEquals(ExitStatus.exited(0), vm.session().exec("true").status(), "the agent knows the secret it was handed");
            assertEquals("loglevel=4", created.cmdline(), "the command line is the profile's own");
            assertEquals(placement, created.placement(), "the profile's placement");
            assertFalse(Files.exists(created.initrd()), "the initramfs with the secret outlived create()");
            assertEquals("rw-------", initrdMode);
            byte[] image = Files.readAllBytes(dir.resolve("image"));
            assertArrayEquals(image, java.util.Arrays.copyOf(initrdSeen, image.length));
            String hex = new String(InitramfsTest.read(initrdSeen, image.length).get(Initramfs.SECRET_FILE).data(),
                    StandardCharsets.US_ASCII).strip();
            assertEquals(64, hex.length());
            assertFalse(hex.equals("0".repeat(64)), "a random secret");
            assertFalse(created.toString().contains(hex));
            assertFalse(Files.exists(dir.resolve("secret")), "the agent did not erase its secret file");
        }
        assertTrue(calls.contains("destroy vm-1"));
    }

    @Test
    void anAgentThatAcceptsAndGoesSilentFailsTheBootWithinTheHandshakeLimit() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(true), null, Duration.ofMillis(500));
        long start = System.nanoTime();
        ControlException e = assertThrows(ControlException.class, () -> launcher.boot(profile(), Duration.ofSeconds(10)));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(e.getMessage().contains("did not complete the handshake within 500 ms"), e.getMessage());
        assertTrue(ms < 5_000, "boot() took " + ms + " ms");
        // ... and the VM is not left running, unwatched and unlisted.
        assertTrue(calls.contains("stop"), calls.toString());
        assertTrue(calls.contains("destroy vm-1"), calls.toString());
        assertTrue(launcher.list().isEmpty());
        assertNotNull(created);
        assertFalse(Files.exists(created.initrd().getParent()), "the VM's temporary directory is left behind");
    }

    /** Enough of a bundle context to register the session. */
    private static BundleContext fakeContext() {
        ServiceRegistration<?> reg = (ServiceRegistration<?>) Proxy.newProxyInstance(SystemVmLauncherTest.class.getClassLoader(),
                new Class<?>[] {ServiceRegistration.class}, (p, m, a) -> null);
        return (BundleContext) Proxy.newProxyInstance(SystemVmLauncherTest.class.getClassLoader(), new Class<?>[] {BundleContext.class},
                (p, m, a) -> m.getName().equals("registerService") ? reg : null);
    }

    /** A context whose registration records its unregister in {@link #calls}. */
    private BundleContext recordingContext() {
        ServiceRegistration<?> reg = (ServiceRegistration<?>) Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {ServiceRegistration.class}, (p, m, a) -> {
                    calls.add("registration." + m.getName());
                    return null;
                });
        return (BundleContext) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {BundleContext.class},
                (p, m, a) -> {
                    if (m.getName().equals("registerService")) {
                        calls.add("registerService " + a[2]);
                        registered = a[1];
                        return reg;
                    }
                    return null;
                });
    }

    @Test
    void aBootedVmIsListedUntilClosedAndClosingShutsTheAgentDownAndUnregisters() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        long before = System.nanoTime();
        SystemVm vm = launcher.boot(profile().withManifest("system"), Duration.ofSeconds(10));
        long took = System.nanoTime() - before;
        assertTrue(vm.readyAfter().toNanos() <= took, "ready after " + vm.readyAfter() + ", within the " + took + " ns boot() took");
        assertEquals(List.of(vm), launcher.list());
        assertEquals(vm, launcher.find("vm-1").orElseThrow());
        assertTrue(launcher.find("vm-2").isEmpty());
        assertEquals("vm-1", vm.vm().id());
        assertTrue(vm.readyAfter().toNanos() > 0, "the time to the ready line is measured");
        assertTrue(calls.contains("start"), calls.toString());
        assertTrue(calls.stream().anyMatch(c -> c.startsWith("registerService ") && c.contains("nxia.vm.id=vm-1")), calls.toString());
        assertTrue(calls.stream().anyMatch(c -> c.startsWith("registerService ") && c.contains("nxia.profile=system")),
                "the session names the VM's manifest, which its processes' calls go by: " + calls);
        Path tmp = created.initrd().getParent();
        vm.close();
        assertTrue(agentSeen.process.waitFor(20, TimeUnit.SECONDS), "the agent was told to shut down (SHUTDOWN ends it)");
        assertTrue(launcher.list().isEmpty());
        assertTrue(calls.contains("registration.unregister"), calls.toString());
        assertTrue(calls.contains("stop"), calls.toString());
        assertTrue(calls.contains("destroy vm-1"), calls.toString());
        assertFalse(Files.exists(tmp), "the VM's temporary directory is removed");
        assertThrows(Exception.class, () -> vm.session().exec("true"), "the session is closed with the VM");
        int destroys = (int) calls.stream().filter("destroy vm-1"::equals).count();
        vm.close();
        assertEquals(destroys, calls.stream().filter("destroy vm-1"::equals).count(), "closing twice destroys once");
        assertEquals(VmResult.Reason.POWERED_OFF, vm.vm().result().orElseThrow().reason(),
                "with ACPI the guest powered itself off after SHUTDOWN, before the launcher would stop it");
    }

    /** A closed VM without ACPI (its power-off only halts) is stopped at once; one with ACPI that does not power off, after the wait. */
    @Test
    void closingWaitsForAnAcpiGuestsPowerOffOnly() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        poweredOffByAgent = false;
        SystemVm noAcpi = launcher.boot(profile().withAcpi(false), Duration.ofSeconds(10));
        long t0 = System.nanoTime();
        noAcpi.close();
        assertTrue(System.nanoTime() - t0 < SystemVmLauncher.POWER_OFF_WAIT.toNanos(), "no wait without ACPI");
        assertEquals(VmResult.Reason.STOPPED, noAcpi.vm().result().orElseThrow().reason());
        stopped = false;
        ended = null;
        SystemVm silent = launcher.boot(profile(), Duration.ofSeconds(10));
        t0 = System.nanoTime();
        silent.close();
        long took = System.nanoTime() - t0;
        assertTrue(took >= SystemVmLauncher.POWER_OFF_WAIT.toNanos() && took < SystemVmLauncher.POWER_OFF_WAIT.toNanos() + 10_000_000_000L,
                "an ACPI guest that does not power off is stopped after the wait: " + took / 1_000_000 + " ms");
        assertEquals(VmResult.Reason.STOPPED, silent.vm().result().orElseThrow().reason());
    }

    @Test
    void aVmThatEndsByItselfIsClosedAndUnlisted() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        SystemVm booted = launcher.boot(profile(), Duration.ofSeconds(10));
        stopped = true;  // the guest powered off
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!launcher.list().isEmpty() && System.nanoTime() < end)
            Thread.sleep(10);
        assertTrue(launcher.list().isEmpty(), "the watcher closes a VM that ended");
        while (!calls.contains("destroy vm-1") && System.nanoTime() < end)
            Thread.sleep(10);
        assertTrue(calls.contains("destroy vm-1"), calls.toString());
        assertTrue(calls.contains("registration.unregister"), calls.toString());
        SystemVm vm = booted;
        ControlException e = assertThrows(ControlException.class, () -> vm.session().exec("true"),
                "the session is closed with the VM, though the (fake) guest's agent still listens");
        assertEquals("System VM vm-1 ended: STOPPED", e.getMessage(), "whoever waits is told the VM ended and how");
        assertTrue(agentSeen.process.isAlive(), "a VM that ended is not sent SHUTDOWN");
    }

    @Test
    void aVmPastItsProfilesTimeoutIsStoppedAndWhoeverWaitsIsToldWhy() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        long start = System.nanoTime();
        SystemVm vm = launcher.boot(profile().withTimeout(Duration.ofSeconds(2)), Duration.ofSeconds(10));
        ControlException e = assertThrows(ControlException.class, () -> vm.session().exec("sleep", "30"),
                "a program that outlives the VM's limit is not waited for");
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertEquals("System VM vm-1 reached its 2s limit (its profile's timeout) and was stopped", e.getMessage());
        assertTrue(ms >= 2_000 && ms < 15_000, "stopped after " + ms + " ms, the limit counting from boot");
        // the waiter is told first; the watcher then closes the VM on its own thread
        awaitCall("destroy vm-1", Duration.ofSeconds(10));
        assertTrue(launcher.list().isEmpty());
        assertTrue(calls.contains("stop"), calls.toString());
        assertTrue(calls.contains("destroy vm-1"), calls.toString());
        assertTrue(calls.contains("registration.unregister"), calls.toString());
    }

    /** Waits until {@code call} is among the recorded calls, failing after {@code limit}. */
    private void awaitCall(String call, Duration limit) throws InterruptedException {
        long end = System.nanoTime() + limit.toNanos();
        while (!calls.contains(call)) {
            assertTrue(System.nanoTime() - end < 0, "no " + call + " within " + limit + ": " + calls);
            Thread.sleep(10);
        }
    }

    /**
     * The session every caller gets (SystemVm.session(), the registered service) confines a program that
     * comes without a confinement by the manifest the VM was booted under, looked up at each start; one
     * that comes with its own keeps it. Here the agent is a host process: a denied uname(2) is EPERM.
     */
    @Test
    void programsRunUnderTheManifestTheVmWasBootedUnderUnlessTheyBringTheirOwn() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        GuestConfinement[] guest = {new GuestConfinement(List.of(), java.util.Set.of(SYS_UNAME), java.util.Set.of())};
        launcher.policy = ManifestConfinedSessionTest.policy("sysvm", () -> guest[0]);
        try (SystemVm vm = launcher.boot(profile().withManifest("sysvm"), Duration.ofSeconds(10))) {
            assertEquals(vm.session(), registered, "the registered session is the one SystemVm.session() gives");
            ExecResult denied = vm.session().exec("uname");
            assertTrue(denied.status().code() != 0 && denied.stderrText().contains("Operation not permitted"),
                    "uname(2) denied by the manifest: " + denied.stderrText());
            ExecResult own = vm.session().exec(ExecRequest.of("uname").withConfinement(Confinement.NONE.denying(39)));
            assertEquals(ExitStatus.exited(0), own.status(), "a request's own confinement goes as it is");
            guest[0] = GuestConfinement.NONE;
            assertEquals(ExitStatus.exited(0), vm.session().exec("uname").status(), "the manifest is read at each start");
            launcher.policy = null;
            guest[0] = new GuestConfinement(List.of(), java.util.Set.of(SYS_UNAME), java.util.Set.of());
            assertEquals(ExitStatus.exited(0), vm.session().exec("uname").status(), "no policy service: nothing to confine by");
        }
    }

    @Test
    void aVmWithoutATimeoutIsNotStoppedByTheWatcher() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        try (SystemVm vm = launcher.boot(profile().withTimeout(LinuxProfile.NO_TIMEOUT), Duration.ofSeconds(10))) {
            assertEquals(ExitStatus.exited(0), vm.session().exec("sleep", "1").status(), "zero is no limit, not one already reached");
            assertEquals(List.of(vm), launcher.list());
            assertFalse(calls.contains("stop"), calls.toString());
        }
    }

    @Test
    void limitsAreNamedAsPeopleWriteThem() {
        assertEquals("10m", SystemVmLauncher.limitText(Duration.ofMinutes(10)));
        assertEquals("90s", SystemVmLauncher.limitText(Duration.ofSeconds(90)));
        assertEquals("1500ms", SystemVmLauncher.limitText(Duration.ofMillis(1500)));
    }

    @Test
    void aSnapshotIsTakenWithTheAgentQuiescedAndTheVmPausedAndResumesBoth() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        try (SystemVm vm = launcher.boot(profile(), Duration.ofSeconds(10))) {
            IllegalArgumentException none = assertThrows(IllegalArgumentException.class, () -> launcher.snapshot("vm-2"));
            assertEquals("no System VM vm-2 runs here", none.getMessage());
            saved = new org.nxia.vmm.api.VmSnapshot(created, "kvm", List.of(), List.of(vcpu()), new org.nxia.vmm.spi.PartitionState(List.of()), List.of());
            List<String> whilePaused = new CopyOnWriteArrayList<>();
            onPause = () -> {
                try {
                    vm.session().exec("true");
                    whilePaused.add("ran");
                } catch (ControlException e) {
                    whilePaused.add(e.code().toString());
                } catch (IOException e) {
                    whilePaused.add(e.toString());
                }
            };
            calls.clear();
            SystemVmSnapshot s = launcher.snapshot("vm-1");
            assertEquals(List.of("QUIESCED"), whilePaused, "the agent takes no new work while the VM is saved");
            assertEquals(List.of("pause", "snapshot", "resume"),
                    calls.stream().filter(List.of("pause", "snapshot", "resume")::contains).toList());
            assertEquals(saved, s.vm());
            assertEquals(0, s.generation());
            byte[] image = Files.readAllBytes(dir.resolve("image"));
            String hex = new String(InitramfsTest.read(initrdSeen, image.length).get(Initramfs.SECRET_FILE).data(),
                    StandardCharsets.US_ASCII).strip();
            assertEquals(hex, java.util.HexFormat.of().formatHex(s.secret()), "the secret its agent proves");
            assertEquals(ExitStatus.exited(0), vm.session().exec("true").status(), "the agent was resumed");
        }
    }

    @Test
    void deactivatingTheLauncherClosesEveryVm() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        launcher.boot(profile(), Duration.ofSeconds(10));
        launcher.deactivate();
        assertTrue(launcher.list().isEmpty());
        assertTrue(calls.contains("destroy vm-1"), calls.toString());
    }

    @Test
    void aVmWhoseAgentNeverSaysReadyFailsAtTheLimitWithTheConsolesTail() throws Exception {
        console = "x".repeat(SystemVmLauncher.CONSOLE_TAIL) + "kernel panic";
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(true), null, Duration.ofSeconds(10));
        long start = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> launcher.boot(profile(), Duration.ofMillis(300)));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(e.getMessage().startsWith("the System VM's agent was not ready in time; console:\n"), e.getMessage());
        assertTrue(e.getMessage().endsWith("kernel panic"), "the tail, where the reason is");
        assertEquals(SystemVmLauncher.CONSOLE_TAIL, e.getMessage().length() - "the System VM's agent was not ready in time; console:\n".length());
        assertTrue(ms >= 250 && ms < 5_000, ms + " ms");
        assertTrue(calls.contains("destroy vm-1"), calls.toString());
        assertTrue(launcher.list().isEmpty());
    }

    @Test
    void aVmThatEndsBeforeItsAgentIsReadyFailsAtOnceWithWhy() throws Exception {
        console = "short console";
        stopped = true;
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(true), null, Duration.ofSeconds(10));
        IOException e = assertThrows(IOException.class, () -> launcher.boot(profile(), Duration.ofSeconds(30)));
        assertEquals("the System VM ended before its agent was ready: STOPPED (); console:\nshort console", e.getMessage());
        assertTrue(calls.contains("destroy vm-1"), calls.toString());
    }

    @Test
    void theLauncherAddsTheVsockDeviceItselfAndNeedsHardwareVirtualization() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(true), null, Duration.ofSeconds(10));
        LinuxProfile withVsock = profile().withDevices(List.of(org.nxia.vmm.api.device.DeviceConfig.parse("virtio-vsock:cid=3")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> launcher.boot(withVsock, Duration.ofSeconds(1)));
        assertTrue(e.getMessage().contains("added by the launcher"), e.getMessage());
        assertEquals(null, created, "refused before any VM was created");

        flavour = HypervisorInfo.Flavour.PVM;
        e = assertThrows(IllegalArgumentException.class, () -> launcher.boot(profile(), Duration.ofSeconds(1)));
        assertTrue(e.getMessage().startsWith("cannot boot the System VM here: the fake backend runs on PVM (kvm_pvm)"), e.getMessage());
        SystemVmSnapshot snapshot = new SystemVmSnapshot(profile(), new org.nxia.vmm.api.VmSnapshot(profile(), "kvm", List.of(),
                List.of(vcpu()), new org.nxia.vmm.spi.PartitionState(List.of()), List.of()), new byte[32], 1);
        e = assertThrows(IllegalArgumentException.class, () -> launcher.restore(snapshot, Duration.ofSeconds(1)));
        assertTrue(e.getMessage().startsWith("cannot boot the System VM here"), e.getMessage());
        assertEquals(null, created, "refused before any VM was created or restored");
        flavour = HypervisorInfo.Flavour.HARDWARE_SVM;

        // other devices are the profile's own: they go along, with the launcher's vsock device after them
        SystemVmLauncher quick = new SystemVmLauncher(vmm(true), null, Duration.ofMillis(500));
        LinuxProfile withDisk = profile().withDevices(List.of(org.nxia.vmm.api.device.DeviceConfig.parse("virtio-blk:path=/dev/null")));
        assertThrows(ControlException.class, () -> quick.boot(withDisk, Duration.ofSeconds(10)));    // the fake agent is silent
        assertEquals(List.of("virtio-blk", "virtio-vsock"), created.devices().stream().map(d -> d.type()).toList());
    }

    @Test
    void aBootedVmsHandshakeHasTheLaunchersWholeLimit() throws Exception {
        // longer than a restored VM's limit (RESTORED_HANDSHAKE), which is not a booted one's
        Duration limit = SystemVmLauncher.RESTORED_HANDSHAKE.plusSeconds(1);
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(true), null, limit);
        ControlException e = assertThrows(ControlException.class, () -> launcher.boot(profile(), Duration.ofSeconds(10)));
        assertEquals("the agent did not complete the handshake within " + limit.toMillis() + " ms", e.getMessage());
    }

    @Test
    void aVmThatCannotBeCreatedLeavesNothingBehind() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        createFails = new IllegalStateException("no memory for the VM");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> launcher.boot(profile(), Duration.ofSeconds(10)));
        assertEquals("no memory for the VM", e.getMessage());
        assertFalse(Files.exists(created.initrd().getParent()), "the VM's temporary directory is removed");
        assertTrue(launcher.list().isEmpty());
    }

    /** A secret of 32 {@code b}s that the fake guest's agent knows, as a restored guest's from its saved RAM. */
    private byte[] agentKnows(byte b) {
        byte[] secret = new byte[32];
        java.util.Arrays.fill(secret, b);
        agentSecret = secret;
        return secret;
    }

    /** The saved moment's secret no longer opens a session with the agent: it moved to a new generation. */
    private void assertTheSavedSecretOpensNothing(byte[] secret) {
        ControlException old = assertThrows(ControlException.class, () -> new SocketControlConnector().connect(agentSeen.socket, secret));
        assertEquals(ControlException.Code.AUTH, old.code(), "the saved moment's secret opens nothing now");
    }

    private SystemVmSnapshot savedWith(byte[] secret, long generation) throws IOException {
        return new SystemVmSnapshot(profile(), new org.nxia.vmm.api.VmSnapshot(profile(), "kvm", List.of(), List.of(vcpu()),
                new org.nxia.vmm.spi.PartitionState(List.of()), List.of()), secret, generation);
    }

    @Test
    void aRestoredVmsAgentProvesTheSavedSecretAndMovesToTheNextGeneration() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        byte[] secret = agentKnows((byte) 0x33);
        SystemVmSnapshot snapshot = savedWith(secret, 0);
        long before = System.nanoTime();
        try (SystemVm vm = launcher.restore(snapshot, Duration.ofSeconds(10))) {
            long took = System.nanoTime() - before;
            assertEquals(List.of(vm), launcher.list());
            assertEquals("kvm", restored.backend());
            assertEquals(snapshot.vm().vcpus(), restored.vcpus(), "the saved machine, in the spec with the launcher's vsock device");
            assertEquals("virtio-vsock", created.devices().getLast().type());
            assertTrue(vm.readyAfter().toNanos() > 0 && vm.readyAfter().toNanos() <= took, vm.readyAfter() + " of " + took + " ns");
            assertTrue(calls.stream().anyMatch(c -> c.startsWith("registerService ") && c.contains("nxia.vm.id=vm-1")), calls.toString());
            assertEquals(ExitStatus.exited(0), vm.session().exec("true").status());
            assertTheSavedSecretOpensNothing(secret);
            saved = snapshot.vm();
            SystemVmSnapshot again = launcher.snapshot("vm-1");
            assertEquals(1, again.generation(), "the restored VM is generation 1");
            try (var s = new SocketControlConnector().connect(agentSeen.socket, again.secret())) {
                assertEquals(ExitStatus.exited(0), s.exec("true").status(), "and its new secret is the agent's");
            }
        }
        assertTrue(calls.contains("destroy vm-1"), calls.toString());
    }

    @Test
    void aCloneIsARestoreWithItsRamFromTheFileAndMovesToTheNextGenerationToo() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        byte[] secret = agentKnows((byte) 0x44);
        SystemVmSnapshot snapshot = savedWith(secret, 2);
        org.nxia.vmm.spi.RamFile ram = new org.nxia.vmm.spi.RamFile(dir.resolve("ram"), profile().memoryBytes(), List.of());
        try (SystemVm vm = launcher.clone(snapshot, ram, Duration.ofSeconds(10))) {
            assertEquals(ram, clonedFrom, "the VMM was asked for a clone of the file");
            assertEquals(snapshot.vm().vcpus(), restored.vcpus());
            assertEquals("virtio-vsock", created.devices().getLast().type(), "in the spec with the launcher's vsock device");
            assertEquals(List.of(vm), launcher.list());
            assertTheSavedSecretOpensNothing(secret);
            saved = snapshot.vm();
            assertEquals(3, launcher.snapshot("vm-1").generation(), "the clone is the next generation");
        }
        clonedFrom = null;
        SystemVmSnapshot withRam = new SystemVmSnapshot(profile(), new org.nxia.vmm.api.VmSnapshot(profile(), "kvm",
                List.of(new org.nxia.vmm.api.VmSnapshot.RamChunk(0, java.lang.foreign.MemorySegment.ofArray(new byte[4096]))),
                List.of(vcpu()), new org.nxia.vmm.spi.PartitionState(List.of()), List.of()), secret, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> launcher.clone(withRam, ram, Duration.ofSeconds(1)));
        assertTrue(e.getMessage().startsWith("a clone's RAM is " + ram.file() + "'s; the snapshot holds 1 RAM chunks"), e.getMessage());
        assertNull(clonedFrom, "no VM was made");
    }

    @Test
    void aRestoreWhoseAgentDoesNotProveTheSavedSecretIsUndone() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(false), recordingContext(), Duration.ofSeconds(10));
        agentSecret = new byte[32];    // not the snapshot's
        ControlException e = assertThrows(ControlException.class, () -> launcher.restore(savedWith(new byte[] {
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}, 4),
                Duration.ofSeconds(10)));
        assertEquals(ControlException.Code.AUTH, e.code(), "refused at once, not tried again");
        assertTrue(launcher.list().isEmpty());
        assertTrue(calls.contains("stop"), calls.toString());
        assertTrue(calls.contains("destroy vm-1"), calls.toString());
        assertFalse(Files.exists(created.initrd().getParent()), "the VM's temporary directory is removed");
    }

    @Test
    void aRestoredVmsSilentAgentGetsTheRestoredHandshakeLimitUntilTheDeadline() throws Exception {
        SystemVmLauncher launcher = new SystemVmLauncher(vmm(true), recordingContext(), Duration.ofSeconds(30));
        ControlException e = assertThrows(ControlException.class, () -> launcher.restore(savedWith(new byte[32], 0), Duration.ofSeconds(1)));
        assertEquals("the agent did not complete the handshake within " + SystemVmLauncher.RESTORED_HANDSHAKE.toMillis() + " ms",
                e.getMessage(), "the shorter of the launcher's limit and a restored VM's, and no attempt past the deadline");
        assertTrue(calls.contains("destroy vm-1"), calls.toString());
    }

    private static org.nxia.vmm.spi.VcpuState vcpu() {
        org.nxia.vmm.spi.Segment seg = new org.nxia.vmm.spi.Segment(0, 0xfffff, 0x10, 11, true, 0, false, true, true, true, false);
        return new org.nxia.vmm.spi.VcpuState(0,
                new org.nxia.vmm.spi.Registers(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x1000, 2),
                new org.nxia.vmm.spi.SpecialRegisters(seg, seg, seg, seg, seg, seg, seg, seg, new org.nxia.vmm.spi.DescriptorTable(0, 0),
                        new org.nxia.vmm.spi.DescriptorTable(0, 0), 0x80050033L, 0, 0, 0x20, 0, 0xd01, 0xfee00900L), List.of());
    }
}
