package org.nxia.control.internal;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.Generation;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.control.api.SystemVms;
import org.nxia.device.virtio.vsock.VsockUnixClient;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.spi.RamFile;
import org.nxia.vmm.api.device.DeviceConfig;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

/**
 * Boots System VMs: a secret per VM in a file appended to the initramfs (the
 * agent proves it knows it, and so do we: docs/control-protocol.md; never on
 * the command line, which the console prints), a vsock device whose host
 * socket lives in a private temporary directory, the agent's ready line on the
 * console, then a session over vsock port 1024 registered as an
 * {@link AgentSession} service for as long as the VM runs.
 *
 * <p>The profile's timeout is the VM's lifetime limit, from boot (or restore): past it the VM is
 * shut down and destroyed, and whoever waits on its session is told so. A profile with
 * {@link LinuxProfile#NO_TIMEOUT} runs until it ends or is closed.
 */
@Component(service = SystemVms.class)
public final class SystemVmLauncher implements SystemVms {

    static final String READY = "nxia-agent: ready";
    static final Duration CONNECT_LIMIT = Duration.ofSeconds(60);
    static final int CONSOLE_TAIL = 4000;
    /** Per attempt, for a restored guest's session (see {@code Booted.open}). */
    static final Duration RESTORED_HANDSHAKE = Duration.ofSeconds(5);
    /** How long a closed System VM with ACPI has to power itself off once its agent acknowledged SHUTDOWN. */
    static final Duration POWER_OFF_WAIT = Duration.ofSeconds(5);
    /** How long the watcher of a VM without a limit waits at a time (it waits again). */
    static final Duration WATCH_PERIOD = Duration.ofMinutes(10);
    private static final System.Logger LOG = System.getLogger("org.nxia.control");

    private final VmManager vms;
    private final BundleContext context;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, Booted> running = new ConcurrentHashMap<>();
    private final Duration handshakeLimit;
    /** Whose manifests confine the programs started in each VM; none without it. */
    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    volatile CallPolicy policy;

    @Activate
    public SystemVmLauncher(@Reference VmManager vms, BundleContext context) {
        this(vms, context, AgentConnection.HANDSHAKE_LIMIT);
    }

    SystemVmLauncher(VmManager vms, BundleContext context, Duration handshakeLimit) {
        this.vms = vms;
        this.context = context;
        this.handshakeLimit = handshakeLimit;
    }

    @Deactivate
    void deactivate() {
        List.copyOf(running.values()).forEach(Booted::close);
    }

    @Override
    public SystemVm boot(LinuxProfile profile, Duration readyLimit) throws IOException, InterruptedException {
        requireHardwareVirtualization();
        if (profile.devices().stream().anyMatch(d -> d.type().equals("virtio-vsock"))) {
            throw new IllegalArgumentException("the System VM's virtio-vsock device is added by the launcher: leave it out of the profile");
        }
        byte[] secret = new byte[32];
        random.nextBytes(secret);
        Plumbing p = plumb(profile, secret);
        long start = System.nanoTime();
        Booted booted = new Booted(profile, p.create(vms::create), p.dir(), p.uds(), start);
        try {
            booted.vm.start();
            awaitReady(booted.vm, start + readyLimit.toNanos());
            booted.readyAfter = Duration.ofNanos(System.nanoTime() - start);
            booted.open(secret, 0, System.nanoTime() + CONNECT_LIMIT.toNanos(), false);
            return booted;
        } catch (IOException | InterruptedException | RuntimeException | Error e) {
            booted.close();
            throw e;
        }
    }

    @Override
    public SystemVmSnapshot snapshot(String vmId) throws IOException {
        Booted b = running.get(vmId);
        if (b == null) {
            throw new IllegalArgumentException("no System VM " + vmId + " runs here");
        }
        synchronized (b.saving) {
            AgentSession s = b.session;
            s.quiesce();
            try {
                b.vm.pause();
                try {
                    return new SystemVmSnapshot(b.profile, b.vm.snapshot(), b.secret, b.generation);
                } finally {
                    b.vm.resume();
                }
            } finally {
                s.resume();
            }
        }
    }

