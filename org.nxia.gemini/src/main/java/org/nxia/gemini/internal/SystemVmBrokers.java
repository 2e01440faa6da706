package org.nxia.gemini.internal;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Function;

import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.api.Portals;
import org.osgi.framework.BundleContext;
import org.osgi.framework.InvalidSyntaxException;
import org.osgi.framework.ServiceReference;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.util.tracker.ServiceTracker;

/**
 * Accepts each System VM's Gemini broker session by itself: for every running System VM (an
 * agent session registered with its VM id, profile and vsock socket; org.nxia.control's
 * {@code SystemVms}) it listens where the VM's connections to host port {@value #PORT} arrive
 * and opens the VM's broker session on the first. No caller code accepts connections.
 *
 * <p>A VM that shows a Portal region named {@value #REGION} as device DAX
 * ({@code virtio-pmem:region=gemini,dax=true}) gets it as its broker session's reference region:
 * large byte arguments cross as references into a block arena at {@link Portals#LINUX_DAX_OFFSET},
 * which the host formats when the VM's agent session appears (if none is there yet).
 */
@Component(immediate = true)
public final class SystemVmBrokers {

    /** The host vsock port a System VM's agent reaches the host's Gemini on. */
    static final int PORT = 1025;
    /** What a System VM's agent session is registered with (org.nxia.control.api.SystemVms). */
    static final String FILTER = "(&(nxia.vm.id=*)(nxia.vsock.uds=*)(nxia.profile=*))";

    private static final System.Logger LOG = System.getLogger(SystemVmBrokers.class.getName());

    /** The region a System VM's broker session takes references in (by name: the profile shows it). */
    static final String REGION = "gemini";
    /** Blocks an arena formatted here holds at least: one argument each way at a time. */
    static final int MIN_BLOCKS = 2;
    static final long MIN_BLOCK = 4096;
    /** PortalStructures.formatArena takes the block size as an int: at most 1 GiB (a power of two). */
    static final long MAX_BLOCK = 1L << 30;
    /** Room an arena's header and bitmap need before the blocks, for a few blocks (docs/portal-abi.md). */
    static final long ARENA_HEADER_ROOM = 4096;

    private final Gemini gemini;
    private final ServiceTracker<Object, Listener> tracker;
    /** A VM's reference arena, or null: {@link #referenceArena} in the platform. */
    private final Function<String, PortalArena> arenas;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    volatile Portals portals;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    volatile PortalStructures structures;

    @Activate
    public SystemVmBrokers(BundleContext context, @Reference GeminiImpl gemini) throws InvalidSyntaxException {
        this.gemini = gemini;
        this.arenas = this::referenceArena;
        this.tracker = new ServiceTracker<>(context, context.createFilter(FILTER), null) {
            @Override
            public Listener addingService(ServiceReference<Object> ref) {
                String vmId = String.valueOf(ref.getProperty("nxia.vm.id"));
                referenceArena(vmId);    // formatted before any process of the VM can ask for a block
                return listen(vmId, String.valueOf(ref.getProperty("nxia.profile")), Path.of(ref.getProperty("nxia.vsock.uds") + "_" + PORT));
            }

            @Override
            public void removedService(ServiceReference<Object> ref, Listener l) {
                l.close();
            }
        };
        tracker.open(true);
    }

    /** For tests: listeners made by {@link #listen}, no OSGi; each VM's reference arena from {@code arenas}. */
    SystemVmBrokers(Gemini gemini, Function<String, PortalArena> arenas) {
        this.gemini = gemini;
        this.arenas = arenas;
        this.tracker = null;
    }

    @Deactivate
    void deactivate() {
        if (tracker != null) {
            tracker.close();
        }
    }

