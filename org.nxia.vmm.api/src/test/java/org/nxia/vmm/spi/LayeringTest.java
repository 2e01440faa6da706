package org.nxia.vmm.spi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

/**
 * The backend SPI depends on nothing of the client API: a backend (WHP, HVF)
 * builds against {@code org.nxia.vmm.spi} alone. Read from the compiled
 * classes, whose constant pools name every type a class uses.
 */
class LayeringTest {

    @Test
    void noSpiClassUsesTheClientApi() throws IOException, URISyntaxException {
        Path spi = Path.of(Hypervisor.class.getProtectionDomain().getCodeSource().getLocation().toURI()).resolve("org/nxia/vmm/spi");
        List<Path> classes;
        try (Stream<Path> s = Files.list(spi)) {
            classes = s.filter(p -> p.toString().endsWith(".class")).toList();
        }
        assertTrue(classes.size() >= 27, "the SPI's classes are where they were looked for: " + classes.size());
        List<String> offenders = classes.stream()
                .filter(p -> read(p).contains("org/nxia/vmm/api/"))
                .map(p -> p.getFileName().toString())
                .toList();
        assertEquals(List.of(), offenders, "SPI classes that use the client API");
    }

    private static String read(Path p) {
        try {
            return new String(Files.readAllBytes(p), StandardCharsets.ISO_8859_1);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
