package org.nxia.vmm.internal.acpi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Runs ACPICA's iasl (Debian's acpica-tools) for the byte-exact tests. Not
 * finding it fails the test, saying how to install it: CI installs it
 * ({@code tools/need.sh test}), so a skip would hide a missing check.
 */
final class Iasl {

    static final String INSTALL_HINT = "iasl (ACPICA) is needed to check the ACPI tables byte for byte: "
            + "install Debian's acpica-tools (sudo apt-get install acpica-tools, or tools/need.sh test)";

    private static final Pattern PROBLEM = Pattern.compile(
            "(?m)^(Error|Warning) +\\d+|(ACPI|Firmware) (Error|Warning)|[1-9]\\d* (Errors|Warnings)|Could not|does not contain|Incorrect|Invalid");

    private Iasl() {
    }

    /** Compiles the test resource {@code acpi/name} (ASL or a data table source) in {@code dir}: the AML bytes. */
    static byte[] compileResource(String name, Path dir) throws IOException, InterruptedException {
        Path source = dir.resolve(name);
        try (InputStream in = Iasl.class.getResourceAsStream("/acpi/" + name)) {
            if (in == null) {
                throw new IOException("no test resource acpi/" + name);
            }
            Files.copy(in, source);
        }
        return compile(source);
    }

    /** Compiles {@code source} to {@code <source without extension>.aml}: its bytes. */
    static byte[] compile(Path source) throws IOException, InterruptedException {
        String base = source.getFileName().toString().replaceFirst("\\.[^.]*$", "");
        Path prefix = source.resolveSibling(base + "-iasl");
        run(source.getParent(), "-p", prefix.toString(), source.toString());
        return Files.readAllBytes(prefix.resolveSibling(prefix.getFileName() + ".aml"));
    }

    /** Disassembles the binary table {@code table} (iasl -d): the source iasl wrote. */
    static Path disassemble(Path table) throws IOException, InterruptedException {
        String base = table.getFileName().toString().replaceFirst("\\.[^.]*$", "");
        Path prefix = table.resolveSibling(base + "-dis");
        run(table.getParent(), "-p", prefix.toString(), "-d", table.toString());
        Path source = prefix.resolveSibling(prefix.getFileName() + ".dsl");
        String text = Files.readString(source);
        if (text.contains("****")) {   // how the disassembler marks a field it found wrong
            fail("iasl -d flagged " + table.getFileName() + ":\n" + text);
        }
        return source;
    }

    /** Runs iasl, failing the test with its output when it does not exit 0 or reports an error or warning. */
    static String run(Path dir, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add("iasl");
        command.add("-vi");   // no banner
        command.addAll(List.of(args));
        Process p;
        try {
            p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        } catch (IOException e) {
            fail(INSTALL_HINT + " (" + e.getMessage() + ")");
            throw e;
        }
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        int rc = p.waitFor();
        assertEquals(0, rc, () -> String.join(" ", command) + " failed:\n" + output);
        // iasl -d exits 0 on a wrong checksum or a bad subtable and only says so
        if (PROBLEM.matcher(output).find()) {
            fail(String.join(" ", command) + " reported a problem:\n" + output);
        }
        return output;
    }
}
