package org.nxia.itest;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.device.virtio.vsock.VsockEndpoint;
import org.nxia.device.virtio.vsock.VsockListener;
import org.nxia.device.virtio.vsock.VsockStream;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * The virtio-vsock guest on /dev/kvm: it connects to a host echo server and
 * checks the echo, then echoes what a host client sends it, once over the
 * device's Unix sockets and once over the Java API.
 */
@RunWith(KvmRequirement.class)
@ExamReactorStrategy(PerClass.class)
public class VsockTest {

    static final int HOST_PORT = 5000;
    static final int GUEST_PORT = 6000;

    @Inject
    VmManager vms;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    private static VmProfile guest(byte[] input, String device) {
        return VmProfile.of(Path.of(System.getProperty("nxia.guest.images"), "virtio-vsock.elf"))
                .withMemory(4 * VmProfile.MIB).withTimeout(Duration.ofSeconds(120))
                .withInput(input).withArg(HOST_PORT | ((long) GUEST_PORT << 32))
                .withDevices(List.of(DeviceConfig.parse(device)));
    }

    @Test
    public void guestEchoesOverTheUnixSocketsBothWays() throws Exception {
        Path dir = Files.createTempDirectory("vs");
        Path uds = dir.resolve("v.sock");
        byte[] input = bytes(1, 64 * 1024);
        byte[] sent = bytes(2, 100_000);
        try (ServerSocketChannel echo = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            echo.bind(UnixDomainSocketAddress.of(dir.resolve("v.sock_" + HOST_PORT)));
            CompletableFuture<Long> echoed = CompletableFuture.supplyAsync(() -> {
                try (SocketChannel s = echo.accept()) {
                    return echo(s);
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            });
            VirtualMachine vm = vms.create(guest(input, "virtio-vsock:cid=7,uds=" + uds));
            try {
                vm.start();
                waitForListening(vm);
                System.out.println("vsock uds: the guest listens");
                byte[] back;
                try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(uds))) {
                    client.write(ByteBuffer.wrap(("CONNECT " + GUEST_PORT + "\n").getBytes(StandardCharsets.US_ASCII)));
                    String ok = readLine(client);
                    assertTrue(ok, ok.startsWith("OK "));
                    back = roundTrip(client, sent, client::shutdownOutput);
                }
                VmResult r = vm.await(Duration.ofSeconds(120));
                System.out.println("virtio-vsock (uds): " + r.reason() + " " + r.exitStatus() + "\n" + vm.console());
                assertTrue(r.detail() + "\n" + vm.console(), r.succeeded());
                assertEquals("the host echo server saw the guest's input", input.length, (long) echoed.get(10, TimeUnit.SECONDS));
                assertTrue(vm.console(), vm.console().contains(input.length + " bytes echoed by host port " + HOST_PORT));
                assertArrayEquals("the guest echoed every byte the host client sent", sent, back);
                assertArrayEquals(Arrays.copyOf(sent, r.output().length), r.output());
            } finally {
                vms.destroy(vm.id());
            }
        } finally {
            Files.deleteIfExists(dir.resolve("v.sock_" + HOST_PORT));
            Files.deleteIfExists(uds);
            Files.deleteIfExists(dir);
        }
    }

    @Test
    public void guestEchoesOverTheJavaApiBothWays() throws Exception {
        byte[] input = bytes(3, 10_000);
        byte[] sent = bytes(4, 300_000);
        VirtualMachine vm = vms.create(guest(input, "virtio-vsock"));
        try {
            VsockEndpoint host = (VsockEndpoint) vm.devices().get(0);
            assertEquals(3, host.guestCid());
            try (VsockListener listener = host.listen(HOST_PORT)) {
                vm.start();
                VsockStream served = listener.accept(Duration.ofSeconds(120));
                assertTrue("the guest connected to the Java listener\n" + vm.console(), served != null);
                System.out.println("vsock java: the guest connected");
                assertEquals(input.length, (long) CompletableFuture.supplyAsync(() -> {
                    try {
                        return echo(served);
                    } catch (IOException e) {
                        throw new IllegalStateException(e);
                    }
                }).get(120, TimeUnit.SECONDS));
                served.close();
            }
            waitForListening(vm);
            byte[] back;
            try (VsockStream stream = host.connect(GUEST_PORT, Duration.ofSeconds(60))) {
                back = roundTrip(stream, sent, stream::shutdownOutput);
            }
            VmResult r = vm.await(Duration.ofSeconds(120));
            System.out.println("virtio-vsock (java): " + r.reason() + " " + r.exitStatus() + "\n" + vm.console());
            assertTrue(r.detail() + "\n" + vm.console(), r.succeeded());
            assertArrayEquals(sent, back);
        } finally {
            vms.destroy(vm.id());
        }
    }

    static byte[] bytes(long seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static void waitForListening(VirtualMachine vm) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!vm.console().contains("listening on port " + GUEST_PORT)) {
            assertTrue("the guest never listened:\n" + vm.console(), System.nanoTime() < end);
            Thread.sleep(20);
        }
    }

    /** Echoes until end of stream; returns the bytes echoed. */
    static long echo(ByteChannel s) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8192);
        long total = 0;
        int n;
        while ((n = s.read(b)) >= 0) {
            total += n;
            b.flip();
            while (b.hasRemaining()) {
                s.write(b);
            }
            b.clear();
        }
        return total;
    }

    interface Shutdown {
        void run() throws IOException;
    }

    /** Writes {@code data} from another thread while reading the echo, then ends the stream; returns what came back. */
    static byte[] roundTrip(ByteChannel ch, byte[] data, Shutdown shutdown) throws Exception {
        CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
            try {
                ByteBuffer b = ByteBuffer.wrap(data);
                while (b.hasRemaining()) {
                    ch.write(b);
                }
                shutdown.run();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        });
        CompletableFuture<byte[]> reader = CompletableFuture.supplyAsync(() -> {
            ByteBuffer back = ByteBuffer.allocate(data.length + 1);
            try {
                while (back.hasRemaining() && ch.read(back) >= 0) {
                    // read until the guest closes
                }
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            return Arrays.copyOf(back.array(), back.position());
        });
        writer.get(120, TimeUnit.SECONDS);
        return reader.get(120, TimeUnit.SECONDS);
    }

    static String readLine(SocketChannel ch) throws IOException {
        StringBuilder line = new StringBuilder();
        ByteBuffer one = ByteBuffer.allocate(1);
        while (ch.read(one) > 0) {
            char c = (char) one.get(0);
            one.clear();
            if (c == '\n') {
                break;
            }
            line.append(c);
        }
        return line.toString();
    }
}
