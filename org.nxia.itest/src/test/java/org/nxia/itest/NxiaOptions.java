package org.nxia.itest;

import static org.ops4j.pax.exam.CoreOptions.bundle;
import static org.ops4j.pax.exam.CoreOptions.composite;
import static org.ops4j.pax.exam.CoreOptions.systemPackage;
import static org.ops4j.pax.exam.CoreOptions.junitBundles;
import static org.ops4j.pax.exam.CoreOptions.mavenBundle;
import static org.ops4j.pax.exam.CoreOptions.options;
import static org.ops4j.pax.exam.CoreOptions.systemProperty;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.ops4j.pax.exam.Option;

/** The framework every in-framework test runs: Felix, SCR, ConfigAdmin, Gogo runtime and the NXIA bundles. */
final class NxiaOptions {

    static final String[] NXIA_BUNDLES = {"org.nxia.vmm.api", "org.nxia.backend.kvm", "org.nxia.vmm", "org.nxia.examples", "org.nxia.device.platform", "org.nxia.device.virtio", "org.nxia.device.vmbus", "org.nxia.shell", "org.nxia.shell.systemvm",
        "org.nxia.portal", "org.nxia.lsm.policy", "org.nxia.gemini", "org.nxia.control", "org.nxia.profile", "org.nxia.snapshot"};

    /** The directory FileInstall watches in the framework under test. */
    static final Path CONF = Path.of(System.getProperty("java.io.tmpdir"), "nxia-itest-conf-" + ProcessHandle.current().pid());

    private NxiaOptions() {
    }

    static Option[] platform() {
        try {
            Files.createDirectories(CONF);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        String root = System.getProperty("nxia.root");
        String version = System.getProperty("nxia.version");
        String m2 = System.getProperty("nxia.m2");
        Option[] nxia = new Option[NXIA_BUNDLES.length];
        for (int i = 0; i < NXIA_BUNDLES.length; i++) {
            Path jar = Path.of(root, NXIA_BUNDLES[i], "target", NXIA_BUNDLES[i] + "-" + version + ".jar");
            if (!Files.isRegularFile(jar)) {
                throw new IllegalStateException(jar + " is missing: build the bundles first (./mvnw verify builds them)");
            }
            nxia[i] = bundle(jar.toUri().toString());
        }
        // Optional paths tests read inside the framework (the Linux VM's kernel and initramfs).
        List<Option> optional = new ArrayList<>();
        for (String key : new String[] {"nxia.linux.kernel", "nxia.linux.initrd"}) {
            if (System.getProperty(key) != null) {
                optional.add(systemProperty(key).value(System.getProperty(key)));
            }
        }
        return options(
                composite(optional.toArray(Option[]::new)),
                systemProperty("org.ops4j.pax.url.mvn.localRepository").value(m2),
                systemProperty("org.ops4j.pax.url.mvn.repositories").value("https://repo1.maven.org/maven2@id=central"),
                systemProperty("nxia.guest.images").value(System.getProperty("nxia.guest.images")),
                systemPackage("com.sun.management"),
                junitBundles(),
                mavenBundle("org.osgi", "org.osgi.util.function", "1.2.0"),
                mavenBundle("org.osgi", "org.osgi.util.promise", "1.3.0"),
                mavenBundle("org.osgi", "org.osgi.service.component", "1.5.1"),
                mavenBundle("org.apache.felix", "org.apache.felix.scr", "2.2.18"),
                mavenBundle("org.apache.felix", "org.apache.felix.configadmin", "1.9.26"),
                mavenBundle("org.apache.felix", "org.apache.felix.fileinstall", "3.7.4"),
                // FileInstall watches a directory of the test's own (ProfileTest writes profiles there)
                systemProperty("felix.fileinstall.dir").value(System.getProperty("nxia.itest.conf", CONF.toString())),
                systemProperty("felix.fileinstall.poll").value("200"),
                systemProperty("felix.fileinstall.noInitialDelay").value("true"),
                systemProperty("felix.fileinstall.enableConfigSave").value("false"),
                mavenBundle("org.apache.felix", "org.apache.felix.gogo.runtime", "1.1.6"),
                mavenBundle("org.apache.felix", "org.apache.felix.gogo.command", "1.1.2"),   // help, as the distro has it
                composite(nxia));
    }
}
