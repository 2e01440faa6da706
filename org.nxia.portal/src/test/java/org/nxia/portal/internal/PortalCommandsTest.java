package org.nxia.portal.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.device.DeviceConfig;

/** What {@code portal:*} prints and refuses, on the real registry. */
class PortalCommandsTest {

    @TempDir
    Path dir;

    private final PortalsImpl portals = new PortalsImpl();
    private final PortalCommands commands = new PortalCommands(portals);

    @AfterEach
    void close() {
        portals.deactivate();
    }

    @Test
    void createAndListShowEachRegionWithItsVms() {
        assertEquals("no portal regions (portal:create makes one)", commands.list());
        assertEquals("portal ring: 8192 bytes (anonymous)", commands.create("", "alice", "rw", "ring", "8K"));
        Path file = dir.resolve("kept");
        assertEquals("portal kept: 4096 bytes backed by " + file, commands.create(file.toString(), "bob", "ro", "kept", "4096"));
        portals.create(DeviceConfig.parse("portal:name=ring"), new FakeVmContext("vm-1", false, false));
        portals.create(DeviceConfig.parse("portal:name=ring"), new FakeVmContext("vm-2", false, false));
        portals.unmap("vm-2", "ring");
        String expected = """
                name  bytes  rights  owner  backing%s  vms
                kept  4096   ro      bob    %s  -
                ring  8192   rw      alice  anonymous%s  vm-1 vm-2(unmapped)
                """.formatted(" ".repeat(file.toString().length() - "backing".length()), file,
                " ".repeat(file.toString().length() - "anonymous".length()));
        assertEquals(expected, commands.list());
    }

