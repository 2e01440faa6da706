package org.nxia.shell.systemvm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.spi.HypervisorInfo;

/** bench:io's arithmetic on Debian's tools' own output (captured from fio 3.33 and iperf3 3.12), and its refusals. */
class SystemVmIoBenchTest {

    private static String resource(String name) throws IOException {
        try (InputStream in = SystemVmIoBenchTest.class.getResourceAsStream("/bench-io/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static SystemVmIoBench.Job job(String name) {
        return SystemVmIoBench.jobs(64L << 20).stream().filter(j -> j.name().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void fioFiguresAreMibPerSecondForSequentialJobsAndIopsForRandomOnes() throws IOException {
        // the terse line's write bandwidth is 1365333 KiB/s, 1333 IOPS; the random read's 98698 KiB/s, 24674 IOPS
        assertEquals(1365333 / 1024.0, SystemVmIoBench.fioFigure(resource("fio-seqwrite-terse3.txt"), job("seqwrite")), 1e-9);
        assertEquals(24674, SystemVmIoBench.fioFigure(resource("fio-randread-terse3.txt"), job("randread")), 1e-9);
        assertEquals(98698 / 1024.0, SystemVmIoBench.fioFigure(resource("fio-randread-terse3.txt"), job("seqread")), 1e-9,
                "a read job reads the read half");
        assertEquals(1333, SystemVmIoBench.fioFigure(resource("fio-seqwrite-terse3.txt"), job("randwrite")), 1e-9,
                "a write job reads the write half");
    }

    @Test
    void fioOutputThatIsNotATerseVersion3LineIsRefusedSayingWhat() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SystemVmIoBench.fioFigure("fio: no such file\n", job("seqread")))
                .getMessage().contains("no fio terse line"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SystemVmIoBench.fioFigure("3;fio-3.33;x;0;0;1;2;3\n", job("seqread")))
                .getMessage().contains("has 8 fields"));
    }

    @Test
    void iperfGivesWhatTheReceiverCounted() throws IOException {
        assertEquals(23095972005.039093 / 8 / (1 << 20), SystemVmIoBench.iperfMibPerSecond(resource("iperf3-client.json")), 1e-6);
        assertThrows(IllegalArgumentException.class, () -> SystemVmIoBench.iperfMibPerSecond("{\"error\": \"unable to connect\"}"));
    }

    @Test
    void bothSidesRunTheSameFioCommandOnTheirOwnFile() {
        for (SystemVmIoBench.Job j : SystemVmIoBench.jobs(32L << 20)) {
            List<String> guest = List.of(SystemVmIoBench.fio(j, "/dev/vdb"));
            List<String> host = List.of(SystemVmIoBench.fio(j, "/tmp/x/fio.dat"));
            assertEquals(guest.size(), host.size());
            for (int i = 0; i < guest.size(); i++) {
                if (!guest.get(i).startsWith("--filename="))
                    assertEquals(guest.get(i), host.get(i));
            }
            assertTrue(guest.contains("--size=" + (32L << 20)), guest.toString());
            assertTrue(guest.contains("--output-format=terse") && guest.contains("--terse-version=3"), guest.toString());
            assertEquals(j.write(), guest.contains("--end_fsync=1"), "writes end with fsync: " + guest);
        }
    }

    @Test
    void withoutHardwareVirtualizationOrTheDebianRootItSaysWhyItDidNotRun() throws Exception {
        VmManager pvm = (VmManager) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VmManager.class},
                (p, m, a) -> m.getName().equals("hypervisor") ? new HypervisorInfo("kvm", HypervisorInfo.Flavour.PVM, true, "", 0) : null);
        assertEquals("bench io: not run: PVM (kvm_pvm) host, stock kernel needs hardware virtualization (VMX or SVM)",
                new SystemVmIoBench(null, pvm).io("64M", 5, "/r.img", "", "", ""));
        VmManager svm = (VmManager) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VmManager.class},
                (p, m, a) -> m.getName().equals("hypervisor") ? new HypervisorInfo("kvm", HypervisorInfo.Flavour.HARDWARE_SVM, true, "", 0) : null);
        assertTrue(new SystemVmIoBench(null, svm).io("64M", 5, "", "", "", "").contains("needs the Debian root"));
        assertThrows(IllegalArgumentException.class, () -> new SystemVmIoBench(null, svm).io("64K", 5, "/r.img", "", "", ""));
    }
}
