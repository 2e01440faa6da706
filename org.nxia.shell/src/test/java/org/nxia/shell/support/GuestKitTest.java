package org.nxia.shell.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GuestKitTest {

    @TempDir
    Path kit;

    private final String before = System.getProperty(GuestKit.PROPERTY);

    @AfterEach
    void restore() {
        if (before == null) {
            System.clearProperty(GuestKit.PROPERTY);
        } else {
            System.setProperty(GuestKit.PROPERTY, before);
        }
    }

    @Test
    void aGuestByNameIsTheKitsImageAndAPathIsItself() throws Exception {
        System.setProperty(GuestKit.PROPERTY, kit.toString());
        Path hello = Files.writeString(kit.resolve("hello.elf"), "x");
        assertEquals(kit, GuestKit.directory());
        assertEquals(hello, GuestKit.resolve("hello"));
        assertEquals(hello, GuestKit.resolve("hello.elf"));
        assertEquals(Path.of("/some/where/g.elf"), GuestKit.resolve("/some/where/g.elf"), "a path is taken as given");
        assertEquals(kit.resolve("kvm-floor"), GuestKit.floor());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GuestKit.resolve("nosuch"));
        assertTrue(e.getMessage().contains("no guest image 'nosuch'") && e.getMessage().contains(kit.resolve("nosuch.elf").toString()),
                e.getMessage());
    }

    @Test
    void withoutThePropertyTheKitIsTheBuildsOutput() {
        System.clearProperty(GuestKit.PROPERTY);
        assertEquals(Path.of("guest/target/images"), GuestKit.directory());
        System.setProperty(GuestKit.PROPERTY, " ");
        assertEquals(Path.of("guest/target/images"), GuestKit.directory(), "a blank property is no directory");
    }
}
