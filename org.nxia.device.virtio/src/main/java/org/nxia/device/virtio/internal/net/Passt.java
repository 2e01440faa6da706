package org.nxia.device.virtio.internal.net;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import java.util.concurrent.TimeUnit;

import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;

/**
 * One passt per VM, supervised: started in a private directory (its socket and
 * log), connected to over QEMU's stream protocol (a 4-byte big-endian length,
 * then the Ethernet frame), and restarted with back-off when it dies or stops
 * reading (the link is down meanwhile, and the driver is told both ways).
 *
 * <p>One I/O thread per VM does everything with passt, non-blocking under a
 * selector, so every wait has a deadline: passt has {@link #CONNECT_MILLIS}
 * to accept us after a start, and {@link #WRITE_MILLIS} to take a frame we
 * started writing; past either it is killed and restarted. Its socket is
 * always read, whatever the guest takes: frames the guest has no room for are
 * dropped and counted ({@link VirtioNet#offerOrDrop}), so passt never waits for
 * us and its frames are never cut. Frames it sends are checked
 * ({@value VirtioNet#MIN_FRAME}..{@value VirtioNet#MAX_FRAME} bytes); a bad
 * length is a broken peer, handled the same way. Each new passt first gets a
 * frame from the guest's MAC ({@link VirtioNet#announcement}), and the link
 * comes up on its answer (or after {@link #ANSWER_MILLIS}).
 */
final class Passt implements NetBackend {

    static final long CONNECT_MILLIS = 10_000;
    static final long WRITE_MILLIS = 5_000;
    /** Long enough for a guest to see the link down (its config-change work runs) before it comes back. */
    static final long BACKOFF_FIRST_MILLIS = 1_000;
    static final long BACKOFF_MAX_MILLIS = 8_000;
    /** A connection that lasted this long resets the back-off. */
    static final long STABLE_MILLIS = 10_000;
    /** How long a new passt has to answer the announcement before the link comes up anyway (a passt without IPv4 answers no ARP). */
    static final long ANSWER_MILLIS = 2_000;
    /** The socket's read buffer: several largest frames per read. */
    static final int READ_BUFFER = 256 * 1024;

    /** The user passt runs as when the VMM is root: nobody's uid. */
    static final String NOBODY = "65534";

    private static final System.Logger LOG = System.getLogger("org.nxia.device.virtio.net");

    private final String name;
    private final List<String> command;
    private final Path dir;
    private final Path socket;
    private final VirtioNet net;
    private final TxFrames tx;
    private final ByteBuffer in = ByteBuffer.allocateDirect(READ_BUFFER);
    private VirtioMmioTransport transport;
    private Thread thread;
    private volatile Selector selector;
    private volatile boolean closed;
    private volatile Process process;
    private volatile int starts;
    private volatile String lastError = "";

    /**
     * A supervisor for {@code passt} with {@code options} (port forwards, addresses), in a new
     * private directory; nothing runs until {@link #start}.
     */
    Passt(String name, Path binary, List<String> options, VirtioNet net, TxFrames tx) throws IOException {
        this.name = name;
        this.net = net;
        this.tx = tx;
        this.dir = Files.createTempDirectory("nxia-passt-");
        this.socket = dir.resolve("passt.sock");
        boolean root = "root".equals(Files.getOwner(dir).getName());
        List<String> c = new ArrayList<>();
        c.add(binary.toString());
        c.addAll(List.of("--foreground", "--quiet", "--socket", socket.toString()));
        if (root) {
            // WHY: passt run as root drops to an unprivileged user before it binds its socket, and
            // then cannot enter a directory only root may: the directory (still 0700) goes to that
            // user. Numeric, so a host without "nobody" in /etc/passwd (the kvm rig) works too.
            c.addAll(List.of("--runas", NOBODY + ":" + NOBODY));
            Files.setOwner(dir, dir.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName(NOBODY));
        }
        c.addAll(options);
        this.command = List.copyOf(c);
    }

    @Override
    public void start(VirtioMmioTransport transport) {
        this.transport = transport;
        net.onWork(this::wake);
        thread = Thread.ofPlatform().daemon().name("nxia-" + name + "-passt").start(this::supervise);
    }

    private void wake() {
        Selector s = selector;
        if (s != null) {
            s.wakeup();
        }
    }

