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

    /**
     * A profile's placement on real KVM: the vCPU thread pinned to the host's last CPU, guest RAM
     * advised for huge pages (or on hugetlbfs pages where the host has them free) and allocated up
     * front, each outcome in vm:info; a CPU the host lacks is refused when the VM is made.
     */
    @Test
    public void aProfilesPlacementTakesEffectAndVmInfoSaysHow() throws Exception {
        int cpu = Runtime.getRuntime().availableProcessors() - 1;
        java.nio.file.Path placed = NxiaOptions.CONF.resolve("org.nxia.profile-placed.cfg");
        java.nio.file.Path wide = NxiaOptions.CONF.resolve("org.nxia.profile-toowide.cfg");
        try {
            java.nio.file.Files.writeString(placed, "name = placed\nkind = micro\nmemory = 32M\ndevices = uart\ncpus = " + cpu
                    + "\nhugepages = true\novercommit = false\n");
            java.nio.file.Files.writeString(wide, "name = toowide\nkind = micro\ncpus = 4095\n");
            long deadline = System.currentTimeMillis() + 20_000;
            while (!execute("profile:list").output().contains("toowide") || !execute("profile:list").output().contains("placed")) {
                assertTrue("the profile files were loaded", System.currentTimeMillis() < deadline);
                Thread.sleep(50);
            }
            try {
                execute("vm:create --profile toowide hello");
                throw new AssertionError("a profile pinning to host CPU 4095 made a VM");
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage(), e.getMessage().startsWith("host CPUs 4095 are not ones this process may run on (it may run on "));
            }
            assertTrue("nothing left of the refused VM: " + vms.list(), vms.list().isEmpty());

            String id = execute("vm:create --profile placed --devices debug-exit hello").output().strip();
            try {
                String before = execute("vm:info " + id).output();
                assertTrue(before, before.contains("cpus:       " + cpu + " requested: pinned when the vCPUs run"));
                assertTrue(before, before.contains("overcommit: none: all 32 MiB allocated up front"));
                String huge = before.lines().filter(l -> l.startsWith("hugepages:  ")).findFirst().orElseThrow(() -> new AssertionError(before));
                assertTrue(huge, huge.contains("hugetlbfs 2 MiB pages") || huge.contains("THP madvise (") || huge.endsWith(": 4 KiB pages"));
                execute("vm:start " + id);
                vms.find(id).orElseThrow().await(java.time.Duration.ofSeconds(60));
                String info = execute("vm:info " + id).output();
                System.out.println("ShellCommandsTest: a placed micro-VM on " + (cpu + 1) + " host CPUs:\n" + info);
                assertTrue(info, info.contains("cpus:       " + cpu + " pinned (vcpu0 on " + cpu + ")"));
                assertTrue(info, info.contains(huge));
            } finally {
                vms.destroy(id);
            }
        } finally {
            java.nio.file.Files.deleteIfExists(placed);
            java.nio.file.Files.deleteIfExists(wide);
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
