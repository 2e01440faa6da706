package org.nxia.device.virtio.internal.vhost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.device.virtio.internal.queue.TestDriver;
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
    static final String TEXT = "hello from the host's directory\n";

    @TempDir
    Path dir;
    Process virtiofsd;
    Arena arena;
    int memfd = -1;
    Sys.EventFd kick, call;

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
        if (kick != null) {
            kick.close();
        }
        if (call != null) {
            call.close();
        }
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
        kick = new Sys.EventFd();
        call = new Sys.EventFd();
        f.setVringNum(REQUEST_QUEUE, driver.size());
        f.setVringBase(REQUEST_QUEUE, 0);
        f.setVringAddr(REQUEST_QUEUE, ram.address() + driver.descriptorTable(), ram.address() + driver.usedRing(),
                ram.address() + driver.availRing());
        f.setVringKick(REQUEST_QUEUE, kick.fd());
        f.setVringCall(REQUEST_QUEUE, call.fd());
        f.setVringEnable(REQUEST_QUEUE, true);
        return driver;
    }

    private FuseClient fuse(TestDriver driver) {
        return new FuseClient(driver, new FuseClient.Channel() {
            @Override
            public void kick() throws IOException {
                assertTrue(kick.signal(), "the kick reached its eventfd");
            }

            @Override
            public void awaitUsed(TestDriver d, int usedBefore) throws IOException {
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (d.usedIdx() == usedBefore) {
                    assertTrue(System.nanoTime() < deadline, "no answer from virtiofsd: " + log());
                    call.await(1000);
                }
            }
        });
    }

    @Test
    void virtiofsdServesAHostFileThroughTheQueue() throws Exception {
        try (VhostUserFrontend f = VhostUserFrontend.connect(dir.resolve("vfs.sock"), Duration.ofSeconds(10), Duration.ofSeconds(5))) {
            FuseClient fuse = fuse(connect(f));
            assertEquals(7, fuse.init(), "FUSE major version");
            long[] file = fuse.lookup("hello.txt");
            assertEquals(TEXT.length(), file[1], "the file's size, as the host has it");
            assertEquals(TEXT, fuse.read(file[0], 4096));
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
}
