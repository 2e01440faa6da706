package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.nxia.itest.ThirdParty.CHECKSUM;
import static org.nxia.itest.ThirdParty.WATCHDOG;
import static org.nxia.itest.ThirdParty.await;
import static org.nxia.itest.ThirdParty.installed;
import static org.ops4j.pax.exam.CoreOptions.composite;
import static org.ops4j.pax.exam.CoreOptions.options;
import static org.ops4j.pax.exam.CoreOptions.systemProperty;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.JarFile;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.gemini.api.Gemini;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.vmm.api.device.DeviceFactory;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.InvalidSyntaxException;

/**
 * Third-party bundles deployed into a running platform and undeployed again, registry only (no
 * VM runs here; ThirdPartyVmTest runs their guests on KVM): the shipped deploy/ watcher
 * (distro/conf/org.apache.felix.fileinstall-deploy.cfg) installs a dropped jar and uninstalls
 * a deleted one, and Gogo's install/start/uninstall do the same by hand.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class DeployTest {

    /** The deploy/ directory the shipped watcher follows in the framework under test (nxia.deploy). */
    static final Path DEPLOY = Path.of(System.getProperty("java.io.tmpdir"), "nxia-itest-deploy-" + ProcessHandle.current().pid());

    @Inject
    BundleContext context;

    @Inject
    CommandProcessor processor;

    @Inject
    Gemini gemini;

    @Inject
    CallPolicy policy;

    @Configuration
    public Option[] config() {
        return options(composite(ThirdParty.shell()), systemProperty("nxia.deploy").value(DEPLOY.toString()));
    }

    @Test
    public void theExamplesImportApiPackagesOnly() throws Exception {
        for (String bsn : List.of(WATCHDOG, CHECKSUM)) {
            try (JarFile jar = new JarFile(ThirdParty.jar(bsn).toFile())) {
                String imports = jar.getManifest().getMainAttributes().getValue("Import-Package");
                assertFalse(bsn + " imports " + imports, imports.contains(".internal"));
            }
        }
    }

    @Test
    public void aJarDroppedIntoDeployIsInstalledAndDeletingItUndeploysIt() throws Exception {
        Path watcher = NxiaOptions.CONF.resolve("org.apache.felix.fileinstall-deploy.cfg");
        Files.createDirectories(DEPLOY);
        Path watchdog = DEPLOY.resolve(WATCHDOG + ".jar");
        Path checksum = DEPLOY.resolve(CHECKSUM + ".jar");
        try {
            // the file ./nxia ships, as it is: its ${nxia.deploy} is this test's directory
            Files.copy(Path.of(System.getProperty("nxia.root"), "distro", "conf", watcher.getFileName().toString()), watcher);
            Files.copy(ThirdParty.jar(WATCHDOG), watchdog);
            Files.copy(ThirdParty.jar(CHECKSUM), checksum);
            await(() -> deviceType("watchdog"), "the dropped watchdog registered its device type");
            await(() -> gemini.services().containsKey("checksum"), "the dropped checksum adapter became a Gemini service");
            assertEquals(List.of("adler32", "crc32", "crc32c"), gemini.services().get("checksum").stream().sorted().toList());
            assertEquals(Bundle.ACTIVE, installed(context, WATCHDOG).orElseThrow().getState());
            String devices = Gogo.run(processor, "device:list").output();
            assertTrue(devices, devices.lines().anyMatch(l -> l.matches("\\|\\s*watchdog\\s*\\|.*") && l.contains(WATCHDOG)));

            Files.delete(watchdog);
            Files.delete(checksum);
            await(() -> installed(context, WATCHDOG).isEmpty() && installed(context, CHECKSUM).isEmpty(), "deleting the jars uninstalled both");
            assertGone();
        } finally {
            Files.deleteIfExists(watchdog);
            Files.deleteIfExists(checksum);
            await(() -> installed(context, WATCHDOG).isEmpty() && installed(context, CHECKSUM).isEmpty(), "the watcher undeployed both");
            Files.deleteIfExists(watcher);
        }
    }

    @Test
    public void theCheckSumGuestsShippedManifestLoads() throws Exception {
        Path file = NxiaOptions.CONF.resolve("org.nxia.lsm.policy.manifest-checksum.cfg");
        try {
            Files.copy(Path.of(System.getProperty("nxia.root"), "examples", "checksum", file.getFileName().toString()), file);
            await(() -> policy.manifests().containsKey("checksum"), "the shipped manifest file loaded");
            assertTrue(policy.manifests().get("checksum"), policy.manifests().get("checksum").contains("allow out checksum.*"));
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    public void gogoInstallStartAndUninstall() throws Exception {
        for (String bsn : List.of(WATCHDOG, CHECKSUM)) {
            Gogo.run(processor, "felix:install " + ThirdParty.jar(bsn).toUri());
            Bundle b = installed(context, bsn).orElseThrow(() -> new AssertionError(bsn + " was not installed"));
            assertEquals("installed, not yet started", Bundle.INSTALLED, b.getState());
            Gogo.run(processor, "felix:start " + b.getBundleId());
        }
        await(() -> deviceType("watchdog"), "the started watchdog registered its device type");
        await(() -> gemini.services().containsKey("checksum"), "the started checksum adapter became a Gemini service");

        for (String bsn : List.of(WATCHDOG, CHECKSUM)) {
            Gogo.run(processor, "felix:uninstall " + installed(context, bsn).orElseThrow().getBundleId());
        }
        assertGone();
    }

    /** Nothing of either example is left: no bundle, no service, no device type, no thread. */
    private void assertGone() throws Exception {
        assertTrue(installed(context, WATCHDOG).isEmpty());
        assertTrue(installed(context, CHECKSUM).isEmpty());
        assertFalse("no watchdog device factory", deviceType("watchdog"));
        assertFalse(gemini.services().toString(), gemini.services().containsKey("checksum"));
        String devices = Gogo.run(processor, "device:list").output();
        assertFalse(devices, devices.contains("watchdog"));
        await(() -> !ThirdParty.threadAlive("nxia-watchdog"), "the watchdog's checker thread ended with its bundle");
    }

    private boolean deviceType(String type) {
        try {
            return !context.getServiceReferences(DeviceFactory.class, "(" + DeviceFactory.TYPE_PROPERTY + "=" + type + ")").isEmpty();
        } catch (InvalidSyntaxException e) {
            throw new IllegalArgumentException(e);
        }
    }
}
