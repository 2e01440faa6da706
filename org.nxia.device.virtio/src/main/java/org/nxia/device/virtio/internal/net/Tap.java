package org.nxia.device.virtio.internal.net;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;

import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;

/**
 * A TAP interface as the backend ({@code backend=tap:IFNAME}), for root users
 * who bridge it: one I/O thread per VM polls the fd with a deadline and moves
 * one frame per read or write. The link is up while the interface is open; a
 * failed read or write takes it down and ends the thread (said in the state).
 */
final class Tap implements NetBackend {

    private static final System.Logger LOG = System.getLogger("org.nxia.device.virtio.net");

    private final String name;
    private final Tun tun;
    private final VirtioNet net;
    private final TxFrames tx;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment frame = arena.allocate(VirtioNet.MAX_FRAME);
    private VirtioMmioTransport transport;
    private Thread thread;
    private volatile boolean closed;
    private volatile String lastError = "";

    Tap(String name, Tun tun, VirtioNet net, TxFrames tx) {
        this.name = name;
        this.tun = tun;
        this.net = net;
        this.tx = tx;
    }

    @Override
    public void start(VirtioMmioTransport t) {
        this.transport = t;
        setLink(true);
        thread = Thread.ofPlatform().daemon().name("nxia-" + name + "-tap").start(this::run);
    }

    private void run() {
        byte[] held = null;
        ByteBuffer out = null;
        try {
            while (!closed) {
                if (out == null) {
                    out = tx.take(0);
                }
                short events = (short) ((held == null ? Tun.POLLIN : 0) | (out != null ? Tun.POLLOUT : 0));
                int ready = tun.poll(events, held != null ? 10 : 100);
                if (out != null && (ready & Tun.POLLOUT) != 0) {
                    // the buffer holds the stream protocol's length word first: a TAP frame is what follows it
                    if (tun.write(MemorySegment.ofBuffer(out).asSlice(4))) {
                        tx.release(out);
                        out = null;
                        if (net.txWaiting()) {
                            transport.locked(() -> net.process(VirtioNet.TX));
                        }
                    }
                }
                if (held != null && net.offerFrame(held)) {
                    held = null;
                    transport.locked(net::receive);
                }
                if (held == null && (ready & Tun.POLLIN) != 0) {
                    int n;
                    boolean any = false;
                    while (held == null && (n = tun.read(frame)) > 0) {
                        if (n < VirtioNet.MIN_FRAME) {
                            continue;
                        }
                        byte[] f = frame.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
                        if (!net.offerFrame(f)) {
                            held = f;
                        }
                        any = true;
                    }
                    if (any) {
                        transport.locked(net::receive);
                    }
                }
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            lastError = e.toString();
            LOG.log(System.Logger.Level.WARNING, "{0}: TAP {1}: {2}; link down", name, tun.name(), e.toString());
            setLink(false);
        } finally {
            if (out != null) {
                tx.release(out);
            }
        }
    }

    private void setLink(boolean up) {
        transport.locked(() -> net.setLink(up));
        transport.configChanged();
    }

    record State(String tap, String lastError) {
    }

    @Override
    public Record state() {
        return new State(tun.name(), lastError);
    }

    @Override
    public void close() {
        closed = true;
        Thread t = thread;
        if (t != null) {
            try {
                t.join(2_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        tun.close();
        arena.close();
    }
}
