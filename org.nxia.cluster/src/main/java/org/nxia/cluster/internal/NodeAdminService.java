package org.nxia.cluster.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Dictionary;
import java.util.ArrayList;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;

import org.nxia.cluster.api.GuestRequest;
import org.nxia.cluster.api.Moved;
import org.nxia.cluster.api.NodeAdmin;
import org.nxia.cluster.api.NodeStatus;
import org.nxia.cluster.api.VmSummary;
import org.nxia.shell.support.GuestKit;
import org.nxia.shell.support.Text;
import org.nxia.shell.support.VmSnapshotFile;
import org.nxia.snapshot.api.SnapshotFormatException;
import org.nxia.vmm.api.LiveRam;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.spi.RamFile;
import org.osgi.framework.BundleContext;
import org.osgi.framework.FrameworkUtil;
import org.osgi.framework.InvalidSyntaxException;
import org.osgi.framework.ServiceReference;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.util.tracker.ServiceTracker;

/**
 * This node's {@link NodeAdmin}, registered for export once the node has a name (configuration
 * {@value #PID}): Aries RSA's topology manager exports it through the fastbin provider and the
 * ZooKeeper discovery announces it. Every request comes from another process and is checked as
 * such: guests by kit name only, VMs made for other nodes bounded, runs stopped at their timeout.
 */
@Component(configurationPid = NodeAdminService.PID, configurationPolicy = ConfigurationPolicy.REQUIRE, service = {})
public final class NodeAdminService implements NodeAdmin {

    static final String PID = "org.nxia.cluster";

    /** VMs that other nodes may hold here at once (each is guest RAM and a vCPU thread of this node). */
    static final int MAX_REMOTE_VMS = 64;

    /** Longest console tail one call returns. */
    static final int MAX_CONSOLE_CHARS = 64 << 10;

    /** Incoming VMs at once, the largest (a 3 GiB micro-VM's file and its state), and how long one may sit idle. */
    static final int MAX_TRANSFERS = 4;
    static final long MAX_TRANSFER_BYTES = 4L << 30;
    static final long TRANSFER_IDLE_NANOS = 60_000_000_000L;
    private static final long PAGE = LiveRam.PAGE;

    /**
     * An incoming VM's snapshot file, filled in order; or, with {@code pages}, its RAM (pre-copy),
     * written page by page at each page's guest address, {@code pages} noting which came.
     */
    private static final class Transfer {
        final Path file;
        final FileChannel channel;
        final long length;
        final long[] pages;
        long received;
        long lastNanos = System.nanoTime();

        Transfer(Path file, long length, boolean ram) throws IOException {
            this.file = file;
            this.length = length;
            this.pages = ram ? new long[Math.toIntExact((length / PAGE + 63) / 64)] : null;
            this.channel = FileChannel.open(file, StandardOpenOption.WRITE);
        }

        void discard() {
            try {
                channel.close();
                Files.deleteIfExists(file);
            } catch (IOException e) {
                // a temporary file left behind: nothing a caller can do about it
            }
        }

        /** The runs of pages that came, as the extents of a RAM file whose offsets are the guest addresses. */
        List<RamFile.Extent> extents() {
            List<RamFile.Extent> extents = new ArrayList<>();
            long count = length / PAGE;
            for (long p = 0; p < count; ) {
                if ((pages[(int) (p >>> 6)] & 1L << p) == 0) {
                    p++;
                    continue;
                }
                long first = p;
                while (p < count && (pages[(int) (p >>> 6)] & 1L << p) != 0) {
                    p++;
                }
                extents.add(new RamFile.Extent(first * PAGE, first * PAGE, (p - first) * PAGE));
            }
            return extents;
        }
    }

    /**
     * The node's configuration (file {@code org.nxia.cluster.cfg}). Where its endpoint listens is
     * Aries fastbin's configuration ({@code org.apache.aries.rsa.provider.fastbin.cfg}: {@code uri},
     * {@code exportedAddress}, {@code timeout}), shared by everything the node exports.
     */
    @interface Config {
        /** The node's name: letters, digits, '-' and '_'. */
        String node();

        /** The assembly this node runs, as node:list shows it. */
        String assembly() default "cluster";
    }

    /** The ZooKeeper discovery's client service, by name: this bundle needs no ZooKeeper classes. */
    static final String ZOOKEEPER = "org.apache.zookeeper.ZooKeeper";

    private final VmManager vms;
    private final Nodes nodes;
    private final String node;
    private final String assembly;
    private final Set<String> remoteVms = ConcurrentHashMap.newKeySet();
    private final Map<String, Transfer> transfers = new ConcurrentHashMap<>();
    private final BundleContext context;
    private final Dictionary<String, Object> props = new Hashtable<>();
    private final ServiceTracker<Object, Object> discovery;
    private ServiceRegistration<NodeAdmin> registration;
    /** Set once the tracker has seen the services there at activation: a client that comes later is a new session. */
    private volatile boolean tracking;
    private boolean deactivated;

