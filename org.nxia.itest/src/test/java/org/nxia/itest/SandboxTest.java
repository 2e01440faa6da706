package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.vmm.api.Sandbox;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmSnapshot;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * Sandboxes reset in place on /dev/kvm, with the {@code scratch} guest: it
 * prints "scratch: boot", spins, counts one run in a global, writes one byte
 * into each of N pages and exits with its count. Reset in place to a snapshot
 * taken before the count, every run sees the count as saved and exits with 1;
 * a reset that left one of its writes behind would exit with 2. The reset
 * rewrites the pages the guest wrote (from the entry point that includes the
 * .bss its start-up zeroes), a handful more, and not all of RAM.
 */
@RunWith(KvmRequirement.class)
@ExamReactorStrategy(PerClass.class)
public class SandboxTest {

    private static final String BOOT_LINE = "scratch: boot";
    private static final Pattern RESET = Pattern.compile("reset in place: (\\d+) pages rewritten");
    /** Pages the VMM and the guest touch besides the N pages of its buffer: stack, console, boot block, the count's page. */
    private static final long OTHER_PAGES = 32;
    /** The guest's .bss (its 64-page buffer and its count), which its start-up zeroes on every run from the entry point. */
    private static final long BSS_PAGES = 64;

    @Inject
    VmManager vms;

    @Inject
    CommandProcessor processor;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    private static VmProfile scratch(long spin, int pages) {
        return MicroVmTest.guest("scratch").withArg(spin << 16 | pages);
    }

    /** A snapshot of the guest created and not started: its entry point. */
    private VmSnapshot atEntry(VmProfile profile) {
        VirtualMachine vm = vms.create(profile);
        try {
            return vm.snapshot();
        } finally {
            vms.destroy(vm.id());
        }
    }

    private static void assertFirstRun(VmResult r, String console) {
        assertEquals(r.detail() + "; console: " + console, VmResult.Reason.EXITED, r.reason());
        assertEquals("the guest counted from the saved 0 again: " + console, 1, r.exitStatus());
        assertTrue(console, console.contains("run 1\n"));
    }

    /** Runs {@code runs} times from the template; the pages the last reset rewrote. */
    private long runs(VmSnapshot template, int runs, boolean bootLine) throws Exception {
        try (Sandbox sandbox = vms.sandbox(template)) {
            for (int i = 1; i <= runs; i++) {
                StringBuilder console = new StringBuilder();
                long t0 = System.nanoTime();
                VmResult r = sandbox.run(console);
                long micros = (System.nanoTime() - t0) / 1000;
                assertFirstRun(r, console.toString());
                assertEquals("boot line on run " + i + ": " + console, bootLine, console.toString().contains(BOOT_LINE));
                System.out.println("sandbox " + sandbox.vmId() + " run " + i + ": " + micros + " us, " + sandbox.pagesRewritten()
                        + " pages rewritten");
            }
            return sandbox.pagesRewritten();
        }
    }

    @Test
    public void aTemplateAtItsEntryIsResetInPlaceEveryRun() throws Exception {
        long pages = runs(atEntry(scratch(0, 8)), 3, true);
        System.out.println("reset in place to the entry point: " + pages + " pages rewritten");
        assertTrue("the .bss the guest's start-up zeroes (" + BSS_PAGES + " pages) and a few more: " + pages,
                pages >= BSS_PAGES && pages <= BSS_PAGES + OTHER_PAGES);
    }

    /**
     * A snapshot of the guest paused in its spin, after its start-up and before its count. The spin
     * grows until a pause lands in it: the speed varies, and each later run spins what is left, so it
     * starts small.
     */
    private VmSnapshot pausedInSpin(int pages) throws Exception {
        for (int shift = 16; shift <= 32; shift += 2) {
            // a PVM host runs the restored guest emulated (its native mode is not restored): what is left of
            // the spin takes seconds there, not the default timeout's share of them
            VirtualMachine vm = vms.create(scratch(1L << shift, pages).withTimeout(java.time.Duration.ofMinutes(5)));
            try {
                vm.start();
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (!vm.console().contains(BOOT_LINE)) {
                    assertTrue(vm.id() + " stopped before its boot line: " + vm.result(), vm.result().isEmpty());
                    if (System.nanoTime() > deadline) {
                        fail("no boot line within 60 s: " + vm.console());
                    }
                    Thread.sleep(2);
                }
                if (vm.result().isEmpty()) {
                    vm.pause();
                    // not past the spin: a pause among the page writes (slow in the rig: each first touch
                    // exits) would leave the template's run half done
                    if (!vm.console().contains("spun")) {
                        System.out.println("paused in a spin of 2^" + shift + " turns");
                        return vm.snapshot();
                    }
                }
            } catch (IllegalStateException stoppedFirst) {
                // the guest ended before the pause took: spin longer
            } finally {
                vms.destroy(vm.id());
            }
        }
        fail("the guest always ended its spin before it could be paused");
        return null;
    }

    @Test
    public void aTemplatePausedMidRunGoesOnFromThereAndOnlyTheWrittenPagesAreRewritten() throws Exception {
        long few = runs(pausedInSpin(8), 2, false);
        long more = runs(pausedInSpin(40), 2, false);
        System.out.println("reset in place to a paused template: " + few + " pages for 8 written, " + more + " for 40");
        // how many of the VMM's and the stack's pages are touched besides depends on where the pause caught
        // the guest (2 to 10 seen), so each count is bounded, not their difference
        long besides = 16;
        assertTrue("the 8 pages and a few more: " + few, few >= 8 && few <= 8 + besides);
        assertTrue("the 40 pages and a few more: " + more, more >= 40 && more <= 40 + besides);
    }

    @Test
    public void vmRunFromASnapshotFileServesEachRunFromIt() throws Exception {
        Path file = Files.createTempDirectory("nxia-sandbox-test").resolve("scratch.nxsnap");
        String id = Gogo.run(processor, "vm:create -a 8 scratch").output().strip();
        try {
            String saved = Gogo.run(processor, "vm:snapshot " + id + " " + file).output();
            assertTrue(saved, saved.contains("saved to " + file));
        } finally {
            vms.destroy(id);
        }
        Gogo.Run run = Gogo.run(processor, "vm:run --from-snapshot -n 3 " + file);
        System.out.println(run.output().strip());
        assertEquals(run.output(), 1, run.exit());
        // the guest's exit status is its count: 1 on every run (its console goes to the vCPU thread's System.out,
        // which the session may not capture, so the command's own lines are what is checked)
        assertEquals(run.output(), 3, count(run.output(), ": exited with status 1 in "));
        Matcher m = RESET.matcher(run.output());
        int resets = 0;
        while (m.find()) {
            long pages = Long.parseLong(m.group(1));
            assertTrue(run.output(), pages >= BSS_PAGES && pages <= BSS_PAGES + OTHER_PAGES);
            resets++;
        }
        assertEquals("runs 2 and 3 were reset in place: " + run.output(), 2, resets);
        assertTrue("no VM is left: " + vms.list(), vms.list().isEmpty());
    }

    private static int count(String text, String part) {
        int n = 0;
        for (int at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + 1)) {
            n++;
        }
        return n;
    }
}
