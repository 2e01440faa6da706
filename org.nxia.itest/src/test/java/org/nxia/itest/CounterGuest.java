package org.nxia.itest;

import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmProfile;

/**
 * The {@code counter} guest as the snapshot tests read it: it prints "counter: boot" once, then
 * "tick N" for N = 1, 2, … A restored or cloned counter shows it went on from its snapshot by
 * printing the next tick and never the boot line again.
 */
final class CounterGuest {

    static final Pattern TICK = Pattern.compile("tick (\\d+)\n");
    static final String BOOT_LINE = "counter: boot";
    /** Busy-loop turns per tick: a few ticks a second in the rig's nested, emulated KVM. */
    static final long SPIN = 1 << 18;
    static final Duration WAIT = Duration.ofSeconds(90);

    private CounterGuest() {
    }

    static VmProfile counter() {
        return MicroVmTest.guest("counter").withArg(SPIN);
    }

    /** The first and the last tick on the console, or 0 where none. */
    static long[] ticks(String console) {
        Matcher m = TICK.matcher(console);
        long first = 0;
        long last = 0;
        while (m.find()) {
            last = Long.parseLong(m.group(1));
            if (first == 0) {
                first = last;
            }
        }
        return new long[] {first, last};
    }

    static long lastTick(VirtualMachine vm) {
        return ticks(vm.console())[1];
    }

    /** Waits until {@code vm} printed a tick above {@code tick} and returns it; fails if it stops or takes {@link #WAIT}. */
    static long awaitTickAbove(VirtualMachine vm, long tick) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            long last = lastTick(vm);
            if (last > tick) {
                return last;
            }
            assertTrue(vm.id() + " stopped: " + vm.result(), vm.result().isEmpty());
            Thread.sleep(20);
        }
        fail(vm.id() + " did not count past tick " + tick + " within " + WAIT + "; console: " + tail(vm.console()));
        return -1;
    }

    /** Every tick is the one before plus one: the guest neither started over nor skipped. */
    static void assertConsecutive(String console) {
        Matcher m = TICK.matcher(console);
        long previous = -1;
        while (m.find()) {
            long tick = Long.parseLong(m.group(1));
            if (previous >= 0 && tick != previous + 1) {
                fail("tick " + tick + " came after tick " + previous + ": " + tail(console));
            }
            previous = tick;
        }
    }

    static String tail(String console) {
        return console.length() <= 400 ? console : "…" + console.substring(console.length() - 400);
    }
}
