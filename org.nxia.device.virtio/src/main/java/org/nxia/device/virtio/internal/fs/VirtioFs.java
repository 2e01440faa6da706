package org.nxia.device.virtio.internal.fs;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import org.nxia.device.virtio.internal.mmio.VirtioBackend;
import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.SplitQueueState;
import org.nxia.device.virtio.internal.sys.Sys;
import org.nxia.device.virtio.internal.vhost.VhostUserFrontend;
import org.nxia.vmm.spi.SharedRam;

/**
 * virtio-fs (virtio device 26): a host directory the guest mounts by its tag. The VMM serves
 * only the transport; the FUSE requests in the queues are read and answered by virtiofsd
 * itself, in guest RAM it maps from the fds the front-end sends. A kick of a queue is passed on
 * to virtiofsd's kick eventfd; a signal on a queue's call eventfd becomes the device's
 * used-buffer interrupt (virtio-mmio's interrupt status is the VMM's to set).
 *
 * <p>virtiofsd is a peer: every wait on it has a deadline (the connect and each reply,
 * {@link VhostUserFrontend}), and when it fails — gone before its socket appeared, no answer or
 * a broken connection while the queues are set up at DRIVER_OK, or it exits while serving — the
 * device says so with DEVICE_NEEDS_RESET ({@link VirtioMmioTransport#backendFailed}) and the
 * reason in its state, instead of leaving the driver's requests unanswered with no sign why.
 */
final class VirtioFs implements VirtioBackend, AutoCloseable {

    static final int DEVICE_ID = 26;
    static final long F_VERSION_1 = 1L << 32;
    /** The config space's tag: UTF-8, NUL-padded to 36 bytes; then num_request_queues (u32). */
    static final int TAG_BYTES = 36;
    /** The high-priority queue and one request queue. */
    static final int QUEUES = 2;
    static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    static final Duration REPLY_TIMEOUT = Duration.ofSeconds(5);
    /** How often a call thread looks whether it should stop. */
    private static final int CALL_POLL_MILLIS = 200;
    private static final System.Logger LOG = System.getLogger("org.nxia.device.virtio.fs");

    /** The process that serves the queues, as the device sees it: {@link Virtiofsd}, or a test's stand-in. */
    interface BackEnd extends AutoCloseable {
        /** Its vhost-user socket (it makes it once started). */
        Path socket();

        long pid();

        boolean alive();

        /** The end of its log, for an error message; empty if there is none. */
        String logTail();

        @Override
        void close();
    }

    private final String vmId;
    private final byte[] tag;
    private final Path shared;
    private final List<SharedRam> ram;
    private final BackEnd daemon;
    private final VhostUserFrontend vhost;
    private final Sys.EventFd[] kicks = new Sys.EventFd[QUEUES];
    private final Sys.EventFd[] calls = new Sys.EventFd[QUEUES];
    private final List<Thread> callThreads = new ArrayList<>();
    private VirtioMmioTransport transport;
    private volatile boolean serving;
    private final boolean[] started = new boolean[QUEUES];
    // counters (state(), not saved)
    private long kicksPassed;
    private volatile long interrupts;
    private volatile String lastError = "";
    /** Whether the back-end's failure was reported since the last activation (once is enough). */
    private final AtomicBoolean failed = new AtomicBoolean();

    private VirtioFs(String vmId, byte[] tag, Path shared, List<SharedRam> ram, BackEnd daemon, VhostUserFrontend vhost) {
        this.vmId = vmId;
        this.tag = tag;
        this.shared = shared;
        this.ram = ram;
        this.daemon = daemon;
        this.vhost = vhost;
    }