    /**
     * Registered at once, and again each time the ZooKeeper discovery connects with a new session:
     * after ZooKeeper was restarted past the node's session its endpoint is gone from ZooKeeper, and
     * a node registered before the discovery first connected was seen never announced; Aries's
     * topology manager exports a service registered anew, and the discovery announces it.
     */
    @Activate
    public NodeAdminService(BundleContext context, @Reference VmManager vms, @Reference Nodes nodes, Config config)
            throws InvalidSyntaxException {
        this.context = context;
        this.vms = vms;
        this.nodes = nodes;
        this.node = checkedName(config.node());
        this.assembly = config.assembly();
        props.put(NODE, node);
        props.put("service.exported.interfaces", NodeAdmin.class.getName());
        // Aries fastbin, not its TCP provider: that one sends each call in small writes with Nagle on, so every call
        // waited out the peer's 40 ms delayed ACK (bench:cluster's null call: 43.7 ms, 0.6 ms here)
        props.put("service.exported.configs", "aries.fastbin");
        register();
        // the discovery registers its ZooKeeper client as a service each time it connects with a new session
        this.discovery = new ServiceTracker<>(context, FrameworkUtil.createFilter("(objectClass=" + ZOOKEEPER + ")"), null) {
            @Override
            public Object addingService(ServiceReference<Object> ref) {
                if (tracking) {
                    register();
                }
                return ref;
            }
        };
        discovery.open();
        tracking = true;
    }

    private synchronized void register() {
        if (deactivated) {
            return;   // a new session seen while this component goes
        }
        if (registration != null) {
            registration.unregister();
        }
        props.put(Nodes.REGISTERED, System.currentTimeMillis());
        registration = context.registerService(NodeAdmin.class, this, props);
    }

    @Deactivate
    synchronized void deactivate() {
        deactivated = true;
        discovery.close();
        registration.unregister();
        registration = null;
        transfers.values().forEach(Transfer::discard);
        transfers.clear();
    }

    static String checkedName(String name) {
        if (name == null || !name.matches("[A-Za-z0-9][A-Za-z0-9_-]{0,62}")) {
            throw new IllegalArgumentException("org.nxia.cluster: node name '" + name + "' must be 1 to 63 letters, digits, '-' or '_'");
        }
        return name;
    }

    @Override
    public NodeStatus status() {
        HypervisorInfo h = vms.hypervisor();
        return new NodeStatus(node, assembly, h.backend() + ", " + h.flavour().label(), vms.list().size());
    }

    @Override
    public List<VmSummary> vms() {
        return vms.list().stream().map(this::summary).toList();
    }

    @Override
    public VmSummary create(GuestRequest request) {
        // a record deserialized by RSA went through its constructor; a local caller may pass null
        if (request == null) {
            throw new IllegalArgumentException("no request");
        }
        if (remoteVmCount() >= MAX_REMOTE_VMS) {
            throw new IllegalStateException("node " + node + " holds " + MAX_REMOTE_VMS + " VMs made by other nodes already;"
                    + " destroy some first");
        }
        Path image = guest(request.guest());
        VirtualMachine vm = vms.create(VmProfile.of(image).withMemory(request.memoryBytes()).withArg(request.arg())
                .withTimeout(request.timeout()));
        remoteVms.add(vm.id());
        return summary(vm);
    }

    @Override
    public VmSummary start(String vmId) {
        VirtualMachine vm = vm(vmId);
        Duration timeout = ((VmProfile) vm.spec()).timeout();
        vm.start();
        // a VM made for another node ends at its timeout here, whether or not that node is still there
        Thread.ofVirtual().name("nxia-cluster-timeout-" + vmId).start(() -> stopAfter(vm, timeout));
        return summary(vm);
    }

    private static void stopAfter(VirtualMachine vm, Duration timeout) {
        try {
            vm.await(timeout);
        } catch (TimeoutException e) {
            vm.stop();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            // destroyed meanwhile: nothing left to stop
        }
    }

    @Override
    public VmSummary info(String vmId) {
        return summary(vm(vmId));
    }

    @Override
    public String console(String vmId, int maxChars) {
        if (maxChars < 0 || maxChars > MAX_CONSOLE_CHARS) {
            throw new IllegalArgumentException("maxChars " + maxChars + " is not between 0 and " + MAX_CONSOLE_CHARS);
        }
        String console = vm(vmId).console();
        return console.length() <= maxChars ? console : console.substring(console.length() - maxChars);
    }

