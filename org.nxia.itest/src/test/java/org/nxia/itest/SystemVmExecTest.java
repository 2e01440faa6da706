package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlConnector;
import org.nxia.control.api.ExecResult;
import org.nxia.device.virtio.vsock.VsockUnixClient;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * Boots the System VM with a virtio-vsock device, reaches its control agent
 * (vsock port 1024) through the device's host Unix socket and runs a program
 * in the guest: the whole host-to-guest exec path under a real Linux driver.
 * With a virtio-rng device too, both devices' kicks must arrive through
 * ioeventfd doorbells (hardware KVM has them), not MMIO exits.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsKernel
@ExamReactorStrategy(PerClass.class)
public class SystemVmExecTest {

    static final int AGENT_PORT = 1024;

    @Inject
    VmManager vms;

    @Inject
    ControlConnector connector;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void runsAProgramInTheGuestOverVsock() throws Exception {
        byte[] secret = new byte[32];
        new SecureRandom().nextBytes(secret);
        Path dir = Files.createTempDirectory("nxia-exec");
        Path uds = dir.resolve("vm.sock");
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(1).withMemory(256L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT)
                .withCmdline("nxia.secret=" + HexFormat.of().formatHex(secret))
                .withDevices(List.of(DeviceConfig.parse("virtio-vsock:cid=3,uds=" + uds), DeviceConfig.parse("virtio-rng")));
        VirtualMachine vm = vms.create(profile);
        long start = System.nanoTime();
        try {
            vm.start();
            long deadline = start + LinuxBootTest.BOOT_LIMIT.toNanos();
            int shown = 0;
            while (!vm.console().contains(LinuxBootTest.READY)) {
                String text = vm.console();  // as it comes: a rig run may be cut short
                if (text.length() > shown) {
                    System.out.print(text.substring(shown));
                    shown = text.length();
                }
                if (vm.result().isPresent() || System.nanoTime() > deadline)
                    failWith(vm, "no '" + LinuxBootTest.READY + "' line");
                Thread.sleep(200);
            }
            long readyMs = (System.nanoTime() - start) / 1_000_000;
            System.out.println("SystemVmExecTest: agent ready after " + readyMs + " ms; CONNECT " + AGENT_PORT);
            long t0 = System.nanoTime();
            SocketChannel ch;
            try {
                ch = VsockUnixClient.connect(uds, AGENT_PORT, Duration.ofSeconds(90));
            } catch (IOException e) {
                failWith(vm, "vsock CONNECT " + AGENT_PORT + " failed: " + e);
                return;
            }
            Thread watchdog = closeAfter(ch, Duration.ofMinutes(3));  // a stalled session fails the test, not the run
            try (AgentSession s = connector.connect(ch, secret)) {
                long sessionMs = (System.nanoTime() - t0) / 1_000_000;
                assertTrue("the agent runs as init: " + s.agent(), s.agentIsInit());
                long t1 = System.nanoTime();
                ExecResult r = s.exec("/bin/busybox", "echo", "hi");
                long execMs = (System.nanoTime() - t1) / 1_000_000;
                assertFalse(r.status().toString(), r.status().signaled());
                assertEquals("exit status; stderr " + r.stderrText(), 0, r.status().code());
                assertEquals("hi\n", r.stdoutText());
                ExecResult f = s.exec("/bin/busybox", "false");
                assertEquals(1, f.status().code());
                System.out.println("SystemVmExecTest: ready after " + readyMs + " ms, session in " + sessionMs
                        + " ms, exec echo in " + execMs + " ms (" + s.agent() + ")");
                assertKicksByDoorbell(vm);
                s.shutdown();  // syncs and powers off; without ACPI the halted VM is then ours to stop
            } catch (IOException e) {
                failWith(vm, "the control session failed" + (watchdog.isAlive() ? "" : " (stalled 3 minutes)") + ": " + e);
            } finally {
                watchdog.interrupt();
            }
            vm.stop();
            VmResult r = vm.await(Duration.ofSeconds(30));
            System.out.println("SystemVmExecTest: " + r.reason() + " " + r.detail() + " after " + r.runTime().toMillis() + " ms");
        } finally {
            vms.destroy(vm.id());
        }
    }

    /** Every virtio device of {@code vm} has its doorbell on and took kicks through it; prints the counters. */
    private static void assertKicksByDoorbell(VirtualMachine vm) {
        java.util.Map<String, Long> counters = vm.info().counters();
        System.out.println("SystemVmExecTest: mmio_exits " + counters.get("mmio_exits") + ", ioeventfd_doorbells "
                + counters.get("ioeventfd_doorbells") + ", ioeventfd_writes " + counters.get("ioeventfd_writes"));
        java.util.regex.Pattern kicks = java.util.regex.Pattern.compile("kicksByDoorbell=(\\d+)");
        for (var device : vm.devices()) {
            if (!device.type().startsWith("virtio-")) {
                continue;
            }
            String state = device.state().toString();
            System.out.println("SystemVmExecTest: " + state);
            assertTrue(device.type() + " kicks by doorbell: " + state, state.contains("notifyPath=ioeventfd"));
            java.util.regex.Matcher m = kicks.matcher(state);
            assertTrue(state, m.find() && Long.parseLong(m.group(1)) > 0);
        }
        assertTrue("the doorbells took the kicks: " + counters, counters.get("ioeventfd_writes") > 0);
    }

    /** A thread that closes {@code ch} after {@code limit} unless interrupted first. */
    static Thread closeAfter(SocketChannel ch, Duration limit) {
        return Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(limit);
                ch.close();
            } catch (InterruptedException | IOException e) {
                // interrupted: done in time
            }
        });
    }

    private static void failWith(VirtualMachine vm, String what) throws Exception {
        vm.stop();
        VmResult r = vm.await(Duration.ofSeconds(10));
        fail(what + ": the VM ended " + r.reason() + " (" + r.detail() + ") after " + r.runTime().toSeconds()
                + " s; devices: " + vm.devices().stream().map(d -> describe(d.state())).toList() + "; console:\n" + vm.console());
    }

    /** A device state record with its arrays (the virtqueues' states) spelled out. */
    static String describe(Object o) {
        if (o instanceof Object[] a)
            return java.util.Arrays.stream(a).map(SystemVmExecTest::describe).toList().toString();
        if (!(o instanceof Record r))
            return String.valueOf(o);
        StringBuilder b = new StringBuilder(r.getClass().getSimpleName()).append('[');
        for (var c : r.getClass().getRecordComponents()) {
            try {
                c.getAccessor().setAccessible(true);
                b.append(c.getName()).append('=').append(describe(c.getAccessor().invoke(r))).append(", ");
            } catch (ReflectiveOperationException | RuntimeException e) {
                b.append(c.getName()).append("=?, ");
            }
        }
        return b.append(']').toString();
    }
}
