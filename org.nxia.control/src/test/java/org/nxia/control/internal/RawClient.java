package org.nxia.control.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.security.SecureRandom;
import java.util.Arrays;

/** Speaks frames by hand, to send the agent what a correct host never would. */
final class RawClient implements AutoCloseable {

    final SocketChannel ch;
    final ByteBuffer in = ByteBuffer.allocate(4 + Wire.MAX_BODY).flip();
    final byte[] hostNonce = new byte[Wire.NONCE];
    byte[] agentNonce;

    RawClient(SocketChannel ch) {
        this.ch = ch;
        new SecureRandom().nextBytes(hostNonce);
    }

    void send(byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining())
            ch.write(b);
    }

    void send(int type, int id, byte[] payload) throws IOException {
        send(Wire.encode(type, id, payload));
    }

    /** The next frame, or null at the end of the stream. */
    Wire.Frame read() throws IOException {
        for (;;) {
            int r = Wire.scan(in, false);
            if (r > 0)
                return Wire.take(in, r);
            if (r < 0)
                throw new IOException("bad frame from the agent: " + r);
            in.compact();
            int n = ch.read(in);
            in.flip();
            if (n < 0)
                return null;
        }
    }

    void hello(int lo, int hi) throws IOException {
        send(Wire.HELLO, 0, ByteBuffer.allocate(4 + Wire.NONCE).order(ByteOrder.LITTLE_ENDIAN)
                .putShort((short) lo).putShort((short) hi).put(hostNonce).array());
    }

    /** Runs the handshake with this secret; returns the agent's answer to AUTH. */
    Wire.Frame handshake(byte[] secret) throws IOException {
        hello(1, 1);
        Wire.Frame reply = read();
        agentNonce = Arrays.copyOfRange(reply.payload(), 4, 4 + Wire.NONCE);
        send(Wire.AUTH, 0, Wire.proof(secret, false, agentNonce, hostNonce));
        return read();
    }

    static int errorCode(Wire.Frame f) {
        return f.body().getInt();
    }

    @Override
    public void close() throws IOException {
        ch.close();
    }
}
