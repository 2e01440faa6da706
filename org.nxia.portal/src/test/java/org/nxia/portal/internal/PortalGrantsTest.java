package org.nxia.portal.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.portal.api.DoorbellLink;
import org.nxia.portal.api.PortalMapping;
import org.nxia.portal.api.Rights;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.SavedStateCodec;

/**
 * The {@code portal} device and its bookkeeping: who holds a capability for
 * which region, what is mapped where, and which doorbell raises which VM's
 * line, with the VM side played by {@link FakeVmContext}.
 */
class PortalGrantsTest {

    private final PortalsImpl portals = new PortalsImpl();

    @AfterEach
    void close() {
        portals.deactivate();
    }

    private Grant grant(FakeVmContext vm, String spec) {
        return (Grant) portals.create(DeviceConfig.parse(spec), vm);
    }

    @Test
    void aGrantMapsTheRegionWithItsDoorbellAndRights() {
        portals.create("ring", 8192, "me", Rights.RW, null);
        FakeVmContext vm = new FakeVmContext("vm-1", false, false);
        Grant ro = grant(vm, "portal:name=ring,rights=ro");

        assertEquals(1, vm.windows.size(), "one MMIO page for the doorbell");
        assertSame(ro.doorbellPage(), vm.windowDevices.get(0), "the doorbell page's stores reach the doorbell");
        assertEquals(vm.windows.get(0), ro.doorbellGpa());
        FakeVmContext.Mapping m = vm.mappings.get(0);
        assertEquals("ring", m.name);
        assertTrue(m.readOnly, "rights=ro maps read-only");
        assertEquals(8192, m.region.byteSize());
        assertEquals(ro.doorbellGpa(), m.doorbellGpa, "the portal table names the doorbell");
        assertEquals(Optional.empty(), m.file, "an anonymous region has no file");
        assertTrue(ro.mapped());
        assertEquals(m.gpa, ro.gpa());
        assertEquals("portal", ro.type());
        assertEquals("vm-1", ro.vmId());
        assertEquals(Rights.RO, ro.rights());
        assertEquals(new Grant.State("ring", Rights.RO, true, m.gpa, ro.doorbellGpa(), 0), ro.state());

        FakeVmContext other = new FakeVmContext("vm-2", false, false);
        assertFalse(grant(other, "portal:name=ring").rights() == Rights.RO, "rw is the default");
        assertFalse(other.mappings.get(0).readOnly);
        assertEquals(List.of("vm-1", "vm-2"), portals.mappings().stream().map(PortalMapping::vmId).toList());
    }

    /** The VM learns a file-backed region's file: its snapshots save the region by reference to it. */
    @Test
    void aGrantOfAFileBackedRegionNamesItsFile(@TempDir Path dir) {
        Path file = dir.resolve("kept.img");
        portals.create("kept", 8192, "me", Rights.RW, file);
        FakeVmContext vm = new FakeVmContext("vm-1", false, false);
        grant(vm, "portal:name=kept");
        assertEquals(Optional.of(file), vm.mappings.get(0).file);
    }

