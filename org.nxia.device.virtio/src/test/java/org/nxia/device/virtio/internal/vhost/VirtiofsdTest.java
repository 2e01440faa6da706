package org.nxia.device.virtio.internal.vhost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.device.virtio.internal.sys.Sys;
import org.nxia.vmm.spi.GuestMemory;

/**
 * The vhost-user front-end against Debian's virtiofsd (QEMU's, in qemu-system-common): it maps
 * "guest RAM" (a memfd here, as the VM's is) from the fds we send, takes FUSE requests from a
 * split virtqueue we fill as a guest driver would, and answers with a host file's attributes and
 * bytes. No VM: the guest side is {@link TestDriver} on the shared memory.
 */
class VirtiofsdTest {

    static final Path VIRTIOFSD = Path.of("/usr/lib/qemu/virtiofsd");
    static final long RAM = 16 << 20;
    static final long VERSION_1 = 1L << 32;
    static final int REQUEST_QUEUE = 1;   // queue 0 is the high-priority queue
    static final int FUSE_LOOKUP = 1, FUSE_OPEN = 14, FUSE_READ = 15, FUSE_INIT = 26;
    static final String TEXT = "hello from the host's directory\n";

    @TempDir
    Path dir;
    Process virtiofsd;
    Arena arena;
    int memfd = -1, kick = -1, call = -1;
    long unique;

    @BeforeEach
    void start() throws IOException {
        assertTrue(Files.isExecutable(VIRTIOFSD), VIRTIOFSD + " is missing: apt-get install qemu-system-common (tools/need.sh test installs it)");
        Path shared = Files.createDirectories(dir.resolve("shared"));
        Files.writeString(shared.resolve("hello.txt"), TEXT);
        virtiofsd = new ProcessBuilder(VIRTIOFSD.toString(), "--socket-path=" + dir.resolve("vfs.sock"), "-o", "source=" + shared,
                "-o", "cache=none", "-o", "sandbox=chroot", "-o", "log_level=warn")
                .redirectErrorStream(true).redirectOutput(dir.resolve("virtiofsd.log").toFile()).start();
        arena = Arena.ofShared();
    }

    @AfterEach
    void stop() throws Exception {
        virtiofsd.destroyForcibly().waitFor();
        Sys.close(kick);
        Sys.close(call);
        Sys.close(memfd);
        arena.close();
    }

    private String log() throws IOException {
        return Files.readString(dir.resolve("virtiofsd.log"));
    }

    /** Connects, negotiates and sets up the request queue on a fresh memfd; the driver side of the queue. */
    private TestDriver connect(VhostUserFrontend f) throws IOException {
        long features = f.getFeatures();
        assertTrue((features & VERSION_1) != 0 && (features & VhostUserFrontend.F_PROTOCOL_FEATURES) != 0,
                "virtiofsd offers VIRTIO_F_VERSION_1 and protocol features: 0x" + Long.toHexString(features));
        f.setFeatures(VERSION_1 | VhostUserFrontend.F_PROTOCOL_FEATURES);
        f.setProtocolFeatures(f.getProtocolFeatures());
        f.setOwner();
        memfd = Sys.memfd("guest-ram", RAM);
        MemorySegment ram = Sys.mapShared(memfd, RAM, arena);
        f.setMemTable(List.of(new VhostUserFrontend.Region(0, RAM, ram.address(), memfd, 0)));
        TestDriver driver = new TestDriver(GuestMemory.of(0, ram), 16, 0x1000, 0x2000, 0x3000, 0x10000);
        kick = Sys.eventfd();
        call = Sys.eventfd();
        f.setVringNum(REQUEST_QUEUE, driver.size());
        f.setVringBase(REQUEST_QUEUE, 0);
        f.setVringAddr(REQUEST_QUEUE, ram.address() + driver.descriptorTable(), ram.address() + driver.usedRing(),
                ram.address() + driver.availRing());
        f.setVringKick(REQUEST_QUEUE, kick);
        f.setVringCall(REQUEST_QUEUE, call);
        f.setVringEnable(REQUEST_QUEUE, true);
        return driver;
    }

