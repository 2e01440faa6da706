package org.nxia.itest;

import static org.ops4j.pax.exam.CoreOptions.composite;
import static org.ops4j.pax.exam.CoreOptions.mavenBundle;
import static org.ops4j.pax.exam.CoreOptions.options;
import static org.ops4j.pax.exam.CoreOptions.systemProperty;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import java.util.function.BooleanSupplier;

import org.ops4j.pax.exam.Option;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;

/** The third-party example bundles (examples/) as files, and what the deploy tests wait for. */
final class ThirdParty {

    static final String WATCHDOG = "org.nxia.examples.watchdog";
    static final String CHECKSUM = "org.nxia.examples.checksum";
    static final long WAIT_MS = 20_000;

    private ThirdParty() {
    }

    /** The example's jar as the build left it (examples/NAME/target). */
    static Path jar(String bsn) {
        String name = bsn.substring(bsn.lastIndexOf('.') + 1);
        Path jar = Path.of(System.getProperty("nxia.root"), "examples", name, "target", bsn + "-" + System.getProperty("nxia.version") + ".jar");
        if (!Files.isRegularFile(jar)) {
            throw new IllegalStateException(jar + " is missing: build the examples first (./mvnw verify builds them)");
        }
        return jar;
    }

    /**
     * The platform with the Gogo shell bundle, not interactive, as ./nxia runs it: its converters
     * turn a bundle id into the bundle, so {@code felix:uninstall ID} works as a user types it.
     */
    static Option[] shell() {
        return options(composite(NxiaOptions.platform()), systemProperty("gosh.args").value("--nointeractive"),
                mavenBundle("org.apache.felix", "org.apache.felix.gogo.shell", "1.1.4"));
    }

    static Optional<Bundle> installed(BundleContext context, String bsn) {
        return Arrays.stream(context.getBundles()).filter(b -> bsn.equals(b.getSymbolicName())).findFirst();
    }

    static boolean threadAlive(String name) {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals(name) && t.isAlive());
    }

    static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("not within " + WAIT_MS + " ms: " + what);
            }
            Thread.sleep(50);
        }
    }
}
