package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.BooleanSupplier;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.profile.api.Profile;
import org.nxia.profile.api.ProfileRegistry;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * Profiles as configuration, in a real Felix with ConfigAdmin and FileInstall: a profile file
 * dropped into the watched directory becomes a profile, an edit makes the next version, a bad
 * edit is refused and the previous version stays, and deleting the file removes it. No VM runs
 * here; ShellCommandsTest makes one from a profile, on KVM.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class ProfileTest {

    static final long WAIT_MS = 20_000;

    @Inject
    ProfileRegistry profiles;

    @Inject
    CommandProcessor processor;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void aProfileFileIsFollowedThroughEditsAndRemoval() throws Exception {
        Path file = NxiaOptions.CONF.resolve("org.nxia.profile-itest.cfg");
        try {
            Files.writeString(file, "name = itest\nkind = micro\nmemory = 32M\ndevices = uart\nportal = false\n");
            await(() -> profiles.get("itest").isPresent(), "the profile file was loaded");
            Profile v1 = profiles.get("itest").orElseThrow();
            assertEquals(1, v1.version());
            assertEquals(32L << 20, v1.memoryBytes());
            assertEquals(Profile.Kind.MICRO, v1.kind());
            assertFalse(v1.portal());

            String list = Gogo.run(processor, "profile:list").output();
            assertTrue(list, list.contains("itest           1 micro       32M     1  uart"));

            Files.writeString(file, "name = itest\nkind = micro\nmemory = 64M\ndevices = uart\nportal = false\n");
            await(() -> profiles.get("itest").map(Profile::version).orElse(0L) == 2, "the edit made version 2");
            assertEquals(64L << 20, profiles.get("itest").orElseThrow().memoryBytes());

            Files.writeString(file, "name = itest\nkind = micro\nmemory = lots\n");
            await(() -> profiles.refused().values().stream().anyMatch(w -> w.contains("memory 'lots'")), "the bad edit was refused");
            Profile kept = profiles.get("itest").orElseThrow();
            assertEquals("the previous version stays", 2, kept.version());
            assertEquals(64L << 20, kept.memoryBytes());
            String refused = Gogo.run(processor, "profile:list").output();
            assertTrue(refused, refused.contains("REFUSED") && refused.contains("memory 'lots'"));

            Files.delete(file);
            await(() -> profiles.get("itest").isEmpty(), "deleting the file removed the profile");
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    public void aSystemProfileCannotMakeAMicroVm() throws Exception {
        Path file = NxiaOptions.CONF.resolve("org.nxia.profile-linux.cfg");
        try {
            Files.writeString(file, "name = linux\nkind = system\n");
            await(() -> profiles.get("linux").isPresent(), "the profile file was loaded");
            assertRefused("vm:create --profile linux hello", "profile linux makes a system VM, not a micro-VM");
            assertRefused("vm:create --profile nosuch hello", "no profile nosuch (profile:list shows the profiles)");
            assertRefused("profile:show nosuch", "no profile nosuch");
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private void assertRefused(String command, String why) throws Exception {
        try {
            Gogo.run(processor, command);
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains(why));
            return;
        }
        throw new AssertionError(command + " was not refused");
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("not within " + WAIT_MS + " ms: " + what);
            }
            Thread.sleep(50);
        }
    }
}
