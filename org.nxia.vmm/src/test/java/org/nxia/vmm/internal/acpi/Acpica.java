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
 * Runs ACPICA's tools (Debian's acpica-tools): iasl for the byte-exact
 * tests, acpiexec to load tables into ACPICA's interpreter, the one Linux
 * uses. Not finding them fails the test, saying how to install them: CI
 * installs them ({@code tools/need.sh test}), so a skip would hide a
 * missing check.
 */
final class Acpica {

    static final String INSTALL_HINT = "iasl and acpiexec (ACPICA) are needed to check the ACPI tables: "
            + "install Debian's acpica-tools (sudo apt-get install acpica-tools, or tools/need.sh test)";

    /** How either tool reports trouble: both exit 0 on a wrong checksum or a name they cannot find. */
    private static final Pattern PROBLEM = Pattern.compile("(?m)^(Error|Warning) +\\d+|(ACPI|Firmware) (Error|Warning)"
            + "|[1-9]\\d* (Errors|Warnings)|Could not|does not contain|Incorrect|Invalid|failed|AE_[A-Z_]+");

    /**
     * acpiexec's resources command also tries to set a device's resources
     * (_SRS), which fixed devices do not have.
     */
    private static final Pattern NO_SRS = Pattern.compile("(?m)^AcpiSetCurrentResources failed: AE_NOT_FOUND$");

    private Acpica() {
    }

    /** Compiles the test resource {@code acpi/name} (ASL or a data table source) in {@code dir}: the AML bytes. */
    static byte[] compileResource(String name, Path dir) throws IOException, InterruptedException {
        Path source = dir.resolve(name);
        try (InputStream in = Acpica.class.getResourceAsStream("/acpi/" + name)) {
            if (in == null) {
                throw new IOException("no test resource acpi/" + name);
            }
            Files.copy(in, source);
        }
        return compile(source);
    }

    /**
     * Compiles {@code source} to {@code <source without extension>.aml}: its bytes. Two of iasl's
     * complaints are ignored, both the VMBus's: error 6033 ("_HID string must be exactly 7 or 8
     * characters"), for its _HID is Hyper-V's "VMBus", what Linux matches and no valid ACPI id would
     * be; and warning 3150 (an empty resource template), for it has no resources on x86.
     */
    static byte[] compile(Path source) throws IOException, InterruptedException {
        String base = source.getFileName().toString().replaceFirst("\\.[^.]*$", "");
        Path prefix = source.resolveSibling(base + "-iasl");
        run(source.getParent(), "iasl", "-vi", "-vw", "6033", "-vw", "3150", "-p", prefix.toString(), source.toString());
        return Files.readAllBytes(prefix.resolveSibling(prefix.getFileName() + ".aml"));
    }

    /** Disassembles the binary table {@code table} (iasl -d): the source iasl wrote. */
    static Path disassemble(Path table) throws IOException, InterruptedException {
        String base = table.getFileName().toString().replaceFirst("\\.[^.]*$", "");
        Path prefix = table.resolveSibling(base + "-dis");
        run(table.getParent(), "iasl", "-vi", "-p", prefix.toString(), "-d", table.toString());
        Path source = prefix.resolveSibling(prefix.getFileName() + ".dsl");
        String text = Files.readString(source);
        if (text.contains("****")) {   // how the disassembler marks a field it found wrong
            fail("iasl -d flagged " + table.getFileName() + ":\n" + text);
        }
        return source;
    }

    /**
     * Loads {@code tables} (binary; a DSDT among them) into acpiexec, which
     * makes its own RSDP and XSDT for them, and runs {@code commands} (";"
     * between two): what it printed.
     */
    static String acpiexec(Path dir, String commands, Path... tables) throws IOException, InterruptedException {
        List<String> args = new ArrayList<>(List.of("acpiexec", "-b", commands));
        for (Path table : tables) {
            args.add(table.toString());
        }
        return run(dir, NO_SRS, args.toArray(String[]::new));
    }

    /** Runs an ACPICA tool, failing the test with its output when it does not exit 0 or reports a problem. */
    static String run(Path dir, String... command) throws IOException, InterruptedException {
        return run(dir, null, command);
    }

    /** As {@link #run(Path, String...)}, not counting lines that match {@code benign} as problems. */
    private static String run(Path dir, Pattern benign, String... command) throws IOException, InterruptedException {
        Process p;
        try {
            p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        } catch (IOException e) {
            fail(INSTALL_HINT + " (" + e.getMessage() + ")");
            throw e;
        }
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        int rc = p.waitFor();
        String line = String.join(" ", command);
        assertEquals(0, rc, () -> line + " failed:\n" + output);
        String judged = benign == null ? output : benign.matcher(output).replaceAll("");
        if (PROBLEM.matcher(judged).find()) {
            fail(line + " reported a problem:\n" + output);
        }
        return output;
    }
}
