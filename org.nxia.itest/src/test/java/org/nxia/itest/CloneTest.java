package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.nxia.itest.CounterGuest.*;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmState;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * Copy-on-write clones on /dev/kvm ({@code vm:clone}), with the {@code counter} guest: two clones
 * of one snapshot file both go on with the tick after the saved one; each one's writes stay its
 * own (paused at different ticks, their RAM differs) and never reach the file (its SHA-256 is the
 * same before and after); the file's pages are shared between them, which the kernel says in
 * /proc/self/smaps: its mappings of the file are resident, partly shared, and only a few of their
 * pages copied.
 */
@RunWith(KvmRequirement.class)
@ExamReactorStrategy(PerClass.class)
public class CloneTest {

    private static final int PAGE = 4096;

    @Inject
    VmManager vms;

    @Inject
    CommandProcessor processor;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    private static String sha256(Path file) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }

    /** The kernel's sums over this process's mappings of {@code file}: count, Rss, Shared_*, Anonymous (copied pages), in bytes. */
    private static long[] fileMappings(Path file) throws Exception {
        String path = file.toRealPath().toString();
        long[] sums = new long[4];
        boolean inside = false;
        for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
            if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                inside = line.endsWith(" " + path);
                if (inside) {
                    sums[0]++;
                }
            } else if (inside) {
                long kib = line.matches("^\\w+:\\s+\\d+ kB$") ? Long.parseLong(line.replaceAll("\\D", "")) << 10 : 0;
                if (line.startsWith("Rss:")) {
                    sums[1] += kib;
                } else if (line.startsWith("Shared_Clean:") || line.startsWith("Shared_Dirty:")) {
                    sums[2] += kib;
                } else if (line.startsWith("Anonymous:")) {
                    sums[3] += kib;
                }
            }
        }
        return sums;
    }

    @Test
    public void twoClonesOfOneFileGoOnFromItShareItsPagesAndKeepTheirWritesToThemselves() throws Exception {
        Path file = Files.createTempDirectory("nxia-clone-test").resolve("counter.nxsnap");
        VirtualMachine original = vms.create(counter());
        long saved;
        try {
            original.start();
            awaitTickAbove(original, 3);
            original.pause();
            saved = ticks(original.console())[1];
            String out = Gogo.run(processor, "vm:snapshot " + original.id() + " " + file).output();
            assertTrue(out, out.contains("saved to " + file));
        } finally {
            vms.destroy(original.id());
        }
        String hashBefore = sha256(file);

        Gogo.Run run = Gogo.run(processor, "vm:clone -n 2 " + file);
        System.out.println(run.output().strip());
        String[] ids = run.output().strip().split("\n")[0].split(" ");
        assertEquals(run.output(), 2, ids.length);
        List<VirtualMachine> clones = new ArrayList<>();
        try {
            for (String id : ids) {
                clones.add(vms.find(id).orElseThrow(() -> new AssertionError("vm:clone said: " + run.output())));
            }
            for (VirtualMachine c : clones) {
                assertEquals(VmState.RUNNING, c.state());
                long last = awaitTickAbove(c, saved + 2);
                String console = c.console();
                System.out.println(c.id() + " printed ticks " + ticks(console)[0] + " to " + last + " after tick " + saved + " was saved");
                assertFalse("the clone did not boot again: " + console, console.contains(BOOT_LINE));
                assertEquals("the first tick of the clone is the one after the saved tick: " + console, saved + 1, ticks(console)[0]);
            }

            long[] m = fileMappings(file);
            long stored = Files.size(file);
            System.out.println("the clones' mappings of " + file.getFileName() + " (" + stored / 1024 + " KiB): " + m[0] + " mappings, "
                    + m[1] / 1024 + " KiB resident, " + m[2] / 1024 + " KiB shared, " + m[3] / 1024 + " KiB copied (written)");
            for (VirtualMachine c : clones) {
                Map<String, Long> counters = c.info().counters();
                System.out.println(c.id() + ": ram_file_bytes=" + counters.get("ram_file_bytes") + " ram_file_resident_bytes="
                        + counters.get("ram_file_resident_bytes") + " ram_shared_bytes=" + counters.get("ram_shared_bytes")
                        + " ram_own_bytes=" + counters.get("ram_own_bytes"));
                assertTrue("a clone's counters say what its RAM is: " + counters, counters.get("ram_shared_bytes") > 0);
            }
            assertTrue("both clones map the file: " + m[0], m[0] >= 2);
            assertTrue("pages of the file are mapped by both clones (shared): " + m[2], m[2] >= PAGE);
            assertTrue("the clones copied only the pages they wrote, not the file: " + m[3] + " of " + m[1] + " resident",
                    m[3] < m[1]);

            // Paused at different ticks, the clones' RAM differs: neither sees the other's writes.
            VirtualMachine one = clones.get(0);
            VirtualMachine two = clones.get(1);
            one.pause();
            long oneAt = ticks(one.console())[1];
            awaitTickAbove(two, oneAt + 2);
            two.pause();
            long twoAt = ticks(two.console())[1];
            VmSnapshot a = one.snapshot();
            VmSnapshot b = two.snapshot();
            assertEquals("a clone's snapshot holds all of its RAM", a.spec().memoryBytes(), a.ramBytes());
            int differing = 0;
            for (int i = 0; i < a.ram().size(); i++) {
                VmSnapshot.RamChunk x = a.ram().get(i);
                VmSnapshot.RamChunk y = b.ram().get(i);
                assertEquals(x.gpa(), y.gpa());
                for (long at = 0; at < x.bytes().byteSize(); at += PAGE) {
                    if (x.bytes().asSlice(at, PAGE).mismatch(y.bytes().asSlice(at, PAGE)) >= 0) {
                        differing++;
                    }
                }
            }
            System.out.println("paused at ticks " + oneAt + " and " + twoAt + ": " + differing + " pages of RAM differ between the clones");
            assertTrue("the clones' RAM differs where each wrote its own count", differing > 0);

            // A clone's snapshot is whole: restored by copy, it goes on from where the clone paused.
            VirtualMachine again = vms.restore(a);
            try {
                awaitTickAbove(again, oneAt + 1);
                assertEquals("a clone's snapshot goes on from the clone's tick: " + again.console(), oneAt + 1, ticks(again.console())[0]);
            } finally {
                vms.destroy(again.id());
            }
        } finally {
            for (String id : ids) {
                vms.destroy(id);
            }
        }
        assertEquals("no clone wrote to the file", hashBefore, sha256(file));
        assertEquals("the file is mapped no more once the clones are gone", 0, fileMappings(file)[0]);
    }

    @Test
    public void anEncryptedSnapshotIsNotClonedButRestoredByCopy() throws Exception {
        Path dir = Files.createTempDirectory("nxia-clone-test");
        Path key = dir.resolve("key");
        Path file = dir.resolve("counter.nxsnap");
        Gogo.run(processor, "snapshot:key " + key);
        String id = Gogo.run(processor, "vm:create -a " + SPIN + " counter").output().strip();
        try {
            String out = Gogo.run(processor, "vm:snapshot -k " + key + " " + id + " " + file).output();
            assertTrue(out, out.contains("encrypted"));
        } finally {
            vms.destroy(id);
        }
        int before = vms.list().size();
        try {
            Gogo.Run run = Gogo.run(processor, "vm:clone " + file);
            fail("an encrypted file was cloned: " + run.output());
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("an encrypted snapshot is restored by copy: vm:restore"));
        }
        assertEquals("no VM was made", before, vms.list().size());
    }
}