    @Override
    public SystemVm restore(SystemVmSnapshot snapshot, Duration readyLimit) throws IOException, InterruptedException {
        return restore(snapshot, readyLimit, vms::restore);
    }

    @Override
    public SystemVm clone(SystemVmSnapshot snapshot, RamFile ram, Duration readyLimit) throws IOException, InterruptedException {
        if (!snapshot.vm().ram().isEmpty()) {
            throw new IllegalArgumentException("a clone's RAM is " + ram.file() + "'s; the snapshot holds " + snapshot.vm().ram().size()
                    + " RAM chunks of its own (restore copies them)");
        }
        return restore(snapshot, readyLimit, s -> vms.clone(s, ram));
    }

    /** A restore or a clone: {@code how} makes and starts the VM from the snapshot in the plumbed spec. */
    private SystemVm restore(SystemVmSnapshot snapshot, Duration readyLimit, Function<VmSnapshot, VirtualMachine> how)
            throws IOException, InterruptedException {
        requireHardwareVirtualization();
        // the initramfs is loaded and then overwritten by the saved RAM: its secret is never used
        byte[] unused = new byte[32];
        random.nextBytes(unused);
        Plumbing p = plumb(snapshot.profile(), unused);
        long start = System.nanoTime();
        Booted booted = new Booted(snapshot.profile(), p.create(spec -> how.apply(snapshot.vm().withSpec(spec))), p.dir(), p.uds(), start);
        try {
            booted.open(snapshot.secret(), snapshot.generation(), start + readyLimit.toNanos(), true);
            Generation next = Generation.fresh(snapshot.generation() + 1, random);
            booted.session.resume(next);
            booted.secret = next.secret();
            booted.generation = next.number();
            booted.readyAfter = Duration.ofNanos(System.nanoTime() - start);
            return booted;
        } catch (IOException | RuntimeException | Error e) {
            booted.close();
            throw e;
        }
    }

    private static Duration min(Duration a, Duration b) {
        return a.compareTo(b) <= 0 ? a : b;
    }

    private void requireHardwareVirtualization() {
        HypervisorInfo h = vms.hypervisor();
        if (!h.flavour().hardwareVirtualization()) {
            throw new IllegalArgumentException("cannot boot the System VM here: the " + h.backend() + " backend runs on "
                    + h.flavour().label() + ", and a stock kernel needs hardware virtualization (VMX or SVM)");
        }
    }

    /**
     * A System VM's private directory (0700) with its vsock socket and its initramfs with the
     * secret appended, and the profile with both put in.
     */
    private record Plumbing(Path dir, Path uds, Path initrd, LinuxProfile withAgent) {

        /** Makes the VM; the initramfs is read by then and goes, and on failure so does the rest. */
        VirtualMachine create(Function<LinuxProfile, VirtualMachine> how) {
            try {
                return how.apply(withAgent);
            } catch (RuntimeException e) {
                deleteQuietly(initrd, uds, dir);
                throw e;
            } finally {
                deleteQuietly(initrd);
            }
        }
    }

