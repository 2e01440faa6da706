package org.nxia.device.virtio.internal.blk;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import org.nxia.device.virtio.internal.mmio.SingleQueueBackend;
import org.nxia.device.virtio.internal.queue.DescriptorChain;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.device.SavedStateCodec;

/**
 * virtio-blk (device ID 2) over a raw image file: read, write, flush, get-id;
 * read-only mode. A request's bounds are checked against the disk before any
 * I/O; a flush forces written data to the disk before it completes.
 */
final class VirtioBlk extends SingleQueueBackend {

    static final int SECTOR = 512;
    static final int F_RO = 5;
    static final int F_FLUSH = 9;
    static final int T_IN = 0;
    static final int T_OUT = 1;
    static final int T_FLUSH = 4;
    static final int T_GET_ID = 8;
    static final int S_OK = 0;
    static final int S_IOERR = 1;
    static final int S_UNSUPP = 2;
    static final int HEADER = 16;
    static final int ID_BYTES = 20;

    private final GuestMemory memory;
    private final FileChannel file;
    private final long capacitySectors;
    private final boolean readOnly;
    private final byte[] id;
    /** All of guest RAM as one buffer (RAM up to 2 GiB), so a request needs no new buffer object. */
    private final java.nio.ByteBuffer ram;
    private long reads;
    private long writes;
    private long flushes;
    private long errors;

    VirtioBlk(GuestMemory memory, FileChannel file, long sizeBytes, boolean readOnly, Path path) {
        this.memory = memory;
        this.file = file;
        this.capacitySectors = sizeBytes / SECTOR;
        this.readOnly = readOnly;
        byte[] name = ("nxia:" + path.getFileName()).getBytes(StandardCharsets.US_ASCII);
        this.ram = memory.base() == 0 && memory.size() <= Integer.MAX_VALUE
                ? memory.slice(0, memory.size()).asByteBuffer() : null;
        this.id = new byte[ID_BYTES];
        System.arraycopy(name, 0, id, 0, Math.min(name.length, ID_BYTES));
    }

    @Override
    public int deviceId() {
        return 2;
    }

    @Override
    public long features() {
        return (1L << F_FLUSH) | (readOnly ? 1L << F_RO : 0);
    }

    @Override
    public long readConfig(int offset, int size) {
        // struct virtio_blk_config: capacity (le64) first; the rest is zero for the features offered.
        long value = 0;
        for (int i = size - 1; i >= 0; i--) {
            int at = offset + i;
            int b = at < 8 ? (int) (capacitySectors >>> (8 * at)) & 0xff : 0;
            value = (value << 8) | b;
        }
        return value;
    }

    /** Serves one request; returns the bytes written into the chain (data read plus the status byte). */
    @Override
    protected long serve(DescriptorChain c) {
        // Layout: a readable header, data buffers, a writable buffer whose last byte is the status.
        if (c.readableCount() < 1 || c.length(0) < HEADER || c.writableCount() < 1) {
            return 0;   // no status byte to report into: drop it (the driver broke the protocol)
        }
        int last = c.count() - 1;
        long statusAddress = c.address(last) + c.length(last) - 1;
        if (c.length(last) < 1) {
            return 0;
        }
        int type = memory.readInt(c.address(0));
        long sector = memory.readLong(c.address(0) + 8);
        int status;
        long written = 0;
        try {
            switch (type) {
                case T_IN -> {
                    long bytes = dataBytes(c, 1, last, true);
                    status = checkRange(sector, bytes);
                    if (status == S_OK) {
                        written = transfer(c, sector, 1, last, true);
                        reads++;
                    }
                }
                case T_OUT -> {
                    long bytes = dataBytes(c, 1, last, false);
                    status = readOnly ? S_IOERR : checkRange(sector, bytes);
                    if (status == S_OK) {
                        transfer(c, sector, 1, last, false);
                        writes++;
                    }
                }
                case T_FLUSH -> {
                    file.force(false);
                    flushes++;
                    status = S_OK;
                }
                case T_GET_ID -> {
                    status = S_UNSUPP;
                    if (last >= 1 && c.isWritable(1) && c.length(1) >= ID_BYTES) {
                        memory.write(c.address(1), id);
                        written = ID_BYTES;
                        status = S_OK;
                    }
                }
                default -> status = S_UNSUPP;
            }
        } catch (IOException e) {
            status = S_IOERR;
        }
        if (status != S_OK) {
            errors++;
        }
        memory.writeByte(statusAddress, (byte) status);
        return written + 1;
    }

    /** Bytes of data in descriptors [from, to), or -1 when one has the wrong direction. The last descriptor's status byte is excluded. */
    private static long dataBytes(DescriptorChain c, int from, int to, boolean writable) {
        long total = 0;
        for (int i = from; i <= to; i++) {
            long len = i == to ? c.length(i) - 1 : c.length(i);
            if (len > 0 && c.isWritable(i) != writable) {
                return -1;
            }
            total += len;
        }
        return total;
    }

    private int checkRange(long sector, long bytes) {
        if (bytes < 0 || bytes % SECTOR != 0 || sector < 0 || sector > capacitySectors
                || bytes / SECTOR > capacitySectors - sector) {
            return S_IOERR;
        }
        return S_OK;
    }

    private long transfer(DescriptorChain c, long sector, int from, int to, boolean read) throws IOException {
        long position = sector * SECTOR;
        long moved = 0;
        for (int i = from; i <= to; i++) {
            long len = i == to ? c.length(i) - 1 : c.length(i);
            if (len <= 0) {
                continue;
            }
            MemorySegment buffer = memory.slice(c.address(i), len);   // checked against guest RAM
            java.nio.ByteBuffer bytes;
            if (ram != null) {
                bytes = ram.clear().position((int) c.address(i)).limit((int) (c.address(i) + len));
            } else {
                bytes = buffer.asByteBuffer();
            }
            while (bytes.hasRemaining()) {
                int n = read ? file.read(bytes, position + (len - bytes.remaining()))
                        : file.write(bytes, position + (len - bytes.remaining()));
                if (n < 0) {
                    // reading past the end of a file shorter than its capacity: zeros
                    buffer.asSlice(len - bytes.remaining()).fill((byte) 0);
                    break;
                }
            }
            position += len;
            moved += len;
        }
        return read ? moved : 0;
    }

    static final String SAVED_KIND = "virtio-blk disk";

    /**
     * The capacity the driver read. The image is configuration (its path), and
     * requests are answered before their notification returns, so none is in
     * flight at a snapshot; only the disk's size is checked on restore.
     */
    @Override
    public byte[] saveState() {
        return SavedStateCodec.writer(SAVED_KIND, 1).i64(capacitySectors).toBytes();
    }

    /** Refuses an image whose size changed since the snapshot: the guest's file systems know the old one. */
    @Override
    public Runnable checkState(byte[] saved) {
        SavedStateCodec.Reader in = SavedStateCodec.reader(saved, SAVED_KIND, 1);
        long sectors = in.i64();
        in.end();
        if (sectors != capacitySectors) {
            throw in.refuse("the guest knows a disk of " + sectors + " sectors; the image now has " + capacitySectors);
        }
        return () -> { };
    }

    record State(long capacitySectors, boolean readOnly, long reads, long writes, long flushes, long errors) {
    }

    @Override
    public Record state() {
        return new State(capacitySectors, readOnly, reads, writes, flushes, errors);
    }

    void close() throws IOException {
        file.close();
    }

}
