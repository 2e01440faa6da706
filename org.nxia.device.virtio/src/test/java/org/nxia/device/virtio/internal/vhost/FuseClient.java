package org.nxia.device.virtio.internal.vhost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;

/**
 * FUSE requests as a guest's virtio-fs driver sends them: one chain per request (the request
 * readable, room for the answer writable) on a request queue, checked answers.
 */
public final class FuseClient {

    public static final int FUSE_LOOKUP = 1, FUSE_OPEN = 14, FUSE_READ = 15, FUSE_INIT = 26;
    public static final long ROOT = 1;

    /** How a request reaches the device and how its answer is awaited. */
    public interface Channel {
        void kick() throws IOException;

        /** Waits (a few seconds at most) until {@code driver}'s used index is past {@code usedBefore}. */
        void awaitUsed(TestDriver driver, int usedBefore) throws IOException;
    }

    private final TestDriver driver;
    private final Channel channel;
    private long unique;

    public FuseClient(TestDriver driver, Channel channel) {
        this.driver = driver;
        this.channel = channel;
    }

    /** One request: the answer's bytes, out header first; fails unless it answers this request without error. */
    public ByteBuffer call(int opcode, long node, byte[] body, int replyBytes) throws IOException {
        ByteBuffer in = le(40 + body.length);
        in.putInt(40 + body.length).putInt(opcode).putLong(++unique).putLong(node).putInt(0).putInt(0).putInt(1).putInt(0).put(body);
        long request = driver.allocate(in.capacity());
        driver.memory().write(request, in.array());
        long reply = driver.allocate(replyBytes);
        int usedBefore = driver.usedIdx();
        driver.addChain(Buffer.readable(request, in.capacity()), Buffer.writable(reply, replyBytes));
        channel.kick();
        channel.awaitUsed(driver, usedBefore);
        ByteBuffer out = ByteBuffer.wrap(driver.memory().read(reply, replyBytes)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(unique, out.getLong(8), "the answer is to this request");
        assertEquals(0, out.getInt(4), "FUSE error of opcode " + opcode);
        return out;
    }

    /** FUSE_INIT, protocol 7.31; the major version the daemon answers with. */
    public int init() throws IOException {
        return call(FUSE_INIT, 0, le(64).putInt(7).putInt(31).array(), 16 + 64).getInt(16);
    }

    /** A file in the root directory: its node id and size. */
    public long[] lookup(String name) throws IOException {
        ByteBuffer entry = call(FUSE_LOOKUP, ROOT, (name + "\0").getBytes(StandardCharsets.UTF_8), 16 + 128);
        return new long[] {entry.getLong(16), entry.getLong(16 + 48)};
    }

    /** The first {@code max} bytes of file {@code node}, through FUSE_OPEN and FUSE_READ. */
    public String read(long node, int max) throws IOException {
        long handle = call(FUSE_OPEN, node, le(8).putInt(0).array(), 16 + 16).getLong(16);   // O_RDONLY
        ByteBuffer data = call(FUSE_READ, node, le(40).putLong(handle).putLong(0).putInt(max).array(), 16 + max);
        int length = data.getInt(0) - 16;
        assertTrue(length >= 0 && length <= max, "read length " + length);
        return new String(data.array(), 16, length, StandardCharsets.UTF_8);
    }

    private static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }
}