    @Override
    public boolean destroy(String vmId) {
        if (!remoteVms.contains(vmId)) {
            vm(vmId);
        }
        boolean existed = vms.destroy(vmId);
        remoteVms.remove(vmId);
        return existed;
    }

    @Override
    public Moved migrate(String vmId, String target) {
        vm(vmId);
        Nodes.Node to = nodes.remote(target);
        try {
            Moved moved = Migration.move(vms, vmId, target, to.admin(), true);
            remoteVms.remove(vmId);
            return moved;
        } catch (IOException e) {
            throw new IllegalStateException("node " + node + " could not save " + vmId + ": " + e.getMessage(), e);
        }
    }

    @Override
    public String openTransfer(long length) {
        return open(length, false);
    }

    @Override
    public String openRam(long ramBytes) {
        if (ramBytes % PAGE != 0) {
            throw new IllegalArgumentException("RAM of " + ramBytes + " bytes is not whole 4 KiB pages");
        }
        return open(ramBytes, true);
    }

    private synchronized String open(long length, boolean ram) {
        if (length <= 0 || length > MAX_TRANSFER_BYTES) {
            throw new IllegalArgumentException("a VM of " + length + " bytes: node " + node + " takes 1 byte to " + Text.size(MAX_TRANSFER_BYTES));
        }
        long now = System.nanoTime();
        transfers.values().removeIf(t -> {
            boolean idle = now - t.lastNanos > TRANSFER_IDLE_NANOS;
            if (idle) {
                t.discard();
            }
            return idle;
        });
        if (transfers.size() >= MAX_TRANSFERS) {
            throw new IllegalStateException("node " + node + " is receiving " + MAX_TRANSFERS + " VMs already; try again later");
        }
        if (remoteVmCount() >= MAX_REMOTE_VMS) {
            throw new IllegalStateException("node " + node + " holds " + MAX_REMOTE_VMS + " VMs made by other nodes already");
        }
        try {
            Transfer t = new Transfer(ram ? Files.createTempFile(ramDirectory(), "nxia-incoming-", ".ram")
                    : Files.createTempFile("nxia-incoming-", ".snapshot"), length, ram);
            String id = UUID.randomUUID().toString();
            transfers.put(id, t);
            return id;
        } catch (IOException e) {
            throw new IllegalStateException("node " + node + " cannot store an incoming VM: " + e.getMessage(), e);
        }
    }

    @Override
    public void receive(String transfer, long offset, byte[] piece) {
        Transfer t = transfer(transfer, false);
        synchronized (t) {
            if (piece == null || piece.length == 0 || piece.length > MAX_PIECE) {
                throw new IllegalArgumentException("a piece is 1 byte to " + Text.size(MAX_PIECE));
            }
            if (offset != t.received || t.received + piece.length > t.length) {
                throw new IllegalArgumentException("piece at " + offset + " (" + piece.length + " bytes): expected one at " + t.received
                        + " within " + t.length + " bytes");
            }
            try {
                ByteBuffer b = ByteBuffer.wrap(piece);
                while (b.hasRemaining()) {
                    t.channel.write(b, t.received + b.position());
                }
            } catch (IOException e) {
                drop(transfer);
                throw new IllegalStateException("node " + node + " could not store the incoming VM: " + e.getMessage(), e);
            }
            t.received += piece.length;
            t.lastNanos = System.nanoTime();
        }
    }

    @Override
    public void receivePages(String ram, long[] addresses, byte[] pages) {
        Transfer t = transfer(ram, true);
        synchronized (t) {
            if (addresses == null || pages == null || addresses.length == 0 || (long) addresses.length * PAGE != pages.length
                    || pages.length > MAX_PIECE) {
                throw new IllegalArgumentException("pages come one 4 KiB page per address, 1 to " + MAX_PIECE / PAGE + " at a time");
            }
            for (long a : addresses) {
                if (a < 0 || a % PAGE != 0 || a >= t.length) {
                    throw new IllegalArgumentException("0x%x is not a page of the incoming VM's %s of RAM".formatted(a, Text.size(t.length)));
                }
            }
            try {
                for (int i = 0; i < addresses.length; i++) {
                    ByteBuffer b = ByteBuffer.wrap(pages, (int) (i * PAGE), (int) PAGE);
                    while (b.hasRemaining()) {
                        t.channel.write(b, addresses[i] + b.position() - i * PAGE);
                    }
                    long page = addresses[i] / PAGE;
                    t.pages[(int) (page >>> 6)] |= 1L << page;
                }
            } catch (IOException e) {
                drop(ram);
                throw new IllegalStateException("node " + node + " could not store the incoming VM's RAM: " + e.getMessage(), e);
            }
            t.lastNanos = System.nanoTime();
        }
    }

    @Override
    public VmSummary restore(String transfer) {
        return restore(transfer, null);
    }