    /** Start, connect, serve, and again after a back-off, until closed. */
    private void supervise() {
        long backoff = BACKOFF_FIRST_MILLIS;
        while (!closed) {
            long began = System.nanoTime();
            String why;
            try {
                why = runOnce();
            } catch (IOException | RuntimeException e) {
                why = e + logTail();
            }
            lastError = why;   // before the link goes down: whoever sees it down can read why
            setLink(false);
            stopProcess();
            if (closed) {
                return;
            }
            if ((System.nanoTime() - began) / 1_000_000 > STABLE_MILLIS) {
                backoff = BACKOFF_FIRST_MILLIS;
            }
            LOG.log(System.Logger.Level.WARNING, "{0}: passt: {1}; link down, restarting passt in {2} ms",
                    name, why, backoff);
            sleep(backoff);
            backoff = Math.min(backoff * 2, BACKOFF_MAX_MILLIS);
        }
    }

    /** One passt: returns why it ended. */
    private String runOnce() throws IOException {
        Files.deleteIfExists(socket);
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("passt.log").toFile()));
        Process p = pb.start();
        process = p;
        starts++;
        try (SocketChannel channel = connect(p); Selector sel = Selector.open()) {
            if (channel == null) {
                return p.isAlive() ? "passt did not accept a connection within " + CONNECT_MILLIS + " ms"
                        : "passt exited with status " + p.exitValue() + " at start" + logTail();
            }
            channel.configureBlocking(false);
            // WHY: a new passt knows not the guest's MAC and sends to broadcast, which the guest's TCP
            // drops: tell it first (64 bytes on an empty socket are taken whole or not at all); the
            // link comes up on its answer, so nothing reaches passt before it knows where to reply
            probe = net.announcement();
            ByteBuffer hello = ByteBuffer.allocate(4 + probe.length).putInt(probe.length).put(probe).flip();
            if (channel.write(hello) != hello.limit()) {
                return "passt did not take the " + hello.limit() + "-byte frame that gives it the guest's MAC";
            }
            probeSent = System.nanoTime();
            SelectionKey key = channel.register(sel, SelectionKey.OP_READ);
            selector = sel;
            in.clear();
            transport.locked(net::clearPending);
            return serve(p, channel, key, sel);
        } finally {
            selector = null;
        }
    }

    /** Connects to passt's socket, retrying while it starts; null when it died or the deadline passed. */
    private SocketChannel connect(Process p) throws IOException {
        long deadline = System.nanoTime() + CONNECT_MILLIS * 1_000_000;
        while (!closed && p.isAlive() && System.nanoTime() < deadline) {
            if (Files.exists(socket)) {
                SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
                try {
                    c.connect(UnixDomainSocketAddress.of(socket));
                    return c;
                } catch (IOException e) {
                    c.close();   // bound but not listening yet
                }
            }
            sleep(20);
        }
        return null;
    }

    /** Moves frames both ways until passt fails; returns why. */
    private String serve(Process p, SocketChannel channel, SelectionKey key, Selector sel) throws IOException {
        out = null;
        try {
            return move(p, channel, key, sel);
        } finally {
            if (out != null) {
                tx.release(out);   // a frame cut off with its connection: its buffer is free again
                out = null;
            }
        }
    }

    /** The frame being written to passt, or null. */
    private ByteBuffer out;
    /** The announcement this passt has not answered yet, or null once it has (or {@link #ANSWER_MILLIS} passed): the link is up. */
    private byte[] probe;
    private long probeSent;

    private String move(Process p, SocketChannel channel, SelectionKey key, Selector sel) throws IOException {
        long writeSince = 0;
        while (!closed) {
            if (out == null) {
                try {
                    out = tx.take(0);
                } catch (InterruptedException e) {
                    return "interrupted";
                }
                writeSince = System.nanoTime();
            }
            // WHY always OP_READ: this passt (0.0~git20230309) sends some frames (ARP, DHCP, NDP, ICMP)
            // as a length word and then the frame in two non-blocking sends; with its socket full
            // between them the frame is lost behind its length and the stream is garbage from there
            // (PasstTest). So its socket is always drained: with the guest behind, frames are dropped
            // here, as a NIC with a full ring drops, never left in the socket.
            key.interestOps(SelectionKey.OP_READ | (out != null ? SelectionKey.OP_WRITE : 0));
            sel.select(probe != null ? 20 : 250);
            sel.selectedKeys().clear();
            if (!p.isAlive()) {
                return "passt (pid " + p.pid() + ") exited with status " + p.exitValue() + logTail();
            }
            if (probe != null && (System.nanoTime() - probeSent) / 1_000_000 > ANSWER_MILLIS) {
                linkUp(p, "without passt's answer to the announcement");
            }
            if (out != null) {
                if (channel.write(out) > 0) {
                    writeSince = System.nanoTime();
                }
                if (!out.hasRemaining()) {
                    tx.release(out);
                    out = null;
                    if (net.txWaiting()) {
                        transport.locked(() -> net.process(VirtioNet.TX));
                    }
                } else if ((System.nanoTime() - writeSince) / 1_000_000 > WRITE_MILLIS) {
                    // we read all it sends, so it never waits for us: a passt that reads nothing is stuck
                    return "passt took no data for " + WRITE_MILLIS + " ms";
                }
            }
            int n = channel.read(in);
            if (n < 0) {
                // passt dying closes its end first: give its exit a moment, so the log says which it was
                try {
                    if (p.waitFor(1, TimeUnit.SECONDS)) {
                        return "passt (pid " + p.pid() + ") exited with status " + p.exitValue() + logTail();
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return "passt closed the connection";
            }
            if (n > 0) {
                String bad = frames(p);
                if (bad != null) {
                    return bad;
                }
                transport.locked(net::receive);
            }
        }
        return "closed";
    }

    private void linkUp(Process p, String how) {
        probe = null;
        setLink(true);
        LOG.log(System.Logger.Level.INFO, "{0}: passt (pid {1}) connected; link up{2}", name, Long.toString(p.pid()),
                how.isEmpty() ? "" : " " + how);
    }

    /** Queues (or, with the guest behind, drops) every whole frame in {@link #in}; null, or why passt's stream is broken. */
    private String frames(Process p) {
        in.flip();
        try {
            while (in.remaining() >= 4) {
                int len = in.getInt(in.position());
                if (len < VirtioNet.MIN_FRAME || len > VirtioNet.MAX_FRAME) {
                    return "passt sent a frame length of " + Integer.toUnsignedString(len) + " bytes (allowed "
                            + VirtioNet.MIN_FRAME + ".." + VirtioNet.MAX_FRAME + ")";
                }
                if (in.remaining() < 4 + len) {
                    break;
                }
                byte[] frame = new byte[len];
                in.position(in.position() + 4).get(frame);
                if (probe != null && VirtioNet.answers(probe, frame)) {
                    linkUp(p, "");   // the device's own exchange: the guest never sees it
                } else {
                    net.offerOrDrop(frame);
                }
            }
            return null;
        } finally {
            in.compact();
        }
    }

    private void setLink(boolean up) {
        VirtioMmioTransport t = transport;
        boolean[] changed = {false};
        t.locked(() -> {
            changed[0] = net.linkUp() != up;
            net.setLink(up);
        });
        if (changed[0]) {
            t.configChanged();
        }
    }

    /** passt's last words (its log, without the start banner and its complaints about syslog), for the log line. */
    private String logTail() {
        try (Stream<String> lines = Files.lines(dir.resolve("passt.log"))) {
            List<String> said = lines.map(String::strip)
                    .filter(l -> !l.isEmpty() && !l.contains("syslog") && !l.contains("qrap") && !l.contains("qemu"))
                    .toList();
            String last = String.join("; ", said.subList(Math.max(0, said.size() - 3), said.size()));
            return last.isEmpty() ? "" : " (passt said: " + (last.length() > 300 ? last.substring(last.length() - 300) : last) + ")";
        } catch (IOException | java.io.UncheckedIOException e) {
            return "";
        }
    }

    private void stopProcess() {
        Process p = process;
        if (p == null) {
            return;
        }
        p.destroy();
        try {
            if (!p.waitFor(2, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor(2, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    private void sleep(long millis) {
        synchronized (this) {
            if (closed) {
                return;
            }
            try {
                wait(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** The passt process now (the test kills it), or -1 before the first start. */
    long pid() {
        Process p = process;
        return p == null ? -1 : p.pid();
    }

    record State(long pid, int starts, String socket, String lastError) {
    }

    State status() {
        return new State(pid(), starts, socket.toString(), lastError);
    }

    @Override
    public Record state() {
        return status();
    }

    /** Ends passt and the I/O thread, and removes the private directory (the VM is being destroyed). */
    @Override
    public void close() {
        synchronized (this) {
            closed = true;
            notifyAll();
        }
        wake();
        Thread t = thread;
        if (t != null) {
            try {
                t.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        stopProcess();
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException e) {
            // a temp directory left behind holds only a dead socket and a log
        }
    }
}
