package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.nxia.itest.CounterGuest.*;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Rights;
import org.nxia.vmm.spi.Hypervisor;
import org.nxia.vmm.spi.StatePart;
import org.nxia.vmm.spi.VcpuState;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmState;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * Pause, resume, save and restore of a real micro-VM on /dev/kvm: the
 * {@code counter} guest prints "counter: boot" once and then "tick N" lines.
 * Paused, the ticks stand still; restored into a new VM from a snapshot, the
 * count goes on with the next tick and the boot line never comes again.
 */
@RunWith(KvmRequirement.class)
@ExamReactorStrategy(PerClass.class)
public class SnapshotTest {

    @Inject
    VmManager vms;

    @Inject
    Hypervisor hypervisor;

    @Inject
    CommandProcessor processor;

    @Inject
    Portals portals;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void aPausedCounterStandsStillAndGoesOnWhenResumed() throws Exception {
        VirtualMachine vm = vms.create(counter());
        try {
            vm.start();
            awaitTickAbove(vm, 2);
            long pausedAt = System.nanoTime();
            vm.pause();
            long pauseMicros = (System.nanoTime() - pausedAt) / 1000;
            assertEquals(VmState.PAUSED, vm.state());
            long atPause = lastTick(vm);
            Thread.sleep(1500);
            assertEquals("no tick while paused", atPause, lastTick(vm));
            assertEquals(VmState.PAUSED, vm.info().state());
            vm.resume();
            assertEquals(VmState.RUNNING, vm.state());
            long after = awaitTickAbove(vm, atPause);
            System.out.println("pause took " + pauseMicros + " us; tick " + atPause + " while paused 1.5 s, then " + after
                    + " after resume (" + hypervisor.info().flavour().label() + ")");
            assertConsecutive(vm.console());
        } finally {
            vms.destroy(vm.id());
        }
    }

    @Test
    public void aRestoredCounterGoesOnFromItsSnapshotAndDoesNotBootAgain() throws Exception {
        VirtualMachine vm = vms.create(counter());
        VmSnapshot snapshot;
        long saved;
        try {
            vm.start();
            awaitTickAbove(vm, 3);
            vm.pause();
            saved = lastTick(vm);
            long savingAt = System.nanoTime();
            snapshot = vm.snapshot();
            long saveMicros = (System.nanoTime() - savingAt) / 1000;
            assertEquals("saving leaves it paused", VmState.PAUSED, vm.state());
            assertEquals("nothing ran while it was saved", saved, lastTick(vm));
            StringBuilder parts = new StringBuilder();
            for (VcpuState v : snapshot.vcpus()) {
                for (StatePart p : v.parts()) {
                    parts.append(p.name()).append('=').append(p.size()).append(' ');
                }
            }
            snapshot.partition().parts().forEach(p -> parts.append("vm.").append(p.name()).append('=').append(p.size()).append(' '));
            System.out.println("snapshot at tick " + saved + " in " + saveMicros + " us: " + snapshot.ram().size() + " RAM chunks, "
                    + snapshot.ramBytes() / 1024 + " KiB touched of " + snapshot.spec().memoryBytes() / 1024 + " KiB; parts: " + parts);
            assertTrue("only touched RAM is kept", snapshot.ramBytes() < snapshot.spec().memoryBytes());
            assertTrue("the vCPU's MSRs are saved", snapshot.vcpus().getFirst().part("msrs").isPresent());
        } finally {
            vms.destroy(vm.id());
        }

        long restoringAt = System.nanoTime();
        VirtualMachine restored = vms.restore(snapshot);
        long restoreMicros = (System.nanoTime() - restoringAt) / 1000;
        try {
            assertEquals(VmState.RUNNING, restored.state());
            long last = awaitTickAbove(restored, saved + 1);
            String console = restored.console();
            System.out.println("restored " + restored.id() + " in " + restoreMicros + " us; it printed ticks " + ticks(console)[0]
                    + " to " + last + " after tick " + saved + " was saved");
            assertFalse("the restored guest did not boot again: " + tail(console), console.contains(BOOT_LINE));
            assertEquals("the first tick after restore is the one after the saved tick: " + tail(console), saved + 1, ticks(console)[0]);
            assertConsecutive(console);
        } finally {
            vms.destroy(restored.id());
        }
    }

    @Test
    public void aCounterSavedToAnEncryptedFileByTheShellGoesOnInTheVmRestoredFromIt() throws Exception {
        Path dir = Files.createTempDirectory("nxia-snapshot-test");
        Path key = dir.resolve("key");
        Path file = dir.resolve("counter.nxsnap");
        assertTrue(Gogo.run(processor, "snapshot:key " + key).output().contains("key written"));
        VirtualMachine vm = vms.create(counter());
        long before;
        try {
            vm.start();
            before = awaitTickAbove(vm, 3);
            Gogo.Run saved = Gogo.run(processor, "vm:snapshot -k " + key + " " + vm.id() + " " + file);
            System.out.println(saved.output().strip());
            assertTrue(saved.output(), saved.output().contains("saved to " + file) && saved.output().contains("encrypted"));
            assertEquals("vm:snapshot resumes a VM it paused", VmState.RUNNING, vm.state());
            System.out.println(Gogo.run(processor, "snapshot:verify -k " + key + " " + file).output().strip());
        } finally {
            vms.destroy(vm.id());
        }
        Gogo.Run run = Gogo.run(processor, "vm:restore -k " + key + " " + file);
        String id = run.output().strip();
        VirtualMachine restored = vms.find(id).orElseThrow(() -> new AssertionError("vm:restore said: " + run.output()));
        try {
            long last = awaitTickAbove(restored, before + 2);
            String console = restored.console();
            System.out.println("restored " + id + " from " + file + ": ticks " + ticks(console)[0] + " to " + last
                    + " (tick " + before + " was seen before the save)");
            assertFalse("the restored guest did not boot again: " + tail(console), console.contains(BOOT_LINE));
            assertTrue("the count goes on past the ticks before the save: " + tail(console), ticks(console)[0] > before);
            assertConsecutive(console);
        } finally {
            vms.destroy(restored.id());
        }
    }

