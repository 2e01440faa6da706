package org.nxia.snapshot.api;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.snapshot.bench.SnapshotSaveBench;

/**
 * Prints the save-throughput figures (no timing assertion: the machine is shared). Off by
 * default, as it writes about 2 GiB: {@code -Dnxia.snapshot.bench=256} (MiB of RAM).
 */
class SnapshotSaveBenchTest {

    @TempDir
    Path dir;

    @Test
    @EnabledIfSystemProperty(named = "nxia.snapshot.bench", matches = "\\d+")
    void printsSaveThroughputAgainstAPlainWrite() throws Exception {
        long ram = Long.getLong("nxia.snapshot.bench") << 20;
        List<SnapshotSaveBench.Figure> figures = SnapshotSaveBench.run(dir, ram, 1 << 20, 3);
        System.out.println("snapshot save, " + (ram >> 20) + " MiB of RAM, best of 3, into " + dir + ":");
        figures.forEach(f -> System.out.println("  " + f));
        assertEquals(ram, figures.getFirst().storedBytes());
        assertEquals(1 << 20, figures.get(2).storedBytes());
    }
}
