package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.profile.api.Profile;
import org.nxia.profile.api.ProfileRegistry;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.spi.PlacementOutcome;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * The shipped perf profile on real KVM: a Linux VM made from it (as vm:exec --profile perf and
 * vm:boot --profile perf make it) has its two vCPU threads pinned to host CPUs 0 and 1, its RAM
 * allocated up front and huge pages as the host allows, and vm:info says so. A host with one CPU
 * (the rig by default) cannot honour cpus = 0-1: that is refused when the VM is made, saying why.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsKernel
@ExamReactorStrategy(PerClass.class)
public class PlacementTest {

    @Inject
    VmManager vms;

    @Inject
    ProfileRegistry profiles;

    @Inject
    CommandProcessor processor;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void aVmFromThePerfProfileIsPlacedAndVmInfoSaysHow() throws Exception {
        Path file = NxiaOptions.CONF.resolve("org.nxia.profile-perf.cfg");
        Files.copy(Path.of(System.getProperty("nxia.root"), "distro", "conf", file.getFileName().toString()), file,
                StandardCopyOption.REPLACE_EXISTING);
        try {
            placed();
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private void placed() throws Exception {
        long wait = System.currentTimeMillis() + 20_000;
        while (profiles.get("perf").isEmpty() && System.currentTimeMillis() < wait) {
            Thread.sleep(50);
        }
        Profile perf = profiles.get("perf").orElseThrow(() -> new AssertionError("the shipped perf profile was not loaded: "
                + profiles.refused()));
        LinuxProfile spec = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withName("profile perf v" + perf.version()).withMemory(perf.memoryBytes()).withVcpus(perf.vcpus())
                .withDevices(perf.devices()).withPlacement(perf.placement().host()).withTimeout(Duration.ofMinutes(2));
        int hostCpus = Runtime.getRuntime().availableProcessors();
        System.out.println("PlacementTest: " + hostCpus + " host CPUs; perf asks for " + perf.placement());
        if (hostCpus < 2) {
            try {
                vms.create(spec);
                throw new AssertionError("perf's cpus 0-1 made a VM on a host with one CPU");
            } catch (IllegalArgumentException e) {
                assertEquals("host CPUs 1 are not ones this process may run on (it may run on 0); change the profile's cpus", e.getMessage());
                return;
            }
        }
        VirtualMachine vm = vms.create(spec);
        try {
            PlacementOutcome overcommit = vm.placement().get(2);
            assertEquals(new PlacementOutcome("overcommit", true, true, "none: all 1024 MiB allocated up front"), overcommit);
            vm.start();
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!vm.placement().get(0).inEffect()) {
                assertTrue("vCPUs pinned within 60 s: " + vm.placement(), System.nanoTime() < deadline);
                Thread.sleep(50);
            }
            String info = Gogo.run(processor, "vm:info " + vm.id()).output();
            System.out.println("PlacementTest: vm:info of a VM from the perf profile:\n" + info);
            assertTrue(info, info.contains("name:       profile perf v"));
            assertTrue(info, info.contains("cpus:       0,1 pinned (vcpu0 on 0, vcpu1 on 1)"));
            assertTrue(info, info.contains("overcommit: none: all 1024 MiB allocated up front"));
            String huge = info.lines().filter(l -> l.startsWith("hugepages:  ")).findFirst().orElseThrow(() -> new AssertionError(info));
            assertTrue(huge, huge.contains("hugetlbfs 2 MiB pages") || huge.contains("THP madvise (") || huge.endsWith(": 4 KiB pages"));
        } finally {
            vms.destroy(vm.id());
        }
    }
}
