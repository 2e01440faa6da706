package org.nxia.snapshot.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/** The bytes of a snapshot being read: a file, or an array (tests, the fuzzer, small snapshots in memory). */
public sealed interface Source extends AutoCloseable {

    long size() throws IOException;

    /** Fills {@code dst} from {@code position}; the caller has checked the range against {@link #size()}. */
    void read(long position, ByteBuffer dst) throws IOException;

    @Override
    void close() throws IOException;

    record OfFile(FileChannel channel) implements Source {
        @Override
        public long size() throws IOException {
            return channel.size();
        }

        @Override
        public void read(long position, ByteBuffer dst) throws IOException {
            while (dst.hasRemaining()) {
                int n = channel.read(dst, position);
                if (n < 0) {
                    throw new IOException("the snapshot file shrank while it was read (at offset " + position + ")");
                }
                position += n;
            }
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    record OfBytes(byte[] bytes) implements Source {
        @Override
        public long size() {
            return bytes.length;
        }

        @Override
        public void read(long position, ByteBuffer dst) {
            dst.put(bytes, Math.toIntExact(position), dst.remaining());
        }

        @Override
        public void close() {
        }
    }
}
