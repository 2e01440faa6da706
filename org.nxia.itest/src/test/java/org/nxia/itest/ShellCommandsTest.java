package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.List;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.vmm.api.VmManager;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/** The Gogo commands a user types, run on KVM: their exit status is what the launcher returns. */
@RunWith(KvmRequirement.class)
@ExamReactorStrategy(PerClass.class)
public class ShellCommandsTest {

    @Inject
    CommandProcessor processor;

    @Inject
    VmManager vms;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    private Gogo.Run execute(String command) throws Exception {
        return Gogo.run(processor, command);
    }

    @Test
    public void theDemoChecksEveryOutcomeAndThatTheVmmStillRunsVmsAfterTheHostileGuests() throws Exception {
        Gogo.Run run = execute("nxia:demo");
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
    public void helpDescribesACommandOfEveryScope() throws Exception {
        String all = execute("help").output();
        for (String command : List.of("vm:run", "vm:exec", "nxia:demo", "bench:exits", "portal:create", "gemini:sessions",
                "policy:show", "device:list", "control:vms")) {
            assertTrue(command + " is in 'help'", all.contains(command));
            String one = execute("help " + command).output();
            assertTrue("'help " + command + "' describes it: " + one, one.contains(command.substring(command.indexOf(':') + 1))
                    && one.lines().count() >= 2);
        }
    }
}
