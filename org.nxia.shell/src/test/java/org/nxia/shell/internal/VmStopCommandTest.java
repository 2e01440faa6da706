package org.nxia.shell.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeoutException;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmResult;

/** vm:stop and vm:stop --graceful over VM stand-ins: what each asks of the VM, what it prints, what it refuses. */
class VmStopCommandTest {

    /** The VM methods called, in order, with await's timeout. */
    private final List<String> calls = new ArrayList<>();

    /**
     * A VM that can be asked to shut down when {@code askable}; await answers {@code ends} (null: it
     * times out).
     */
    private VmCommands commands(boolean askable, VmResult ends) {
        VirtualMachine vm = (VirtualMachine) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VirtualMachine.class},
                (p, m, a) -> switch (m.getName()) {
                    case "requestShutdown" -> {
                        calls.add("requestShutdown");
                        yield askable;
                    }
                    case "stop" -> {
                        calls.add("stop");
                        yield null;
                    }
                    case "await" -> {
                        calls.add("await " + a[0]);
                        if (ends == null) {
                            throw new TimeoutException("still running");
                        }
                        yield ends;
                    }
                    default -> throw new AssertionError("vm:stop asked the VM for " + m.getName());
                });
        VmManager manager = (VmManager) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VmManager.class},
                (p, m, a) -> {
                    if (!m.getName().equals("find")) {
                        throw new AssertionError("vm:stop called " + m.getName());
                    }
                    return a[0].equals("vm-1") ? Optional.of(vm) : Optional.empty();
                });
        return new VmCommands(manager);
    }

    private static VmResult result(VmResult.Reason reason, String detail) {
        return new VmResult(reason, -1, detail, new byte[0], Duration.ofSeconds(3));
    }

    @Test
    void gracefulAsksTheGuestAndWaitsForItToPowerOff() {
        String out = commands(true, result(VmResult.Reason.POWERED_OFF, "the guest powered off (ACPI S5)"))
                .stop(true, "90s", "vm-1");
        assertEquals("vm-1 powered off: the guest powered off (ACPI S5)", out);
        assertEquals(List.of("requestShutdown", "await PT1M30S"), calls, "asked, then waited as long as --wait says; never stopped");
    }

    @Test
    void aGuestThatDoesNotPowerOffInTimeIsStopped() {
        String out = commands(true, null).stop(true, "5s", "vm-1");
        assertEquals("vm-1 did not power off within 5s of being asked; stopped it", out);
        assertEquals(List.of("requestShutdown", "await PT5S", "stop"), calls);
    }

    @Test
    void aVmThatCannotBeAskedIsRefusedAndLeftRunning() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> commands(false, null).stop(true, "60s", "vm-1"));
        assertEquals("vm-1 has no way to ask its guest to power off: a Hyper-V guest (hyperv=true) whose hv_utils driver has opened"
                + " the shutdown channel has one; vm:stop without --graceful stops it at once", e.getMessage());
        assertEquals(List.of("requestShutdown"), calls, "not stopped");
    }

    @Test
    void withoutGracefulTheVmIsStoppedAtOnce() {
        assertEquals("vm-1 stopped", commands(true, result(VmResult.Reason.STOPPED, "stopped from the host")).stop(false, "60s", "vm-1"));
        assertEquals(List.of("stop", "await PT5S"), calls, "the guest is not asked");
        assertThrows(IllegalArgumentException.class, () -> commands(true, null).stop(false, "60s", "vm-2"));
    }
}