    /** Starts virtiofsd on {@code shared} and connects to it; RAM's fds are sent now (they do not change). */
    static VirtioFs start(String vmId, String tag, Path shared, String cache, String sandbox, List<SharedRam> ram)
            throws IOException, InterruptedException {
        byte[] t = tag.getBytes(StandardCharsets.UTF_8);
        if (t.length == 0 || t.length > TAG_BYTES || tag.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("virtio-fs: tag '" + tag + "' is not 1.." + TAG_BYTES + " bytes of UTF-8 without NUL");
        }
        if (ram.isEmpty() || ram.size() > VhostUserFrontend.MAX_REGIONS) {
            throw new IllegalArgumentException("virtio-fs: this VM's RAM cannot be shared with virtiofsd"
                    + " (a clone's RAM is a private mapping of its snapshot file)");
        }
        return connect(vmId, t, shared, ram, Virtiofsd.start(shared, cache, sandbox), CONNECT_TIMEOUT, REPLY_TIMEOUT);
    }

    /**
     * Connects to {@code daemon} (closed on failure) and sends it guest RAM: the start of the
     * vhost-user handshake, each step within its deadline.
     */
    static VirtioFs connect(String vmId, byte[] t, Path shared, List<SharedRam> ram, BackEnd daemon, Duration connectTimeout,
            Duration replyTimeout) throws IOException, InterruptedException {
        VhostUserFrontend vhost = null;
        try {
            vhost = VhostUserFrontend.connect(daemon.socket(), connectTimeout, replyTimeout, daemon::alive);
            long features = vhost.getFeatures();
            long needed = F_VERSION_1 | SplitQueue.QUEUE_FEATURES | VhostUserFrontend.F_PROTOCOL_FEATURES;
            if ((features & needed) != needed) {
                throw new IOException("virtiofsd offers features 0x%x, without all of 0x%x".formatted(features, needed));
            }
            vhost.setProtocolFeatures(vhost.getProtocolFeatures());
            vhost.setOwner();
            List<VhostUserFrontend.Region> regions = new ArrayList<>();
            for (SharedRam r : ram) {
                regions.add(new VhostUserFrontend.Region(r.guestAddress(), r.size(), r.hostAddress(), r.fd(), r.fdOffset()));
            }
            vhost.setMemTable(regions);
            VirtioFs fs = new VirtioFs(vmId, t, shared, List.copyOf(ram), daemon, vhost);
            for (int q = 0; q < QUEUES; q++) {
                fs.kicks[q] = new Sys.EventFd();
                fs.calls[q] = new Sys.EventFd();
            }
            return fs;
        } catch (IOException | RuntimeException e) {
            if (vhost != null) {
                vhost.close();
            }
            String log = daemon.logTail();
            daemon.close();
            throw new IOException("virtio-fs: virtiofsd on " + shared + ": " + e.getMessage() + (log.isEmpty() ? "" : "; its log: " + log), e);
        }
    }

    void transport(VirtioMmioTransport t) {
        transport = t;
    }

    @Override
    public int deviceId() {
        return DEVICE_ID;
    }

    @Override
    public long features() {
        return 0;   // no notification queue (VIRTIO_FS_F_NOTIFICATION): virtiofsd has none
    }

    @Override
    public int queueCount() {
        return QUEUES;
    }

    @Override
    public long readConfig(int offset, int size) {
        long v = 0;
        for (int i = 0; i < size; i++) {
            int at = offset + i;
            int b = at < TAG_BYTES ? (at < tag.length ? tag[at] & 0xff : 0)
                    : at < TAG_BYTES + 4 ? ((QUEUES - 1) >>> (8 * (at - TAG_BYTES))) & 0xff : 0;
            v |= (long) b << (8 * i);
        }
        return v;
    }

    @Override
    public void activate(long features, SplitQueue[] queues) {
        failed.set(false);
        try {
            vhost.setFeatures(features | VhostUserFrontend.F_PROTOCOL_FEATURES);
            serving = true;
            for (int q = 0; q < QUEUES; q++) {
                if (queues[q] == null || !queues[q].isActive()) {
                    continue;
                }
                SplitQueueState s = queues[q].state();
                vhost.setVringNum(q, s.size());
                vhost.setVringBase(q, s.lastAvailIdx());
                vhost.setVringAddr(q, host(s.descriptorTable(), 16L * s.size()), host(s.usedRing(), 6 + 8L * s.size()),
                        host(s.availRing(), 6 + 2L * s.size()));
                vhost.setVringKick(q, kicks[q].fd());
                vhost.setVringCall(q, calls[q].fd());
                vhost.setVringEnable(q, true);
                started[q] = true;
                startCallThread(q);
            }
        } catch (IOException | IllegalArgumentException e) {
            // on the vCPU thread, under the transport's lock: at most one reply timeout long, as
            // the first late reply marks the connection broken and the rest fail at once
            fail("setting up the queues: " + e.getMessage());
        }
    }

