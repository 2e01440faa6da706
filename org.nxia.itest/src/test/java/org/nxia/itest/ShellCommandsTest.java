package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.List;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.service.cm.ConfigurationAdmin;

/** The Gogo commands a user types, run on KVM: their exit status is what the launcher returns. */
@RunWith(KvmRequirement.class)
@ExamReactorStrategy(PerClass.class)
public class ShellCommandsTest {

    @Inject
    CommandProcessor processor;

    @Inject
    VmManager vms;

    @Inject
    ConfigurationAdmin config;

    @Inject
    CallPolicy policy;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    private Gogo.Run execute(String command) throws Exception {
        return Gogo.run(processor, command);
    }

    @Test
    public void theDemoChecksEveryOutcomeAndThatTheVmmStillRunsVmsAfterTheHostileGuests() throws Exception {
        Gogo.Run run;
        // the demo's hostcall guest calls 'upper', which the shipped distro/conf manifest allows
        try (Manifests m = Manifests.load(config, policy, "hostcall", "allow out hostfunction.*\n")) {
            run = execute("nxia:demo");
        }
        assertEquals("nxia:demo's status (0: every example as expected, a VM ran after the hostile ones, none left)",
                0, run.exit());
        assertTrue("no VM is left behind: " + vms.list(), vms.list().isEmpty());
    }

    @Test
    public void vmRunGivesTheGuestsExitStatus() throws Exception {
        assertEquals(0, execute("vm:run hello").exit());
        assertEquals("debug-exit writes 3 to its port", 3, execute("vm:run --devices debug-exit debug-exit").exit());
        assertEquals("a hostile guest's run fails", 1, execute("vm:run bad-port").exit());
        assertTrue(vms.list().isEmpty());
    }

    @Test
    public void aVmMadeFromAProfileGetsItsSettingsAndSaysWhichVersion() throws Exception {
        java.nio.file.Path file = NxiaOptions.CONF.resolve("org.nxia.profile-shelltest.cfg");
        try {
            java.nio.file.Files.writeString(file, "name = shelltest\nkind = micro\nmemory = 32M\ndevices = uart\n");
            long deadline = System.currentTimeMillis() + 20_000;
            while (!execute("profile:list").output().contains("shelltest") && System.currentTimeMillis() < deadline) {
                Thread.sleep(50);
            }
            String id = execute("vm:create --profile shelltest --devices debug-exit hello").output().strip();
            try {
                VirtualMachine vm = vms.find(id).orElseThrow(() -> new AssertionError("vm:create --profile printed " + id));
                assertEquals(32L << 20, vm.info().memoryBytes());
                assertEquals("the profile's devices, then the command line's", List.of("uart", "debug-exit"),
                        vm.devices().stream().map(d -> d.type()).toList());
                String info = execute("vm:info " + id).output();
                assertTrue(info, info.contains("name:       profile shelltest v1"));
            } finally {
                vms.destroy(id);
            }
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
    }

    @Test
    public void helpDescribesACommandOfEveryScope() throws Exception {
        String all = execute("help").output();
        for (String command : List.of("vm:run", "vm:exec", "nxia:demo", "bench:exits", "portal:create", "gemini:sessions",
                "policy:show", "device:list", "control:vms", "profile:list")) {
            assertTrue(command + " is in 'help'", all.contains(command));
            String one = execute("help " + command).output();
            assertTrue("'help " + command + "' describes it: " + one, one.contains(command.substring(command.indexOf(':') + 1))
                    && one.lines().count() >= 2);
        }
    }
}
