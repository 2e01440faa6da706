package org.nxia.shell.support;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the guest kit's images are: {@code nxia.guest.images}, else {@code guest/target/images}.
 * Shared by the commands that run guests by name: {@code vm:*} and {@code bench:*} here, and the
 * cluster's, which take names only (a remote node must not choose files).
 *
 * @since 1.2
 */
public final class GuestKit {

    public static final String PROPERTY = "nxia.guest.images";

    private GuestKit() {
    }

    public static Path directory() {
        String configured = System.getProperty(PROPERTY);
        return Path.of(configured != null && !configured.isBlank() ? configured : "guest/target/images");
    }

    /** An image by name ({@code hello} or {@code hello.elf}) or by path. */
    public static Path resolve(String nameOrPath) {
        Path p = Path.of(nameOrPath);
        if (nameOrPath.contains("/") || Files.exists(p)) {
            return p;
        }
        String file = nameOrPath.endsWith(".elf") ? nameOrPath : nameOrPath + ".elf";
        Path inDir = directory().resolve(file);
        if (!Files.exists(inDir)) {
            throw new IllegalArgumentException("no guest image '" + nameOrPath + "' (looked for " + p.toAbsolutePath()
                    + " and " + inDir.toAbsolutePath() + "); build the guests with ./nxia build, or give a path");
        }
        return inDir;
    }

    /** The C floor binary that benchmarks compare against. */
    public static Path floor() {
        return directory().resolve("kvm-floor");
    }
}
