package org.nxia.portal.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.Rights;

class PortalsImplTest {

    @TempDir
    Path dir;

    @Test
    void anonymousRegionIsSharedMemoryThatLeavesNoFile() throws IOException {
        PortalsImpl portals = new PortalsImpl();
        try {
            // a name of its own, so a file left by another process (a killed test run) cannot fail this
            String name = "anon-" + ProcessHandle.current().pid() % 1_000_000_000L;
            PortalRegion r = portals.create(name, 8192, "me", Rights.RW, null);
            assertEquals(8192, r.segment().byteSize());
            assertEquals(0, r.segment().address() % 4096, "page aligned, so it can be a KVM memory slot");
            r.segment().set(ValueLayout.JAVA_LONG, 4096, 7);
            assertEquals(7, r.segment().get(ValueLayout.JAVA_LONG, 4096));
            assertTrue(r.file().isEmpty());
            try (var files = Files.list(Path.of("/dev/shm"))) {
                assertTrue(files.noneMatch(f -> f.getFileName().toString().startsWith("nxia-portal-" + name + "-")), "unlinked after mapping");
            }
        } finally {
            portals.deactivate();
        }
    }

    @Test
    void fileBackedRegionKeepsItsContentAcrossDeleteAndRestart() {
        Path file = dir.resolve("region");
        PortalsImpl first = new PortalsImpl();
        first.create("keep", 4096, "me", Rights.RW, file).segment().set(ValueLayout.JAVA_LONG, 8, 0x5eed);
        first.deactivate(); // as when the platform stops

        PortalsImpl second = new PortalsImpl();
        try {
            PortalRegion again = second.create("keep", 4096, "me", Rights.RW, file);
            assertEquals(0x5eed, again.segment().get(ValueLayout.JAVA_LONG, 8));
            assertTrue(second.delete("keep"));
            assertThrows(IllegalStateException.class, () -> again.segment().get(ValueLayout.JAVA_LONG, 8),
                    "a deleted region's host view is closed, not dangling");
            IllegalArgumentException size = assertThrows(IllegalArgumentException.class,
                    () -> second.create("keep", 8192, "me", Rights.RW, file));
            assertTrue(size.getMessage().contains("has 4096 bytes"), size.getMessage());
        } finally {
            second.deactivate();
        }
    }

    @Test
    void deactivationUnmapsEveryRegionAndForgetsThem() {
        PortalsImpl portals = new PortalsImpl();
        var segment = portals.create("one", 4096, "", Rights.RW, null).segment();
        portals.deactivate();
        assertFalse(segment.scope().isAlive(), "the region's memory is unmapped");
        assertEquals(List.of(), portals.list());
    }

    @Test
    void badNamesSizesAndDuplicatesAreRefused() {
        PortalsImpl portals = new PortalsImpl();
        try {
            assertThrows(IllegalArgumentException.class, () -> portals.create("Bad Name", 4096, "", Rights.RW, null));
            assertThrows(IllegalArgumentException.class, () -> portals.create("sixteen-chars-xx", 4096, "", Rights.RW, null));
            assertThrows(IllegalArgumentException.class, () -> portals.create("odd", 4097, "", Rights.RW, null));
            assertThrows(IllegalArgumentException.class, () -> portals.create("huge", 512L << 20, "", Rights.RW, null));
            IllegalArgumentException empty = assertThrows(IllegalArgumentException.class, () -> portals.create("empty", 0, "", Rights.RW, null));
            assertEquals("portal empty: size 0 must be a multiple of 4 KiB from 4K to 256M", empty.getMessage());
            assertThrows(IllegalArgumentException.class, () -> portals.create("over", (256L << 20) + 4096, "", Rights.RW, null));
            var largest = portals.create("largest", 256L << 20, "", Rights.RW, null);
            assertEquals(256L << 20, largest.size(), "256M exactly is allowed");
            assertTrue(portals.delete("largest"));
            portals.create("one", 4096, "", Rights.RW, null);
            assertThrows(IllegalArgumentException.class, () -> portals.create("one", 4096, "", Rights.RW, null));
            assertEquals(1, portals.list().size());
            assertThrows(IllegalArgumentException.class, () -> portals.map("vm-1", "one"), "no grant, no mapping");
        } finally {
            portals.deactivate();
        }
    }

    @Test
    void doorbellWakesAWaiterAndTimesOut() throws Exception {
        DoorbellPage bell = new DoorbellPage();
        assertEquals(0, bell.await(0, Duration.ofMillis(20)), "times out with the count unchanged");
        Thread ringer = Thread.ofPlatform().start(() -> {
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                return;
            }
            bell.write(0, 4, 1);
        });
        long start = System.nanoTime();
        assertEquals(1, bell.await(0, Duration.ofSeconds(10)));
        assertTrue(System.nanoTime() - start < 5_000_000_000L, "woken by the ring, not the timeout");
        ringer.join();
    }
}
