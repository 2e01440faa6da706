package org.nxia.shell.systemvm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.felix.service.command.CommandSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.Execution;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.OutputSink;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VirtualMachine;

/**
 * vm:exec's time limit without a VM: a fake launcher whose System VM's agent runs a program that
 * ends when {@code exit} says. A one-shot exec's VM gets -t (10m by default) as its profile's
 * timeout and the wait for the program ends there, stopping the VM and saying so; a kept VM or a
 * program on a terminal has no limit unless -t gives one.
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class ExecLimitTest {

    private final List<String> calls = new CopyOnWriteArrayList<>();
    private volatile LinuxProfile booted;

    /** A System VM whose agent starts each program with {@code exit} as its end and "out" as its output. */
    private final class Vm implements SystemVm {
        final CompletableFuture<ExitStatus> exit;

        Vm(CompletableFuture<ExitStatus> exit) {
            this.exit = exit;
        }

        @Override
        public VirtualMachine vm() {
            return fake(VirtualMachine.class, (name, args) -> switch (name) {
                case "id" -> "vm-1";
                default -> null;
            });
        }

        @Override
        public AgentSession session() {
            return fake(AgentSession.class, (name, args) -> switch (name) {
                case "start" -> {
                    calls.add("start " + ((ExecRequest) args[0]).argv());
                    byte[] out = "out".getBytes(StandardCharsets.UTF_8);
                    ((OutputSink) args[1]).output(false, out, 0, out.length);
                    yield fake(Execution.class, (n, a) -> {
                        if (n.equals("signal")) {
                            calls.add("signal " + a[0]);
                        }
                        return n.equals("exit") ? exit : null;
                    });
                }
                case "exec" -> {
                    calls.add("exec " + ((ExecRequest) args[0]).argv());
                    yield new ExecResult(exit.get(), new byte[0], new byte[0], false);
                }
                default -> throw new UnsupportedOperationException(name);
            });
        }

        @Override
        public Duration readyAfter() {
            return Duration.ZERO;
        }

        @Override
        public void close() {
            calls.add("close");
        }
    }

    interface Answer {
        Object answer(String method, Object[] args) throws Exception;
    }

    private static <T> T fake(Class<T> type, Answer answer) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type},
                (proxy, method, args) -> answer.answer(method.getName(), args)));
    }

    private SystemVmCommands commands(Vm vm) {
        SystemVms launcher = fake(SystemVms.class, (name, args) -> switch (name) {
            case "boot" -> {
                booted = (LinuxProfile) args[0];
                yield vm;
            }
            case "find" -> Optional.of(vm);
            default -> throw new UnsupportedOperationException(name);
        });
        return new SystemVmCommands(launcher, null);
    }

    /** A session with a console that takes the output and a keyboard at its end. */
    private static CommandSession session() {
        return fake(CommandSession.class, (name, args) -> switch (name) {
            case "getConsole" -> new java.io.PrintStream(java.io.OutputStream.nullOutputStream());
            case "getKeyboard" -> java.io.InputStream.nullInputStream();
            default -> null;
        });
    }

    /** vm:exec [-t timeout] [--keep] [--tty] [-i id] sleep 60, booting from k and r unless -i. */
    private void exec(SystemVmCommands c, String timeout, String id, boolean keep, boolean tty) throws Exception {
        c.exec(session(), id.isEmpty() ? "k" : "", id.isEmpty() ? "r" : "", "", "", "", timeout, id, keep, tty, "", "sleep", "60");
    }

    @Test
    void aOneShotProgramPastItsLimitStopsTheVmSayingSo() {
        Vm vm = new Vm(new CompletableFuture<>());
        long start = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> exec(commands(vm), "300ms", "", false, false));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertEquals("vm:exec: sleep did not finish within 300ms; stopped (System VM vm-1; -t gives it longer)", e.getMessage());
        assertTrue(ms >= 300 && ms < 10_000, ms + " ms");
        assertEquals(Duration.ofMillis(300), booted.timeout(), "-t is the VM's lifetime limit too");
        assertEquals(List.of("start [sleep, 60]", "signal 9", "close"), calls);
    }

    @Test
    void aOneShotExecHasTenMinutesByDefaultAndKeptOrTerminalVmsNone() throws Exception {
        exec(commands(new Vm(CompletableFuture.completedFuture(ExitStatus.exited(0)))), "", "", false, false);
        assertEquals(Duration.ofMinutes(10), booted.timeout());
        exec(commands(new Vm(CompletableFuture.completedFuture(ExitStatus.exited(0)))), "", "", true, false);
        assertEquals(LinuxProfile.NO_TIMEOUT, booted.timeout(), "--keep: not cut at 10 minutes by surprise");
        exec(commands(new Vm(CompletableFuture.completedFuture(ExitStatus.exited(0)))), "", "", false, true);
        assertEquals(LinuxProfile.NO_TIMEOUT, booted.timeout(), "--tty (./nxia run's shell): not cut at 10 minutes by surprise");
        exec(commands(new Vm(CompletableFuture.completedFuture(ExitStatus.exited(0)))), "2m", "", true, false);
        assertEquals(Duration.ofMinutes(2), booted.timeout(), "unless -t says so");
        exec(commands(new Vm(CompletableFuture.completedFuture(ExitStatus.exited(0)))), "0", "", false, false);
        assertEquals(LinuxProfile.NO_TIMEOUT, booted.timeout(), "-t 0: no limit");
        assertTrue(calls.contains("exec [sleep, 60]"), "without a limit the program is waited for as before: " + calls);
    }

    @Test
    void aProgramInAKeptVmPastItsLimitIsKilledAndTheVmRunsOn() {
        Vm vm = new Vm(new CompletableFuture<>());
        IOException e = assertThrows(IOException.class, () -> exec(commands(vm), "200ms", "vm-1", false, false));
        assertEquals("vm:exec: sleep did not finish within 200ms; killed (System VM vm-1 runs on; -t gives it longer)", e.getMessage());
        assertEquals(List.of("start [sleep, 60]", "signal 9"), calls, "the kept VM is not closed");
    }

    @Test
    void aProgramThatEndsInTimeGivesItsOutputAndStatus() throws Exception {
        Vm vm = new Vm(CompletableFuture.completedFuture(ExitStatus.exited(3)));
        ExecResult r = SystemVmCommands.runUntil(vm.session(), ExecRequest.of("true"), System.nanoTime() + 5_000_000_000L);
        assertEquals(ExitStatus.exited(3), r.status());
        assertArrayEquals("out".getBytes(StandardCharsets.UTF_8), r.stdout());
        assertThrows(TimeoutException.class,
                () -> SystemVmCommands.runUntil(new Vm(new CompletableFuture<>()).session(), ExecRequest.of("x"), System.nanoTime()));
    }
}