    /**
     * The block arena of region {@value #REGION} past Linux's first 2 MiB, if VM {@code vmId} maps
     * it: attached with the untrusted-header checks (the VM's processes can write it), or formatted
     * when there is none yet, with the largest power-of-two block that {@value #MIN_BLOCKS} blocks fit
     * in. Null when the VM maps no such region, the Portal services are not running, or the
     * region is too small (logged: arguments then cross copied).
     */
    PortalArena referenceArena(String vmId) {
        Portals p = portals;
        PortalStructures st = structures;
        if (p == null || st == null || p.mappings().stream().noneMatch(m -> m.vmId().equals(vmId) && m.region().equals(REGION) && m.mapped())) {
            return null;
        }
        PortalRegion region = p.find(REGION).orElse(null);
        if (region == null) {
            return null;
        }
        if (blockSize(region.size() - Portals.LINUX_DAX_OFFSET) == 0) {
            LOG.log(System.Logger.Level.WARNING, "System VM " + vmId + ": region " + REGION + " has no room for " + MIN_BLOCKS
                    + " blocks of " + MIN_BLOCK + " bytes past its first 2 MiB; its processes' arguments are copied");
            return null;
        }
        synchronized (this) {   // two VMs' agents appearing at once must not both format it
            return arenaIn(region.segment().asSlice(Portals.LINUX_DAX_OFFSET), st);
        }
    }

    /** The arena in {@code room}: attached if its header holds up, else formatted ({@link #blockSize} must be > 0). */
    static PortalArena arenaIn(MemorySegment room, PortalStructures st) {
        try {
            return st.attachArena(room);
        } catch (PortalException e) {
            return st.formatArena(room, (int) blockSize(room.byteSize()));
        }
    }

    /** The largest power of two in [MIN_BLOCK, MAX_BLOCK] of which MIN_BLOCKS fit in {@code room} after the header, or 0. */
    static long blockSize(long room) {
        long usable = (room - ARENA_HEADER_ROOM) / MIN_BLOCKS;
        if (usable < MIN_BLOCK) {
            return 0;
        }
        return Math.min(MAX_BLOCK, Long.highestOneBit(usable));
    }

    /** Listens for the broker of VM {@code vmId} on {@code socket}; null (logged) if it cannot. */
    Listener listen(String vmId, String profile, Path socket) {
        try {
            Listener l = new Listener(vmId, profile, socket);
            l.start();
            return l;
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "System VM " + vmId + ": no Gemini broker listener on " + socket + ": " + e);
            return null;
        }
    }

    /** One System VM's listener: one accept thread, at most one session at a time (Gemini's rule per VM). */
    final class Listener {
        private final String vmId;
        private final String profile;
        private final Path socket;
        private final ServerSocketChannel server;
        private Thread thread;

        Listener(String vmId, String profile, Path socket) throws IOException {
            this.vmId = vmId;
            this.profile = profile;
            this.socket = socket;
            Files.deleteIfExists(socket);
            this.server = ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(socket), 1);
        }

        void start() {
            thread = Thread.ofPlatform().daemon().name("gemini-broker-" + vmId).start(this::accept);
        }

        private void accept() {
            while (server.isOpen()) {
                SocketChannel ch;
                try {
                    ch = server.accept();
                } catch (IOException e) {
                    return; // closed: the VM ended
                }
                try {
                    GeminiSession session = gemini.openBroker(ch, profile, vmId);
                    PortalArena arena = arenas.apply(vmId);
                    if (arena != null) {
                        session.bindReferenceRegion(REGION, arena);
                    }
                } catch (RuntimeException e) { // the VM's session is still open: one per VM
                    LOG.log(System.Logger.Level.WARNING, "System VM " + vmId + ": broker connection refused: " + e.getMessage());
                    try {
                        ch.close();
                    } catch (IOException ignored) {
                        // nothing to keep
                    }
                }
            }
        }

        /** Stops listening, ends the VM's session and removes the socket (its directory goes with the VM). */
        void close() {
            try {
                server.close();
            } catch (IOException ignored) {
                // closing
            }
            gemini.sessionOfVm(vmId).ifPresent(s -> s.close("the System VM stopped"));
            try {
                Files.deleteIfExists(socket);
                if (thread != null) {
                    thread.join(1000);
                }
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "System VM " + vmId + ": cannot remove " + socket + ": " + e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        boolean listening() {
            return thread.isAlive();
        }
    }
}