    @Override
    public VmSummary restore(String transfer, String ram) {
        try {
            Transfer t = transfer(transfer, false);
            Transfer r = ram == null ? null : transfer(ram, true);
            synchronized (t) {
                if (t.received != t.length) {
                    throw new IllegalArgumentException("the incoming VM has " + t.received + " of its " + t.length + " bytes");
                }
                t.channel.force(false);
            }
            VmSnapshot snapshot = VmSnapshotFile.read(t.file, null);
            if (!(snapshot.spec() instanceof VmProfile)) {
                throw new IllegalArgumentException("the incoming VM is a System VM: only micro-VMs move between nodes yet");
            }
            VirtualMachine vm;
            if (r == null) {
                vm = vms.restore(snapshot);
            } else {
                if (!snapshot.ram().isEmpty()) {
                    throw new IllegalArgumentException("the incoming VM's state holds RAM of its own; its RAM came page by page");
                }
                if (snapshot.spec().memoryBytes() != r.length) {
                    throw new IllegalArgumentException("the incoming VM has " + Text.size(snapshot.spec().memoryBytes()) + " of RAM; "
                            + Text.size(r.length) + " came");
                }
                List<RamFile.Extent> extents;
                synchronized (r) {
                    extents = r.extents();   // no force: the mapping reads the same page cache the writes went to
                }
                // mapped copy-on-write: the file may go once mapped, its pages stay the VM's
                vm = vms.clone(snapshot, new RamFile(r.file, r.length, extents));
            }
            remoteVms.add(vm.id());
            Duration timeout = ((VmProfile) vm.spec()).timeout();
            Thread.ofVirtual().name("nxia-cluster-timeout-" + vm.id()).start(() -> stopAfter(vm, timeout));
            return summary(vm);
        } catch (IOException | SnapshotFormatException e) {
            throw new IllegalArgumentException("node " + node + " refused the incoming VM: " + e.getMessage(), e);
        } finally {
            drop(transfer);
            if (ram != null) {
                drop(ram);
            }
        }
    }

    /**
     * Where incoming RAM is gathered: the tmpfs at {@code /dev/shm} where the host has one (the pages
     * are the VM's RAM once mapped, with no write-back to a disk meanwhile), else the temporary directory.
     */
    static Path ramDirectory() throws IOException {
        Path shm = Path.of("/dev/shm");
        return Files.isDirectory(shm) && Files.isWritable(shm) && Files.getFileStore(shm).type().equals("tmpfs")
                ? shm : Path.of(System.getProperty("java.io.tmpdir"));
    }

    @Override
    public void discard(String transfer) {
        if (transfer != null) {
            drop(transfer);
        }
    }

    private Transfer transfer(String id, boolean ram) {
        Transfer t = id == null ? null : transfers.get(id);
        if (t == null || (t.pages != null) != ram) {
            throw new IllegalArgumentException("node " + node + " has no incoming VM " + id + " (it may have sat idle past "
                    + TRANSFER_IDLE_NANOS / 1_000_000_000L + " s)");
        }
        return t;
    }

    private void drop(String id) {
        Transfer t = transfers.remove(id);
        if (t != null) {
            t.discard();
        }
    }

    /** VMs other nodes made here that are still here: one may have been destroyed or moved away by this node's own commands. */
    private int remoteVmCount() {
        remoteVms.removeIf(id -> vms.find(id).isEmpty());
        return remoteVms.size();
    }

    /** Only the VMs other nodes made here: this node's own stay its own. */
    private VirtualMachine vm(String vmId) {
        if (vmId == null || !remoteVms.contains(vmId)) {
            throw new IllegalArgumentException("node " + node + " has no VM " + vmId + " made by another node");
        }
        return vms.find(vmId).orElseThrow(() -> {
            remoteVms.remove(vmId);
            return new IllegalArgumentException("node " + node + " has no VM " + vmId + " any more");
        });
    }

    private VmSummary summary(VirtualMachine vm) {
        return new VmSummary(node, vm.id(), vm.spec().name(), vm.state().name().toLowerCase(), vm.spec().memoryBytes(),
                vm.result().map(Text::outcome).orElse(""));
    }

    /**
     * A guest of this node's kit by name, looked up in the kit only: never a path, nor a file of
     * that name in the working directory, which {@code vm:run} would take.
     */
    static Path guest(String name) {
        if (!GuestRequest.GUEST_NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("'" + name + "' is not a guest kit name");
        }
        Path image = GuestKit.directory().resolve(name + ".elf");
        if (!Files.isRegularFile(image)) {
            throw new IllegalArgumentException("this node's guest kit has no guest '" + name + "' (" + GuestKit.directory().toAbsolutePath() + ")");
        }
        return image;
    }
}