    @Test
    public void aCounterWithAPortalRegionGoesOnFromItsSnapshotWithWhatTheRegionHeld() throws Exception {
        PortalRegion region = portals.create("snap-test", 256 * 1024, "SnapshotTest", Rights.RW, null);
        try {
            VmProfile profile = counter().withDevices(List.of(DeviceConfig.parse("portal:name=snap-test,rights=rw")));
            VirtualMachine vm = vms.create(profile);
            VmSnapshot snapshot;
            long saved;
            try {
                vm.start();
                awaitTickAbove(vm, 2);
                region.segment().set(ValueLayout.JAVA_LONG, 4096, 0x5a5a_0001L);
                vm.pause();
                saved = lastTick(vm);
                snapshot = vm.snapshot();
            } finally {
                vms.destroy(vm.id());
            }
            VmSnapshot.PortalContent p = (VmSnapshot.PortalContent) snapshot.portals().getFirst();
            assertEquals("snap-test", p.name());
            region.segment().set(ValueLayout.JAVA_LONG, 4096, 7);   // changed after the save: the restore undoes it

            VirtualMachine restored = vms.restore(snapshot);
            try {
                assertEquals("the region holds what it held when saved", 0x5a5a_0001L, region.segment().get(ValueLayout.JAVA_LONG, 4096));
                assertEquals(List.of("snap-test"), portals.mappings().stream()
                        .filter(m -> m.vmId().equals(restored.id()) && m.mapped()).map(m -> m.region()).toList());
                long last = awaitTickAbove(restored, saved + 1);
                System.out.println("restored with Portal region snap-test at 0x" + Long.toHexString(p.gpa()) + ": ticks to " + last);
                assertEquals("the first tick after restore is the one after the saved tick", saved + 1, ticks(restored.console())[0]);
            } finally {
                vms.destroy(restored.id());
            }
        } finally {
            portals.delete("snap-test");
        }
    }

    /**
     * A file-backed region goes into a snapshot file by reference (its file and its content's
     * SHA-256): the restore is refused while the file holds other content, leaving no VM, and goes
     * on, counting from where it was saved, once the file holds what it held at the save.
     */
    @Test
    public void aCounterWithAFileBackedRegionIsRestoredFromAFileOnlyOverTheRegionsContentAtTheSave() throws Exception {
        Path dir = Files.createTempDirectory("snap-file-region");
        Path key = dir.resolve("key");
        Path file = dir.resolve("counter.nxsnap");
        Path backing = dir.resolve("region.img");
        PortalRegion region = portals.create("snap-file", 4L << 20, "SnapshotTest", Rights.RW, backing);
        try {
            Gogo.run(processor, "snapshot:key " + key);
            VirtualMachine vm = vms.create(counter().withDevices(List.of(DeviceConfig.parse("portal:name=snap-file,rights=rw"))));
            long before;
            try {
                vm.start();
                before = awaitTickAbove(vm, 2);
                for (long at = 0; at < 4L << 20; at += 4096) {
                    region.segment().set(ValueLayout.JAVA_LONG, at, at + 1);   // no page of it zero
                }
                Gogo.Run saved = Gogo.run(processor, "vm:snapshot -k " + key + " " + vm.id() + " " + file);
                assertTrue(saved.output(), saved.output().contains("saved to " + file));
            } finally {
                vms.destroy(vm.id());
            }
            assertTrue("the region's 4 MiB stayed in its file: the snapshot is " + Files.size(file) + " bytes", Files.size(file) < 4L << 20);
            int count = vms.list().size();

            region.segment().set(ValueLayout.JAVA_LONG, 8, 7);   // the file changed after the save
            String refused;
            try {
                refused = "not refused: " + Gogo.run(processor, "vm:restore -k " + key + " " + file).output();
            } catch (Exception e) {
                refused = String.valueOf(e.getMessage());
            }
            assertTrue(refused, refused.contains("'snap-file' was saved by reference to its file " + backing.toAbsolutePath()
                    + ", which has changed since"));
            assertEquals("the refused restore left no VM", count, vms.list().size());

            region.segment().set(ValueLayout.JAVA_LONG, 8, 0);   // as it was
            Gogo.Run run = Gogo.run(processor, "vm:restore -k " + key + " " + file);
            VirtualMachine restored = vms.find(run.output().strip()).orElseThrow(() -> new AssertionError("vm:restore said: " + run.output()));
            try {
                long last = awaitTickAbove(restored, before + 2);
                assertTrue("the count goes on past the ticks before the save", ticks(restored.console())[0] > before);
                System.out.println("restored with file-backed region snap-file (4 MiB, by reference) from a " + Files.size(file)
                        + "-byte snapshot file: ticks to " + last);
            } finally {
                vms.destroy(restored.id());
            }
        } finally {
            portals.delete("snap-file");
        }
    }

    @Test
    public void onlyAPausedVmIsSaved() throws Exception {
        VirtualMachine vm = vms.create(counter());
        try {
            vm.start();
            vm.snapshot();
            fail("a running VM was saved");
        } catch (IllegalStateException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("only a paused VM can be saved"));
        } finally {
            vms.destroy(vm.id());
        }
    }
}
