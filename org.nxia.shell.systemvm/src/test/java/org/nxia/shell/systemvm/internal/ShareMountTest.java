package org.nxia.shell.systemvm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.Execution;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.OutputSink;
import org.nxia.control.api.SystemVm;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.device.Device;

/**
 * vm:exec --share's mount in the guest: a mount that never ends (its FUSE requests unanswered:
 * issue 14 §3, where vm:exec then waited forever) stops the VM after its limit and says so with
 * the device's counters; a failed one says the guest's error.
 */
class ShareMountTest {

    /** The state a virtio-fs device reports. */
    record FsState(long kicksPassed, long interrupts) {
    }

    /** A System VM whose agent runs the mount as {@code exit} says, its stderr {@code stderr}. */
    private static final class Vm implements SystemVm {
        final CompletableFuture<ExitStatus> exit;
        final String stderr;
        ExecRequest started;
        int closed;

        Vm(CompletableFuture<ExitStatus> exit, String stderr) {
            this.exit = exit;
            this.stderr = stderr;
        }

        @Override
        public VirtualMachine vm() {
            Device fs = new Device() {
                @Override
                public String type() {
                    return "virtio-fs";
                }

                @Override
                public Record state() {
                    return new FsState(3, 0);
                }
            };
            return fake(VirtualMachine.class, (name, args) -> name.equals("devices") ? List.of(fs) : null);
        }

        @Override
        public AgentSession session() {
            return fake(AgentSession.class, (name, args) -> {
                if (!name.equals("start")) {
                    throw new UnsupportedOperationException(name);
                }
                started = (ExecRequest) args[0];
                byte[] err = stderr.getBytes(StandardCharsets.UTF_8);
                ((OutputSink) args[1]).output(true, err, 0, err.length);
                return fake(Execution.class, (n, a) -> n.equals("exit") ? exit : null);
            });
        }

        @Override
        public Duration readyAfter() {
            return Duration.ZERO;
        }

        @Override
        public void close() {
            closed++;
        }
    }

    interface Answer {
        Object answer(String method, Object[] args) throws Exception;
    }

    private static <T> T fake(Class<T> type, Answer answer) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type},
                (proxy, method, args) -> answer.answer(method.getName(), args)));
    }

    @Test
    @Timeout(value = 20, unit = TimeUnit.SECONDS)
    void aMountThatNeverEndsStopsTheVmAfterItsLimitSayingWhy() {
        Vm vm = new Vm(new CompletableFuture<>(), "");
        long start = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> SystemVmCommands.mountShare(vm, Duration.ofMillis(300)));
        assertTrue(System.nanoTime() - start >= 300_000_000L, "it waited its limit");
        assertTrue(e.getMessage().contains("did not end within") && e.getMessage().contains("kicksPassed=3"), e.getMessage());
        assertEquals(1, vm.closed, "the VM is stopped");
        assertEquals(List.of("sh", "-c", SystemVmCommands.MOUNT_SCRIPT), vm.started.argv());
        assertTrue(SystemVmCommands.MOUNT_SCRIPT.endsWith("; done; mkdir -p /mnt/host && mount -t virtiofs host /mnt/host"));
    }

    @Test
    void aFailedMountStopsTheVmWithTheGuestsError() {
        Vm vm = new Vm(CompletableFuture.completedFuture(ExitStatus.exited(32)), "mount: wrong fs type\n");
        IOException e = assertThrows(IOException.class, () -> SystemVmCommands.mountShare(vm, Duration.ofSeconds(5)));
        assertTrue(e.getMessage().endsWith("failed: mount: wrong fs type; the device (lastError says why it failed): FsState[kicksPassed=3,"
                + " interrupts=0]"), e.getMessage());
        assertEquals(1, vm.closed);
    }

    /** The guest script's check, run by this host's sh on a sysfs of files; the mount itself replaced by an echo. */
    private static ProcessResult mountScript(java.nio.file.Path sysfs) throws Exception {
        String script = SystemVmCommands.MOUNT_SCRIPT.replace("/sys/bus/virtio/devices", sysfs.toString())
                .replace("mkdir -p /mnt/host && mount -t virtiofs host /mnt/host", "echo mounting");
        Process p = new ProcessBuilder("sh", "-c", script).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        return new ProcessResult(p.waitFor(), out, err);
    }

    record ProcessResult(int status, String out, String err) {
    }

    private static void device(java.nio.file.Path sysfs, String name, String id, String status) throws IOException {
        java.nio.file.Path d = java.nio.file.Files.createDirectories(sysfs.resolve(name));
        java.nio.file.Files.writeString(d.resolve("device"), id + "\n");
        java.nio.file.Files.writeString(d.resolve("status"), status + "\n");
    }

    @Test
    void theGuestDoesNotMountFromADeviceThatNeedsAReset(@org.junit.jupiter.api.io.TempDir java.nio.file.Path sysfs) throws Exception {
        device(sysfs, "virtio0", "0x0013", "0x0000004f");   // vsock, needing a reset: not ours to judge
        device(sysfs, "virtio1", "0x001a", "0x0000000f");
        ProcessResult ok = mountScript(sysfs);
        assertEquals(new ProcessResult(0, "mounting\n", ""), ok, "a virtio-fs device that works is mounted");
        device(sysfs, "virtio1", "0x001a", "0x0000004f");   // DRIVER_OK | ... | DEVICE_NEEDS_RESET
        ProcessResult refused = mountScript(sysfs);
        assertEquals(new ProcessResult(1, "", "the virtio-fs device virtio1 needs a reset (DEVICE_NEEDS_RESET): its back-end failed\n"),
                refused);
    }

    @Test
    void aMountThatSucceedsLeavesTheVmRunning() throws Exception {
        Vm vm = new Vm(CompletableFuture.completedFuture(ExitStatus.exited(0)), "");
        SystemVmCommands.mountShare(vm, Duration.ofSeconds(5));
        assertEquals(0, vm.closed);
    }
}
