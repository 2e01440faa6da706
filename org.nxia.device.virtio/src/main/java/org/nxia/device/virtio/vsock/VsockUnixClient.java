package org.nxia.device.virtio.vsock;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The client side of the device's host-initiated connections through its
 * Unix socket (docs/vsock.md): {@code CONNECT port\n}, then
 * {@code OK hostport\n}, then the raw stream.
 */
public final class VsockUnixClient {

    private VsockUnixClient() {
    }

    /**
     * Connects to guest port {@code port} through the device listening on {@code uds}.
     *
     * @throws IOException when the guest refuses, the device answers something else,
     *         or nothing answers within {@code limit}
     */
    public static SocketChannel connect(Path uds, int port, Duration limit) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        Thread watchdog = closeAfter(ch, limit);  // a guest that never answers must not hang the caller
        try {
            ch.connect(UnixDomainSocketAddress.of(uds));
            ch.write(ByteBuffer.wrap(("CONNECT " + port + "\n").getBytes(StandardCharsets.US_ASCII)));
            StringBuilder line = new StringBuilder();
            ByteBuffer one = ByteBuffer.allocate(1);  // byte by byte: what follows the line is the guest's
            while (true) {
                one.clear();
                if (ch.read(one) < 0) {
                    throw new IOException("vsock port " + port + ": the guest refused the connection");
                }
                char c = (char) one.get(0);
                if (c == '\n') {
                    break;
                }
                if (line.length() > 64) {
                    throw new IOException("vsock port " + port + ": no OK line from the device");
                }
                line.append(c);
            }
            if (!line.toString().startsWith("OK ")) {
                throw new IOException("vsock port " + port + ": expected 'OK <port>', got '" + line + "'");
            }
            return ch;
        } catch (IOException e) {
            ch.close();
            throw watchdog.isAlive() ? e : new IOException("vsock port " + port + ": no answer within " + limit.toSeconds() + " s", e);
        } finally {
            watchdog.interrupt();
        }
    }

    /** A thread that closes {@code ch} after {@code limit} unless interrupted first. */
    private static Thread closeAfter(SocketChannel ch, Duration limit) {
        return Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(limit);
                ch.close();
            } catch (InterruptedException | IOException e) {
                // interrupted: done in time
            }
        });
    }
}