    @Test
    void mapUnmapAndInfo() {
        commands.create("", "shell", "rw", "ring", "4K");
        FakeVmContext vm = new FakeVmContext("vm-1", false, false);
        Grant g = (Grant) portals.create(DeviceConfig.parse("portal:name=ring,rights=ro"), vm);
        assertEquals("ring unmapped from vm-1", commands.unmap("vm-1", "ring"));
        String mapped = commands.map("vm-1", "ring");
        assertEquals("ring mapped into vm-1 at 0x%x (ro)".formatted(vm.mappings.get(1).gpa), mapped);
        SpscRing.format(portals.find("ring").orElseThrow().segment(), 2048);
        g.doorbellPage().write(0, 4, 1);
        String info = commands.info("ring");
        assertTrue(info.startsWith("name:     ring\nsize:     4096 bytes\nowner:    shell\nrights:   rw (most a VM may get)\n"
                + "backing:  anonymous shared memory\ncontents: SPSC ring (2048 data bytes)\n"), info);
        assertTrue(info.contains("vm:       vm-1 ro at 0x%x, doorbell at 0x%x, 1 rings\n".formatted(g.gpa(), g.doorbellGpa())), info);
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class, () -> commands.info("nope"));
        assertTrue(none.getMessage().contains("no portal nope"), none.getMessage());
    }

    @Test
    void infoNamesTheStructureAtTheStart() {
        commands.create("", "shell", "rw", "arena", "64K");
        var s = portals.find("arena").orElseThrow().segment();
        assertTrue(commands.info("arena").contains("contents: no Portal structure at offset 0 (magic 0x00000000)"));
        BlockArena arena = BlockArena.format(s, 4096);
        assertTrue(commands.info("arena").contains("contents: block arena (%d blocks of 4096 bytes)\n".formatted(arena.blockCount())),
                commands.info("arena"));
        MpmcRing.format(s, 16, 64);
        assertTrue(commands.info("arena").contains("contents: MPMC ring (16 slots of 64 bytes)\n"), commands.info("arena"));
    }

    @Test
    void connectAndDisconnectSayWhatTheyDid() {
        commands.create("", "shell", "rw", "ring", "4K");
        portals.create(DeviceConfig.parse("portal:name=ring"), new FakeVmContext("vm-a", false, false));
        portals.create(DeviceConfig.parse("portal:name=ring"), new FakeVmContext("vm-b", false, false));
        portals.attachInterrupt("vm-b", "ring", new FakeVmContext.Line(12));
        assertEquals("vm-a's doorbell for ring raises GSI 12 in vm-b, through the VMM (this backend has no irqfd)",
                commands.connect("vm-a", "vm-b", "ring"));
        assertTrue(commands.info("ring").contains("link:     vm-a rings GSI 12 in vm-b, through the VMM\n"));
        IllegalArgumentException wrong = assertThrows(IllegalArgumentException.class, () -> commands.disconnect("vm-b", "vm-a", "ring"));
        assertTrue(wrong.getMessage().contains("is not connected to vm-a"), wrong.getMessage());
        assertEquals("vm-a's doorbell for ring no longer reaches vm-b", commands.disconnect("vm-a", "vm-b", "ring"));
        assertTrue(portals.links().isEmpty());
    }

    @Test
    void dumpShowsHexAndTextAndRefusesRangesOutside() {
        commands.create("", "shell", "rw", "d", "4K");
        var s = portals.find("d").orElseThrow().segment();
        byte[] text = "Hello, Portal!\n\u0001".getBytes();
        for (int i = 0; i < text.length; i++) {
            s.set(ValueLayout.JAVA_BYTE, 4064 + i, text[i]);
        }
        assertEquals("00000fe0  48 65 6c 6c 6f 2c 20 50 6f 72 74 61 6c 21 0a 01  Hello, Portal!..\n"
                + "00000ff0  00 00  ..\n", commands.dump(4064, 18, "d"));
        assertEquals("", commands.dump(4096, 0, "d"), "an empty range at the end is allowed");
        assertEquals("00000000  00  .\n", commands.dump(0, 1, "d"), "from the first byte");
        assertEquals(2, commands.dump(4080, 16, "d").length() - commands.dump(4080, 16, "d").replace("\n", "").length() + 1,
                "a range that ends at the region's last byte is allowed");
        s.set(ValueLayout.JAVA_BYTE, 0, (byte) 0x1f);
        s.set(ValueLayout.JAVA_BYTE, 1, (byte) 0x20);
        s.set(ValueLayout.JAVA_BYTE, 2, (byte) 0x7e);
        s.set(ValueLayout.JAVA_BYTE, 3, (byte) 0x7f);
        assertEquals("00000000  1f 20 7e 7f  . ~.\n", commands.dump(0, 4, "d"), "printable ASCII is space to '~'");
        commands.create("", "shell", "rw", "big", "64K");
        assertEquals(4096, commands.dump(0, 65536, "big").lines().count(), "64K at a time, exactly");
        for (long[] bad : new long[][] {{4090, 7}, {-1, 4}, {0, -1}, {0, 65537}, {4097, 0}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> commands.dump(bad[0], bad[1], "d"));
            assertTrue(e.getMessage().contains("outside the region's 4096 bytes"), e.getMessage());
        }
    }

    @Test
    void sizesTakeKMAndGAndRefuseTheRest() {
        assertEquals(4096, PortalCommands.parseSize("4096"));
        assertEquals(8192, PortalCommands.parseSize(" 8k "));
        assertEquals(2L << 20, PortalCommands.parseSize("2M"));
        assertEquals(1L << 30, PortalCommands.parseSize("1g"));
        assertEquals(0, PortalCommands.parseSize("0"));
        assertEquals((Long.MAX_VALUE / 1024) * 1024, PortalCommands.parseSize((Long.MAX_VALUE / 1024) + "K"), "the largest that fits a long");
        for (String bad : new String[] {"", "M", "-4K", "12X", "99999999999G", "1.5M"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PortalCommands.parseSize(bad), bad);
            assertTrue(e.getMessage().contains("is not a size"), e.getMessage());
        }
    }
}
