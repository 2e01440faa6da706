package org.nxia.gemini.internal;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;

import org.nxia.gemini.api.Gemini;
import org.osgi.framework.BundleContext;
import org.osgi.framework.InvalidSyntaxException;
import org.osgi.framework.ServiceReference;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.util.tracker.ServiceTracker;

/**
 * Accepts each System VM's Gemini broker session by itself: for every running System VM (an
 * agent session registered with its VM id, profile and vsock socket; org.nxia.control's
 * {@code SystemVms}) it listens where the VM's connections to host port {@value #PORT} arrive
 * and opens the VM's broker session on the first. No caller code accepts connections.
 */
@Component(immediate = true)
public final class SystemVmBrokers {

    /** The host vsock port a System VM's agent reaches the host's Gemini on. */
    static final int PORT = 1025;
    /** What a System VM's agent session is registered with (org.nxia.control.api.SystemVms). */
    static final String FILTER = "(&(nxia.vm.id=*)(nxia.vsock.uds=*)(nxia.profile=*))";

    private static final System.Logger LOG = System.getLogger(SystemVmBrokers.class.getName());

    private final Gemini gemini;
    private final ServiceTracker<Object, Listener> tracker;

    @Activate
    public SystemVmBrokers(BundleContext context, @Reference GeminiImpl gemini) throws InvalidSyntaxException {
        this.gemini = gemini;
        this.tracker = new ServiceTracker<>(context, context.createFilter(FILTER), null) {
            @Override
            public Listener addingService(ServiceReference<Object> ref) {
                return listen(String.valueOf(ref.getProperty("nxia.vm.id")), String.valueOf(ref.getProperty("nxia.profile")),
                        Path.of(ref.getProperty("nxia.vsock.uds") + "_" + PORT));
            }

            @Override
            public void removedService(ServiceReference<Object> ref, Listener l) {
                l.close();
            }
        };
        tracker.open(true);
    }

    /** For tests: listeners made by {@link #listen}, no OSGi. */
    SystemVmBrokers(Gemini gemini) {
        this.gemini = gemini;
        this.tracker = null;
    }

    @Deactivate
    void deactivate() {
        if (tracker != null) {
            tracker.close();
        }
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
                    gemini.openBroker(ch, profile, vmId);
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