    @Test
    void aProfileCannotAskForMoreThanTheRegionAllowsNorForWhatIsNotThere() {
        portals.create("ro-only", 4096, "me", Rights.RO, null);
        FakeVmContext vm = new FakeVmContext("vm-1", false, false);
        Map<String, String> refused = Map.of(
                "portal:name=ro-only,rights=rw", "at most ro",
                "portal:name=absent", "no portal absent",
                "portal:rights=ro", "needs name=",
                "portal:name=ro-only,size=4", "unknown parameter 'size'",
                "portal:name=ro-only,rights=rx", "not a right");
        refused.forEach((spec, why) -> {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> grant(vm, spec), spec);
            assertTrue(e.getMessage().contains(why), spec + ": " + e.getMessage());
        });
        assertTrue(vm.mappings.isEmpty(), "nothing mapped by a refused device");
        grant(vm, "portal:name=ro-only,rights=ro");
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> grant(vm, "portal:name=ro-only,rights=ro"));
        assertTrue(twice.getMessage().contains("listed twice"), twice.getMessage());
        assertEquals(1, portals.mappings().size());
    }

    @Test
    void unmapAndMapAgainAndARegionInUseCannotBeDeleted() {
        portals.create("data", 4096, "me", Rights.RW, null);
        FakeVmContext vm = new FakeVmContext("vm-1", false, false);
        Grant g = grant(vm, "portal:name=data");

        IllegalArgumentException mapped = assertThrows(IllegalArgumentException.class, () -> portals.map("vm-1", "data"));
        assertTrue(mapped.getMessage().contains("already mapped into vm-1"), mapped.getMessage());
        IllegalStateException inUse = assertThrows(IllegalStateException.class, () -> portals.delete("data"));
        assertTrue(inUse.getMessage().contains("mapped into vm-1"), inUse.getMessage());

        assertSame(g, portals.unmap("vm-1", "data"));
        assertTrue(vm.mappings.get(0).closed, "unmap closes the VM's mapping");
        assertFalse(g.mapped());
        assertEquals(0, g.gpa());
        assertThrows(IllegalArgumentException.class, () -> portals.unmap("vm-1", "data"), "not mapped twice");

        assertSame(g, portals.map("vm-1", "data"));
        assertEquals(2, vm.mappings.size());
        assertFalse(vm.mappings.get(1).closed);
        assertTrue(g.mapped());

        portals.unmap("vm-1", "data");
        assertTrue(portals.delete("data"), "no VM maps it now");
        assertFalse(portals.delete("data"));
        IllegalArgumentException gone = assertThrows(IllegalArgumentException.class, () -> portals.map("vm-1", "data"));
        assertTrue(gone.getMessage().contains("no portal data"), gone.getMessage());
    }

    @Test
    void closingTheDeviceUnmapsAndForgetsTheGrant() {
        portals.create("data", 4096, "me", Rights.RW, null);
        FakeVmContext vm = new FakeVmContext("vm-1", false, false);
        Device d = grant(vm, "portal:name=data");
        d.close();
        assertTrue(vm.mappings.get(0).closed);
        assertTrue(portals.mappings().isEmpty());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> portals.map("vm-1", "data"));
        assertTrue(e.getMessage().contains("has no capability"), e.getMessage());
        assertTrue(portals.delete("data"));
    }

    @Test
    void aLinkTheHypervisorCanCarryUsesTheIrqfdAndClosesItOnDisconnect() throws Exception {
        portals.create("ring", 4096, "me", Rights.RW, null);
        FakeVmContext a = new FakeVmContext("vm-a", true, true);
        FakeVmContext b = new FakeVmContext("vm-b", true, true);
        Grant ga = grant(a, "portal:name=ring");
        Grant gb = grant(b, "portal:name=ring");
        FakeVmContext.Line line = new FakeVmContext.Line(5);
        AutoCloseable interrupt = portals.attachInterrupt("vm-b", "ring", line);

        DoorbellLink link = portals.connect("vm-a", "vm-b", "ring");
        assertTrue(link.inHypervisor());
        assertTrue(link.connected());
        assertEquals("vm-a", link.fromVm());
        assertEquals("vm-b", link.toVm());
        assertEquals("ring", link.region());
        assertEquals(5, link.gsi());
        assertEquals("vm-a -> vm-b (ring, GSI 5, in the hypervisor)", link.toString());
        FakeVmContext.HvDoorbell hv = a.hvDoorbells.get(0);
        assertEquals(ga.doorbellGpa(), hv.address, "the ioeventfd sits on the source VM's doorbell");
        assertSame(line, hv.connectedTo);
        assertEquals(List.of(link), portals.links());

        ga.doorbellPage().write(0, 4, 1);   // a store that still exits (not the 4-byte ring) is forwarded by the VMM
        assertEquals(1, line.pulses.get());

        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> portals.connect("vm-a", "vm-b", "ring"));
        assertTrue(twice.getMessage().contains("already connected to vm-b"), twice.getMessage());

        link.close();
        assertFalse(link.connected());
        assertTrue(hv.irqfdClosed, "the irqfd is released");
        assertTrue(hv.closed, "the doorbell page exits to the VMM again");
        assertTrue(portals.links().isEmpty());
        ga.doorbellPage().write(0, 4, 1);
        assertEquals(1, line.pulses.get(), "a closed link raises nothing");
        link.close();   // idempotent
        assertTrue(gb.mapped());
        interrupt.close();
    }

    @Test
    void withoutAnIrqfdTheVmmForwardsEachRing() {
        portals.create("ring", 4096, "me", Rights.RW, null);
        FakeVmContext a = new FakeVmContext("vm-a", true, false);   // an ioeventfd, but no way to join another VM's line
        FakeVmContext b = new FakeVmContext("vm-b", false, false);
        Grant ga = grant(a, "portal:name=ring");
        grant(b, "portal:name=ring");
        FakeVmContext.Line line = new FakeVmContext.Line(7);
        portals.attachInterrupt("vm-b", "ring", line);

        DoorbellLink link = portals.connect("vm-a", "vm-b", "ring");
        assertFalse(link.inHypervisor());
        assertTrue(a.hvDoorbells.get(0).closed, "the unjoined ioeventfd is given back, so stores exit");
        assertTrue(link.toString().endsWith("through the VMM)"), link.toString());
        for (int i = 0; i < 3; i++) {
            ga.doorbellPage().write(0, 4, 1);
        }
        assertEquals(3, line.pulses.get());
        assertEquals(3, ga.rings());
    }

    @Test
    void connectRefusesWhatCannotWork() {
        portals.create("ring", 4096, "me", Rights.RW, null);
        FakeVmContext a = new FakeVmContext("vm-a", false, false);
        FakeVmContext b = new FakeVmContext("vm-b", false, false);
        grant(a, "portal:name=ring");
        grant(b, "portal:name=ring");
        IllegalArgumentException self = assertThrows(IllegalArgumentException.class, () -> portals.connect("vm-a", "vm-a", "ring"));
        assertTrue(self.getMessage().contains("is both"), self.getMessage());
        IllegalArgumentException noLine = assertThrows(IllegalArgumentException.class, () -> portals.connect("vm-a", "vm-b", "ring"));
        assertTrue(noLine.getMessage().contains("vm-b has no interrupt"), noLine.getMessage());
        IllegalArgumentException noGrant = assertThrows(IllegalArgumentException.class, () -> portals.connect("vm-a", "vm-c", "ring"));
        assertTrue(noGrant.getMessage().contains("vm-c has no capability"), noGrant.getMessage());
        assertThrows(IllegalArgumentException.class, () -> portals.attachInterrupt("vm-b", "ring", null));
        assertTrue(portals.links().isEmpty());
    }

    @Test
    void oneInterruptPerRegionAndVmAndDetachingItClosesTheLinksToIt() throws Exception {
        portals.create("ring", 4096, "me", Rights.RW, null);
        FakeVmContext a = new FakeVmContext("vm-a", false, false);
        FakeVmContext b = new FakeVmContext("vm-b", false, false);
        Grant ga = grant(a, "portal:name=ring");
        Grant gb = grant(b, "portal:name=ring");
        FakeVmContext.Line line = new FakeVmContext.Line(9);
        AutoCloseable detach = portals.attachInterrupt("vm-b", "ring", line);
        IllegalArgumentException second = assertThrows(IllegalArgumentException.class,
                () -> portals.attachInterrupt("vm-b", "ring", new FakeVmContext.Line(10)));
        assertTrue(second.getMessage().contains("GSI 9"), second.getMessage());
        assertSame(line, gb.interrupt());

        DoorbellLink link = portals.connect("vm-a", "vm-b", "ring");
        detach.close();
        assertFalse(link.connected(), "the target's device went away: the link with it");
        assertTrue(portals.links().isEmpty());
        assertEquals(null, gb.interrupt());
        ga.doorbellPage().write(0, 4, 1);
        assertEquals(0, line.pulses.get());
        AutoCloseable again = portals.attachInterrupt("vm-b", "ring", new FakeVmContext.Line(11));
        assertNotEquals(null, gb.interrupt());
        again.close();
    }

    @Test
    void closingEitherEndsDeviceClosesTheLink() {
        portals.create("ring", 4096, "me", Rights.RW, null);
        FakeVmContext a = new FakeVmContext("vm-a", false, false);
        FakeVmContext b = new FakeVmContext("vm-b", false, false);
        FakeVmContext c = new FakeVmContext("vm-c", false, false);
        Grant ga = grant(a, "portal:name=ring");
        Grant gb = grant(b, "portal:name=ring");
        Grant gc = grant(c, "portal:name=ring");
        portals.attachInterrupt("vm-b", "ring", new FakeVmContext.Line(5));
        portals.attachInterrupt("vm-a", "ring", new FakeVmContext.Line(6));
        DoorbellLink ab = portals.connect("vm-a", "vm-b", "ring");
        DoorbellLink ca = portals.connect("vm-c", "vm-a", "ring");
        gb.close();
        assertFalse(ab.connected(), "the target VM is gone");
        assertTrue(ca.connected(), "a link between other VMs stays");
        ga.close();
        assertFalse(ca.connected(), "its target is gone too");
        assertTrue(portals.links().isEmpty());
        assertEquals(List.of(gc), portals.mappings());
    }

    @Test
    void aGrantSavesWhereTheGuestKnowsTheRegionAndRefusesAnotherPlaceOrUnmapsAsSaved() {
        portals.create("ring", 8192, "me", Rights.RW, null);
        Grant saved = grant(new FakeVmContext("vm-1", false, false), "portal:name=ring");
        byte[] state = saved.saveState();

        Grant same = grant(new FakeVmContext("vm-2", false, false), "portal:name=ring");
        assertEquals(saved.gpa(), same.gpa(), "the same profile maps it at the same place");
        same.restoreState(state);
        assertTrue(same.mapped());

        saved.unmap();
        Grant unmapped = grant(new FakeVmContext("vm-3", false, false), "portal:name=ring");
        unmapped.restoreState(saved.saveState());
        assertFalse(unmapped.mapped(), "the guest knew it unmapped");

        byte[] elsewhere = SavedStateCodec.writer(Grant.SAVED_KIND, 1).i64(same.gpa() + 0x20_0000).i64(same.doorbellGpa()).toBytes();
        Grant moved = grant(new FakeVmContext("vm-4", false, false), "portal:name=ring");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> moved.restoreState(elsewhere));
        assertTrue(e.getMessage().contains("the guest knows region ring at 0x"), e.getMessage());
        assertTrue(moved.mapped(), "a refused state leaves the device as created");
        byte[] otherBell = SavedStateCodec.writer(Grant.SAVED_KIND, 1).i64(0).i64(same.doorbellGpa() + 4096).toBytes();
        assertThrows(IllegalArgumentException.class, () -> moved.restoreState(otherBell));
        assertTrue(moved.mapped(), "not unmapped by a state it refused");
        assertThrows(IllegalArgumentException.class, () -> moved.restoreState(new byte[] {1, 2, 3}));
        byte[] trailing = SavedStateCodec.writer(Grant.SAVED_KIND, 1).i64(same.gpa()).i64(same.doorbellGpa()).i64(0).toBytes();
        assertThrows(IllegalArgumentException.class, () -> moved.restoreState(trailing), "a state with bytes after its fields");
    }
}