    private static Plumbing plumb(LinuxProfile profile, byte[] secret) throws IOException {
        Path dir = Files.createTempDirectory("nxia-sysvm");  // 0700
        Path uds = dir.resolve("vsock");
        Path initrd = dir.resolve("initramfs");
        List<DeviceConfig> devices = new ArrayList<>(profile.devices());
        devices.add(DeviceConfig.parse("virtio-vsock:cid=3,uds=" + uds));
        LinuxProfile withAgent = new LinuxProfile(profile.name(), profile.kernel(), initrd, profile.cmdline(), profile.vcpus(),
                profile.memoryBytes(), profile.timeout(), devices, profile.placement(), profile.acpi(), profile.manifest(), profile.hyperv());
        try {
            byte[] image = profile.initrd() == null ? new byte[0] : Files.readAllBytes(profile.initrd());
            Files.write(Files.createFile(initrd, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"))),
                    Initramfs.withSecret(image, secret));
        } catch (IOException | RuntimeException e) {
            deleteQuietly(initrd, uds, dir);
            throw e;
        }
        return new Plumbing(dir, uds, initrd, withAgent);
    }

    private static void awaitReady(VirtualMachine vm, long deadline) throws IOException, InterruptedException {
        while (!vm.console().contains(READY)) {
            Optional<VmResult> r = vm.result();
            if (r.isPresent()) {
                throw new IOException("the System VM ended before its agent was ready: " + r.get().reason() + " ("
                        + r.get().detail() + "); console:\n" + tail(vm.console()));
            }
            if (System.nanoTime() > deadline) {
                throw new IOException("the System VM's agent was not ready in time; console:\n" + tail(vm.console()));
            }
            Thread.sleep(50);
        }
    }

    @Override
    public List<SystemVm> list() {
        return List.copyOf(running.values());
    }

    @Override
    public Optional<SystemVm> find(String vmId) {
        return Optional.ofNullable(running.get(vmId));
    }

    /** A limit as people write it: 5m, 30s, 1500ms. */
    static String limitText(Duration d) {
        if (d.toMillis() % 60_000 == 0) {
            return d.toMinutes() + "m";
        }
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + "s" : d.toMillis() + "ms";
    }

    static String tail(String console) {
        return console.length() <= CONSOLE_TAIL ? console : console.substring(console.length() - CONSOLE_TAIL);
    }

    /** Deletes in order (a directory after its files). */
    private static void deleteQuietly(Path... paths) {
        try {
            for (Path p : paths)
                Files.deleteIfExists(p);
        } catch (IOException e) {
            // a leftover empty temporary directory is harmless
        }
    }

    /** One System VM from boot to close; closing is idempotent and also follows the VM's own end. */
    private final class Booted implements SystemVm {
        private final LinuxProfile profile;
        private final VirtualMachine vm;
        private final Path dir;
        private final Path uds;
        /** When boot (or restore) began: the profile's timeout counts from here. */
        private final long born;
        /** One snapshot at a time: a second must not resume the agent under the first. */
        private final Object saving = new Object();
        private volatile Duration readyAfter = Duration.ZERO;
        private volatile AgentConnection session;
        /** {@link #session} as callers get it: confined by the profile's manifest by default. */
        private volatile AgentSession confined;
        private volatile byte[] secret;
        private volatile long generation;
        private volatile ServiceRegistration<AgentSession> registration;
        private Thread watcher;
        private boolean closed;

        Booted(LinuxProfile profile, VirtualMachine vm, Path dir, Path uds, long born) {
            this.profile = profile;
            this.vm = vm;
            this.dir = dir;
            this.uds = uds;
            this.born = born;
        }

        /**
         * Opens the session, then registers it. With {@code restored}, a handshake that gets no
         * answer is tried again until the deadline: the vsock device holds a new connection until
         * the guest has dropped the saved moment's (docs/vsock.md, "Snapshots"), but only for 2 s,
         * and a guest slower than that drops the new one with them.
         */
        void open(byte[] secret, long generation, long deadline, boolean restored) throws IOException {
            long start = System.nanoTime();
            for (int attempt = 1;; attempt++) {
                long tried = System.nanoTime();
                try {
                    SocketChannel channel = VsockUnixClient.connect(uds, AGENT_PORT,
                            Duration.ofNanos(Math.max(1, Math.min(CONNECT_LIMIT.toNanos(), deadline - System.nanoTime()))));
                    // a lost connection then costs one short attempt, not the whole limit
                    session = AgentConnection.open(channel, secret, restored ? min(handshakeLimit, RESTORED_HANDSHAKE) : handshakeLimit);
                    if (restored) {
                        LOG.log(System.Logger.Level.INFO, "System VM " + vm.id() + " restored: session on attempt " + attempt + " after "
                                + (System.nanoTime() - start) / 1_000_000 + " ms");
                    }
                    break;
                } catch (ControlException e) {
                    if (!restored || e.code() != ControlException.Code.SESSION || System.nanoTime() - deadline > 0
                            || vm.result().isPresent()) {
                        throw e;
                    }
                    LOG.log(System.Logger.Level.INFO, "System VM " + vm.id() + " restored: session attempt " + attempt + " failed after "
                            + (System.nanoTime() - tried) / 1_000_000 + " ms (" + e.getMessage() + "); trying again");
                }
            }
            this.secret = secret.clone();
            this.generation = generation;
            confined = new ManifestConfinedSession(session, () -> ManifestConfinedSession.of(policy, profile.manifest()));
            running.put(vm.id(), this);
            watch();
            Dictionary<String, Object> props = new Hashtable<>();
            props.put(VM_ID, vm.id());
            props.put(AGENT, session.agent());
            props.put(VSOCK_UDS, uds.toString());
            props.put(PROFILE, profile.manifest());
            registration = context.registerService(AgentSession.class, confined, props);
        }

        /**
         * Ends everything when the VM ends by itself (the guest powered off or crashed) or reaches
         * the profile's timeout, its lifetime limit: then the session's waiters are told why and
         * the VM is shut down like a closed one.
         */
        void watch() {
            Duration limit = profile.timeout();
            boolean limited = !limit.equals(LinuxProfile.NO_TIMEOUT);
            long end = born + limit.toNanos();
            watcher = Thread.ofVirtual().name("system-vm-watch-" + vm.id()).start(() -> {
                try {
                    while (true) {
                        long left = limited ? end - System.nanoTime() : WATCH_PERIOD.toNanos();
                        if (left <= 0) {
                            String why = "System VM " + vm.id() + " reached its " + limitText(limit) + " limit (its profile's timeout)"
                                    + " and was stopped";
                            LOG.log(System.Logger.Level.WARNING, why);
                            session.endingBecause(why);
                            break;
                        }
                        try {
                            VmResult r = vm.await(Duration.ofNanos(Math.min(left, WATCH_PERIOD.toNanos())));
                            if (!closing()) {
                                // the guest powered off, crashed or was stopped under a session: whoever waits is told which
                                String why = "System VM " + vm.id() + " ended: " + r.reason() + (r.detail().isEmpty() ? "" : " (" + r.detail() + ")");
                                LOG.log(System.Logger.Level.WARNING, why + "; console:\n" + tail(vm.console()));
                                session.endingBecause(why);
                            }
                            break;
                        } catch (TimeoutException e) {
                            // still running
                        }
                    }
                    close();
                } catch (InterruptedException e) {
                    // closed from elsewhere
                }
            });
        }

        /** Whether {@link #close} has begun: the VM it shuts down ends as asked, not by itself. */
        private synchronized boolean closing() {
            return closed;
        }

        @Override
        public VirtualMachine vm() {
            return vm;
        }

        @Override
        public AgentSession session() {
            return confined;
        }

        @Override
        public Duration readyAfter() {
            return readyAfter;
        }

        @Override
        public void close() {
            synchronized (this) {
                if (closed) {
                    return;
                }
                closed = true;
            }
            running.remove(vm.id(), this);
            ServiceRegistration<AgentSession> reg = registration;
            if (reg != null) {
                try {
                    reg.unregister();
                } catch (IllegalStateException e) {
                    // already gone with the bundle
                }
            }
            AgentSession s = session;
            boolean shutDown = false;
            if (s != null) {
                if (vm.result().isEmpty()) {
                    try {
                        s.shutdown();  // syncs the guest's file systems before we pull the plug
                        shutDown = true;
                    } catch (IOException e) {
                        // the guest is going away either way
                    }
                }
                s.close();
            }
            if (watcher != null && watcher != Thread.currentThread()) {
                watcher.interrupt();
            }
            try {
                if (shutDown && profile.acpi()) {
                    // the agent powers the guest off through ACPI's sleep register (POWERED_OFF): give it the moment
                    vm.await(POWER_OFF_WAIT);
                }
            } catch (TimeoutException e) {
                // stopped below
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            try {
                vm.stop();  // without ACPI the agent's power-off only halts the vCPUs
                vm.await(Duration.ofSeconds(10));
            } catch (TimeoutException e) {
                // destroy releases it all the same
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                vms.destroy(vm.id());
                deleteQuietly(uds, dir);
            }
        }
    }
}
