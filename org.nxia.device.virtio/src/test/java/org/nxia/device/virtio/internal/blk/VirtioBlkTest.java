package org.nxia.device.virtio.internal.blk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nxia.device.virtio.internal.queue.TestDriver.Buffer.readable;
import static org.nxia.device.virtio.internal.queue.TestDriver.Buffer.writable;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.device.virtio.internal.queue.DescriptorChain;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.vmm.api.device.SavedStateCodec;
import org.nxia.vmm.spi.GuestMemory;

/**
 * virtio-blk's request parsing, request by request: everything in a request
 * (its layout, type, sector and buffer directions) is the guest's, and each
 * test checks the status byte, what reached the image or guest memory, and
 * the length the device reports as written.
 */
class VirtioBlkTest {

    private static final byte UNTOUCHED = (byte) 0xee;

    @TempDir
    Path dir;

    private GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[256 * 1024]));
    private TestDriver driver;
    private SplitQueue queue;
    private VirtioBlk blk;
    private Path image;

    /** A disk of {@code sectors} sectors whose sector i is filled with byte i + 1. */
    private VirtioBlk disk(int sectors, boolean readOnly) throws IOException {
        image = dir.resolve("disk.img");
        byte[] content = new byte[sectors * VirtioBlk.SECTOR];
        for (int i = 0; i < sectors; i++) {
            Arrays.fill(content, i * VirtioBlk.SECTOR, (i + 1) * VirtioBlk.SECTOR, (byte) (i + 1));
        }
        Files.write(image, content);
        FileChannel channel = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE);
        blk = new VirtioBlk(memory, channel, content.length, readOnly, image);
        driver = TestDriver.create(memory, 16, 0x1000);
        queue = driver.newQueue(0);
        return blk;
    }

    @AfterEach
    void close() throws IOException {
        if (blk != null) {
            blk.close();
        }
    }

    private long header(int type, long sector) {
        long h = driver.allocate(16);
        memory.writeInt(h, type);
        memory.writeLong(h + 8, sector);
        return h;
    }

    /** Serves the chain made of {@code buffers}; returns what the device reports as written. */
    private long serve(Buffer... buffers) {
        driver.addChain(buffers);
        DescriptorChain chain = queue.next();
        int head = chain.head();
        long written = blk.serve(chain);
        queue.pushUsed(head, 0);   // only so the driver's descriptors come back
        driver.pollUsed();
        return written;
    }

    private long status() {
        return driver.allocate(1, UNTOUCHED);
    }

    @Test
    void aReadFillsTheDataBuffersAndReportsDataPlusStatus() throws IOException {
        disk(8, false);
        long data = driver.allocate(1024, UNTOUCHED);
        long st = status();
        assertEquals(1025, serve(readable(header(VirtioBlk.T_IN, 2), 16), writable(data, 1024), writable(st, 1)));
        assertEquals(VirtioBlk.S_OK, memory.readByte(st));
        assertEquals(3, memory.readByte(data));
        assertEquals(4, memory.readByte(data + 1023));
        assertEquals(new VirtioBlk.State(8, false, 1, 0, 0, 0), blk.state());
    }

    @Test
    void theStatusIsTheLastByteOfTheLastBufferWhichMayAlsoHoldData() throws IOException {
        disk(8, false);
        long data = driver.allocate(513, UNTOUCHED);
        assertEquals(513, serve(readable(header(VirtioBlk.T_IN, 7), 16), writable(data, 513)));
        assertEquals(8, memory.readByte(data + 511));
        assertEquals(VirtioBlk.S_OK, memory.readByte(data + 512));
    }

    @Test
    void aWriteReachesTheImageAndReportsOnlyTheStatusByte() throws IOException {
        disk(8, false);
        long data = driver.allocate(512);
        byte[] pattern = new byte[512];
        Arrays.fill(pattern, (byte) 0x5a);
        memory.write(data, pattern);
        long st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_OUT, 5), 16), readable(data, 512), writable(st, 1)));
        assertEquals(VirtioBlk.S_OK, memory.readByte(st));
        byte[] content = Files.readAllBytes(image);
        assertArrayEquals(pattern, Arrays.copyOfRange(content, 5 * 512, 6 * 512));
        assertEquals(5, content[5 * 512 - 1], "the sector before is untouched");
        assertEquals(7, content[6 * 512], "the sector after is untouched");
        assertEquals(new VirtioBlk.State(8, false, 0, 1, 0, 0), blk.state());
    }

    @Test
    void aReadOnlyDiskRefusesWritesAndLeavesTheImage() throws IOException {
        disk(8, true);
        assertEquals((1L << VirtioBlk.F_FLUSH) | (1L << VirtioBlk.F_RO), blk.features());
        long data = driver.allocate(512, (byte) 0x77);
        long st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_OUT, 0), 16), readable(data, 512), writable(st, 1)));
        assertEquals(VirtioBlk.S_IOERR, memory.readByte(st));
        assertEquals(1, Files.readAllBytes(image)[0]);
        assertEquals(new VirtioBlk.State(8, true, 0, 0, 0, 1), blk.state());
    }

    @Test
    void aWritableDiskOffersFlushOnly() throws IOException {
        disk(1, false);
        assertEquals(1L << VirtioBlk.F_FLUSH, blk.features());
        assertEquals(2, blk.deviceId());
    }

    @Test
    void requestsEndingExactlyAtTheLastSectorAreServedOnePastAreNot() throws IOException {
        disk(8, false);
        long data = driver.allocate(512, UNTOUCHED);
        long st = status();
        assertEquals(513, serve(readable(header(VirtioBlk.T_IN, 7), 16), writable(data, 512), writable(st, 1)));
        assertEquals(VirtioBlk.S_OK, memory.readByte(st));
        assertEquals(8, memory.readByte(data));

        long two = driver.allocate(1024, UNTOUCHED);
        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_IN, 7), 16), writable(two, 1024), writable(st, 1)));
        assertEquals(VirtioBlk.S_IOERR, memory.readByte(st));
        assertEquals(UNTOUCHED, memory.readByte(two), "nothing is read for a refused request");

        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_IN, 8), 16), writable(data, 512), writable(st, 1)));
        assertEquals(VirtioBlk.S_IOERR, memory.readByte(st));

        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_IN, 8), 16), writable(st, 1)), "no data at the end: nothing to refuse");
        assertEquals(VirtioBlk.S_OK, memory.readByte(st));

        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_IN, 9), 16), writable(st, 1)));
        assertEquals(VirtioBlk.S_IOERR, memory.readByte(st));

        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_IN, -1), 16), writable(data, 512), writable(st, 1)));
        assertEquals(VirtioBlk.S_IOERR, memory.readByte(st));

        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_OUT, Long.MAX_VALUE), 16), readable(data, 512), writable(st, 1)));
        assertEquals(VirtioBlk.S_IOERR, memory.readByte(st));
        assertEquals(8 * 512, Files.size(image), "the image did not grow");
        assertEquals(new VirtioBlk.State(8, false, 2, 0, 0, 5), blk.state());
    }

    @Test
    void dataThatIsNotWholeSectorsIsAnIoError() throws IOException {
        disk(8, false);
        long data = driver.allocate(511, UNTOUCHED);
        long st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_IN, 0), 16), writable(data, 511), writable(st, 1)));
        assertEquals(VirtioBlk.S_IOERR, memory.readByte(st));
        assertEquals(UNTOUCHED, memory.readByte(data));
    }

    @Test
    void dataBuffersInTheWrongDirectionAreAnIoError() throws IOException {
        disk(8, false);
        // a read whose data buffer the device may not write
        long data = driver.allocate(512, UNTOUCHED);
        long st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_IN, 0), 16), readable(data, 512), writable(st, 1)));
        assertEquals(VirtioBlk.S_IOERR, memory.readByte(st));
        assertEquals(UNTOUCHED, memory.readByte(data));
        // a write whose data buffer is device-writable
        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_OUT, 0), 16), writable(data, 512), writable(st, 1)));
        assertEquals(VirtioBlk.S_IOERR, memory.readByte(st));
        assertEquals(1, Files.readAllBytes(image)[0]);
        // a write of whole sectors spread over two readable buffers is fine
        long a = driver.allocate(256, (byte) 0x11);
        long b = driver.allocate(256, (byte) 0x22);
        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_OUT, 1), 16), readable(a, 256), readable(b, 256), writable(st, 1)));
        assertEquals(VirtioBlk.S_OK, memory.readByte(st));
        byte[] content = Files.readAllBytes(image);
        assertEquals(0x11, content[512]);
        assertEquals(0x11, content[512 + 255]);
        assertEquals(0x22, content[512 + 256]);
        assertEquals(0x22, content[1023]);
    }

    @Test
    void aRequestWithNoPlaceForAStatusIsDroppedUnanswered() throws IOException {
        disk(8, false);
        long st = status();
        long before = driver.allocate(16, UNTOUCHED);
        assertEquals(0, serve(readable(header(VirtioBlk.T_IN, 0), 16)), "no writable buffer");
        assertEquals(0, serve(readable(header(VirtioBlk.T_IN, 0), 15), writable(st, 1)), "a header of 15 bytes");
        assertEquals(UNTOUCHED, memory.readByte(st));
        assertEquals(0, serve(writable(st, 1)), "no header at all");
        assertEquals(UNTOUCHED, memory.readByte(st));
        assertEquals(0, serve(readable(header(VirtioBlk.T_IN, 0), 16), writable(before + 8, 0)), "a status buffer of 0 bytes");
        assertEquals(UNTOUCHED, memory.readByte(before + 7), "nothing is written before an empty status buffer");
        assertEquals(new VirtioBlk.State(8, false, 0, 0, 0, 0), blk.state());
        // a header longer than 16 bytes is fine
        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_FLUSH, 0), 17), writable(st, 1)));
        assertEquals(VirtioBlk.S_OK, memory.readByte(st));
    }

    @Test
    void flushGetIdAndUnknownTypes() throws IOException {
        disk(8, false);
        long st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_FLUSH, 0), 16), writable(st, 1)));
        assertEquals(VirtioBlk.S_OK, memory.readByte(st));

        long id = driver.allocate(20, UNTOUCHED);
        st = status();
        assertEquals(21, serve(readable(header(VirtioBlk.T_GET_ID, 0), 16), writable(id, 20), writable(st, 1)));
        assertEquals(VirtioBlk.S_OK, memory.readByte(st));
        byte[] expected = new byte[20];
        byte[] name = "nxia:disk.img".getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(name, 0, expected, 0, name.length);
        assertArrayEquals(expected, memory.read(id, 20));

        long shortId = driver.allocate(19, UNTOUCHED);
        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_GET_ID, 0), 16), writable(shortId, 19), writable(st, 1)));
        assertEquals(VirtioBlk.S_UNSUPP, memory.readByte(st));
        assertEquals(UNTOUCHED, memory.readByte(shortId));

        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_GET_ID, 0), 16), writable(st, 1)), "no buffer for the id");
        assertEquals(VirtioBlk.S_UNSUPP, memory.readByte(st));

        long readableId = driver.allocate(20, UNTOUCHED);
        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_GET_ID, 0), 16), readable(readableId, 20), writable(st, 1)));
        assertEquals(VirtioBlk.S_UNSUPP, memory.readByte(st));
        assertEquals(UNTOUCHED, memory.readByte(readableId));

        st = status();
        assertEquals(1, serve(readable(header(99, 0), 16), writable(st, 1)));
        assertEquals(VirtioBlk.S_UNSUPP, memory.readByte(st));
        assertEquals(new VirtioBlk.State(8, false, 0, 0, 1, 4), blk.state());
    }

    @Test
    void anIdIsCutToTwentyBytes() throws IOException {
        image = dir.resolve("a-rather-long-image-name.img");
        Files.write(image, new byte[512]);
        blk = new VirtioBlk(memory, FileChannel.open(image, StandardOpenOption.READ), 512, true, image);
        driver = TestDriver.create(memory, 16, 0x1000);
        queue = driver.newQueue(0);
        long id = driver.allocate(32, UNTOUCHED);
        long st = status();
        assertEquals(21, serve(readable(header(VirtioBlk.T_GET_ID, 0), 16), writable(id, 32), writable(st, 1)));
        assertEquals("nxia:a-rather-long-i", new String(memory.read(id, 20), StandardCharsets.US_ASCII));
        assertEquals(UNTOUCHED, memory.readByte(id + 20));
    }

    @Test
    void readingPastTheEndOfAShorterFileGivesZeros() throws IOException {
        image = dir.resolve("short.img");
        byte[] one = new byte[512];
        Arrays.fill(one, (byte) 9);
        Files.write(image, one);
        // the capacity says two sectors; the file has one (a block device whose size the JDK read larger)
        blk = new VirtioBlk(memory, FileChannel.open(image, StandardOpenOption.READ), 1024, true, image);
        driver = TestDriver.create(memory, 16, 0x1000);
        queue = driver.newQueue(0);
        long data = driver.allocate(1024, UNTOUCHED);
        long st = status();
        assertEquals(1025, serve(readable(header(VirtioBlk.T_IN, 0), 16), writable(data, 1024), writable(st, 1)));
        assertEquals(VirtioBlk.S_OK, memory.readByte(st));
        assertEquals(9, memory.readByte(data + 511));
        byte[] rest = memory.read(data + 512, 512);
        assertArrayEquals(new byte[512], rest);
    }

    @Test
    void requestsWorkInRamThatDoesNotStartAtZero() throws IOException {
        memory = GuestMemory.of(0x4000_0000L, MemorySegment.ofArray(new byte[256 * 1024]));
        image = dir.resolve("disk.img");
        byte[] content = new byte[2048];
        Arrays.fill(content, 1024, 1536, (byte) 3);
        Files.write(image, content);
        blk = new VirtioBlk(memory, FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE), 2048, false, image);
        driver = TestDriver.create(memory, 16, 0x4000_1000L);
        queue = driver.newQueue(0);
        long data = driver.allocate(512, UNTOUCHED);
        long st = status();
        assertEquals(513, serve(readable(header(VirtioBlk.T_IN, 2), 16), writable(data, 512), writable(st, 1)));
        assertEquals(3, memory.readByte(data));
        assertEquals(3, memory.readByte(data + 511));
        memory.write(data, new byte[] {42});
        st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_OUT, 0), 16), readable(data, 512), writable(st, 1)));
        assertEquals(42, Files.readAllBytes(image)[0]);
    }

    @Test
    void theConfigSpaceIsTheCapacityInSectorsThenZeros() throws IOException {
        image = dir.resolve("big.img");
        Files.write(image, new byte[512]);
        // a capacity whose every byte differs: 0x0807060504030201 bytes / 512
        long sectors = 0x0007_0605_0403_0201L;
        blk = new VirtioBlk(memory, FileChannel.open(image, StandardOpenOption.READ), sectors * 512, true, image);
        assertEquals(sectors, blk.readConfig(0, 8));
        assertEquals(0x0403_0201L, blk.readConfig(0, 4));
        assertEquals(0x0007_0605L, blk.readConfig(4, 4));
        assertEquals(0x02, blk.readConfig(1, 1));
        assertEquals(0x0706, blk.readConfig(5, 2));
        assertEquals(0x07, blk.readConfig(6, 4), "bytes past the capacity read as zero");
        assertEquals(0, blk.readConfig(8, 8));
    }

    @Test
    void aSnapshotIsRestoredOnlyOntoAnImageOfTheSameSize() throws IOException {
        disk(8, false);
        byte[] saved = blk.saveState();
        blk.checkState(saved).run();
        VirtioBlk other = new VirtioBlk(memory, FileChannel.open(image, StandardOpenOption.READ), 16 * 512, true, image);
        try {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> other.checkState(saved));
            assertTrue(e.getMessage().contains("the guest knows a disk of 8 sectors; the image now has 16"), e.getMessage());
        } finally {
            other.close();
        }
        byte[] longer = SavedStateCodec.writer(VirtioBlk.SAVED_KIND, 1).i64(8).i32(0).toBytes();
        assertThrows(IllegalArgumentException.class, () -> blk.checkState(longer));
    }

    @Test
    void anIdBufferMayAlsoHoldTheStatus() throws IOException {
        disk(1, false);
        long idAndStatus = driver.allocate(21, UNTOUCHED);
        assertEquals(21, serve(readable(header(VirtioBlk.T_GET_ID, 0), 16), writable(idAndStatus, 21)));
        assertEquals("nxia:disk.img", new String(memory.read(idAndStatus, 13), StandardCharsets.US_ASCII));
        assertEquals(VirtioBlk.S_OK, memory.readByte(idAndStatus + 20));
    }

    @Test
    void theDataInTheStatusBufferCountsAgainstTheDisksEnd() throws IOException {
        disk(8, false);
        long buffer = driver.allocate(1025, UNTOUCHED);
        assertEquals(1, serve(readable(header(VirtioBlk.T_IN, 7), 16), writable(buffer, 1025)));
        assertEquals(VirtioBlk.S_IOERR, memory.readByte(buffer + 1024));
        assertEquals(UNTOUCHED, memory.readByte(buffer));
    }

    @Test
    void anEmptyBufferInTheOtherDirectionIsNoData() throws IOException {
        disk(8, false);
        long data = driver.allocate(512, UNTOUCHED);
        long st = status();
        // an empty readable buffer among a read's data buffers carries nothing the wrong way
        driver.addChain(readable(header(VirtioBlk.T_IN, 3), 16), readable(driver.allocate(16), 0), writable(data, 512), writable(st, 1));
        DescriptorChain chain = queue.next();
        int head = chain.head();
        assertEquals(513, blk.serve(chain));
        queue.pushUsed(head, 0);
        assertEquals(VirtioBlk.S_OK, memory.readByte(st));
        assertEquals(4, memory.readByte(data));
    }

    @Test
    void aWriteLeavesTheGuestsBufferAsItWas() throws IOException {
        disk(8, false);
        long data = driver.allocate(512, (byte) 0x3c);
        long st = status();
        assertEquals(1, serve(readable(header(VirtioBlk.T_OUT, 2), 16), readable(data, 512), writable(st, 1)));
        assertEquals(VirtioBlk.S_OK, memory.readByte(st));
        byte[] expected = new byte[512];
        Arrays.fill(expected, (byte) 0x3c);
        assertArrayEquals(expected, memory.read(data, 512));
        assertArrayEquals(expected, Arrays.copyOfRange(Files.readAllBytes(image), 1024, 1536));
    }

    @Test
    void onlyBlockDevicesAreBlockDevices() throws IOException {
        Path file = Files.write(dir.resolve("file.img"), new byte[512]);
        assertEquals(false, VirtioBlkFactory.isBlockDevice(file));
        assertEquals(false, VirtioBlkFactory.isBlockDevice(Path.of("/dev/null")), "a character device");
        assertEquals(false, VirtioBlkFactory.isBlockDevice(dir.resolve("missing")));
        Path block = null;
        try (var devices = Files.list(Path.of("/dev"))) {
            for (Path p : (Iterable<Path>) devices::iterator) {
                if (p.getFileName().toString().matches("loop[0-9]+")) {
                    block = p;
                    break;
                }
            }
        }
        org.junit.jupiter.api.Assumptions.assumeTrue(block != null, "no /dev/loopN here");
        assertEquals(true, VirtioBlkFactory.isBlockDevice(block), block.toString());
    }
}