    /** The host address of guest range [gpa, gpa + length), which must lie in shared RAM. */
    private long host(long gpa, long length) {
        for (SharedRam r : ram) {
            if (gpa >= r.guestAddress() && length <= r.size() && gpa - r.guestAddress() <= r.size() - length) {
                return r.hostAddress() + (gpa - r.guestAddress());
            }
        }
        throw new IllegalArgumentException("a ring at guest 0x%x (%d bytes) lies outside the RAM shared with virtiofsd".formatted(gpa, length));
    }

    private void startCallThread(int q) {
        Sys.EventFd call = calls[q];
        Thread t = Thread.ofPlatform().daemon().name("nxia-" + vmId + "-virtio-fs-call-" + q).start(() -> {
            while (serving) {
                try {
                    if (call.await(CALL_POLL_MILLIS) > 0) {
                        interrupts++;
                        VirtioMmioTransport tr = transport;
                        tr.locked(tr::usedBuffers);
                    } else if (!daemon.alive()) {
                        // it answers nothing more: the driver's requests would wait forever
                        fail("serving the queues");
                        return;
                    }
                } catch (IOException e) {
                    fail("queue " + q + "'s call eventfd: " + e.getMessage());
                    return;
                }
            }
        });
        callThreads.add(t);
    }

    /** virtiofsd takes the chains and writes the used rings: the transport must not touch them. */
    @Override
    public boolean servedElsewhere() {
        return true;
    }

    @Override
    public void process(int queue) {
        if (queue >= 0 && queue < QUEUES && started[queue] && kicks[queue].signal()) {
            kicksPassed++;
        }
    }

    @Override
    public void reset() {
        stopQueues();
    }

    private void stopQueues() {
        serving = false;
        for (Thread t : callThreads) {
            try {
                t.join(2 * CALL_POLL_MILLIS + 1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        callThreads.clear();
        for (int q = 0; q < QUEUES; q++) {
            if (started[q]) {
                started[q] = false;
                try {
                    vhost.getVringBase(q);   // stops the ring in virtiofsd
                } catch (IOException e) {
                    lastError = "stopping queue " + q + ": " + e.getMessage();
                }
            }
        }
    }

    /**
     * The back-end cannot serve the queues: said in the state and the log, and to the driver with
     * DEVICE_NEEDS_RESET; the call threads stop. Once per activation (both call threads may see it).
     */
    private void fail(String why) {
        if (!failed.compareAndSet(false, true)) {
            return;
        }
        serving = false;
        String log = daemon.alive() ? "" : " (virtiofsd exited; its log: " + daemon.logTail() + ")";
        lastError = why + log;
        String message = "virtio-fs " + new String(tag, StandardCharsets.UTF_8) + ": " + lastError;
        LOG.log(System.Logger.Level.WARNING, "VM " + vmId + ": " + message + "; the device needs a reset");
        VirtioMmioTransport tr = transport;
        if (tr != null) {
            tr.backendFailed(message);
        }
    }

    /** Counters and diagnostics. */
    record State(String tag, String path, long virtiofsdPid, boolean virtiofsdRunning, long kicksPassed, long interrupts, String lastError) {
    }

    @Override
    public Record state() {
        return new State(new String(tag, StandardCharsets.UTF_8), shared.toString(), daemon.pid(), daemon.alive(), kicksPassed, interrupts,
                lastError);
    }

    @Override
    public void close() {
        stopQueues();
        vhost.close();
        daemon.close();
        for (int q = 0; q < QUEUES; q++) {
            kicks[q].close();
            calls[q].close();
        }
    }
}