    /** One FUSE request through the queue: the reply's bytes (out header first). */
    private ByteBuffer fuse(TestDriver driver, int opcode, long node, byte[] body, int replyBytes) throws IOException {
        ByteBuffer in = ByteBuffer.allocate(40 + body.length).order(ByteOrder.LITTLE_ENDIAN);
        in.putInt(40 + body.length).putInt(opcode).putLong(++unique).putLong(node).putInt(0).putInt(0).putInt(1).putInt(0).put(body);
        long request = driver.allocate(in.capacity());
        driver.memory().write(request, in.array());
        long reply = driver.allocate(replyBytes);
        driver.publish(driver.addChain(Buffer.readable(request, in.capacity()), Buffer.writable(reply, replyBytes)));
        int usedBefore = driver.usedIdx();
        Sys.signal(kick, 1);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (driver.usedIdx() == usedBefore) {
            assertTrue(System.nanoTime() < deadline && Sys.awaitReadable(call, 10_000), "no answer to FUSE opcode " + opcode + ": " + log());
            Sys.drain(call);
        }
        ByteBuffer out = ByteBuffer.wrap(driver.memory().read(reply, replyBytes)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(unique, out.getLong(8), "the reply answers this request");
        assertEquals(0, out.getInt(4), "FUSE error of opcode " + opcode);
        return out;
    }

    @Test
    void virtiofsdServesAHostFileThroughTheQueue() throws Exception {
        try (VhostUserFrontend f = VhostUserFrontend.connect(dir.resolve("vfs.sock"), Duration.ofSeconds(10), Duration.ofSeconds(5))) {
            TestDriver driver = connect(f);
            ByteBuffer init = fuse(driver, FUSE_INIT, 0, le(64).putInt(7).putInt(31).array(), 16 + 64);
            assertEquals(7, init.getInt(16), "FUSE major version");

            byte[] name = "hello.txt\0".getBytes(StandardCharsets.US_ASCII);
            ByteBuffer entry = fuse(driver, FUSE_LOOKUP, 1, name, 16 + 128);
            long node = entry.getLong(16);
            assertEquals(TEXT.length(), entry.getLong(16 + 48), "the file's size, as the host has it");

            ByteBuffer open = fuse(driver, FUSE_OPEN, node, le(8).putInt(0).array(), 16 + 16);   // O_RDONLY
            long handle = open.getLong(16);
            ByteBuffer read = fuse(driver, FUSE_READ, node, le(40).putLong(handle).putLong(0).putInt(4096).array(), 16 + 4096);
            int length = read.getInt(0) - 16;
            assertEquals(TEXT, new String(read.array(), 16, length, StandardCharsets.UTF_8));
        }
    }

    @Test
    void aBackEndThatGoesAwayFailsTheNextRequestWithinItsDeadline() throws Exception {
        try (VhostUserFrontend f = VhostUserFrontend.connect(dir.resolve("vfs.sock"), Duration.ofSeconds(10), Duration.ofSeconds(5))) {
            f.getFeatures();
            virtiofsd.destroyForcibly().waitFor();
            IOException e = assertThrows(IOException.class, f::getFeatures);
            assertTrue(e.getMessage().contains("closed the connection") || e.getMessage().contains("sending request"), e.getMessage());
            assertTrue(assertThrows(IOException.class, f::getFeatures).getMessage().contains("broke earlier"));
        }
    }

    @Test
    void noBackEndIsReportedAfterTheConnectTimeout() {
        IOException e = assertThrows(IOException.class,
                () -> VhostUserFrontend.connect(dir.resolve("none.sock"), Duration.ofMillis(200), Duration.ofSeconds(1)));
        assertTrue(e.getMessage().contains("not reachable within 200 ms"), e.getMessage());
    }

    private static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }
}
