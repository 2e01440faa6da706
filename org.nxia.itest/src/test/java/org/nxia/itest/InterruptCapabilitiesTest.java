package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.Optional;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.vmm.api.Doorbell;
import org.nxia.vmm.api.ExitHandler;
import org.nxia.vmm.api.Hypervisor;
import org.nxia.vmm.api.InterruptController;
import org.nxia.vmm.api.InterruptLine;
import org.nxia.vmm.api.Partition;
import org.nxia.vmm.api.Registers;
import org.nxia.vmm.api.Segment;
import org.nxia.vmm.api.SpecialRegisters;
import org.nxia.vmm.api.Vcpu;
import org.nxia.vmm.api.VcpuStop;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * The backend's optional capabilities on hardware KVM: the in-kernel
 * interrupt controller and its lines, and doorbells (ioeventfd) that turn a
 * guest's MMIO write into a count without an exit. The guest is eleven bytes
 * of real-mode code.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@ExamReactorStrategy(PerClass.class)
public class InterruptCapabilitiesTest {

    /** 64 KiB of RAM: the guest's writes to 0x20050 are MMIO. */
    static final long RAM = 64 << 10;
    static final long BELL = 0x20050;
    /** mov ax, 0x2000; mov ds, ax; mov word [0x50], 1; mov word [0x50], 1; hlt */
    static final byte[] CODE = {(byte) 0xb8, 0x00, 0x20, (byte) 0x8e, (byte) 0xd8,
            (byte) 0xc7, 0x06, 0x50, 0x00, 0x01, 0x00, (byte) 0xc7, 0x06, 0x50, 0x00, 0x01, 0x00, (byte) 0xf4};

    @Inject
    Hypervisor hypervisor;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void interruptControllerOnceBeforeTheFirstVcpu() {
        try (Partition p = hypervisor.createPartition(2 << 20)) {
            Optional<InterruptController> irqchip = p.createInterruptController();
            assertTrue("hardware KVM has an in-kernel irqchip", irqchip.isPresent());
            InterruptLine line = irqchip.get().line(5);
            assertEquals(5, line.gsi());
            line.pulse();
            line.set(true);
            line.set(false);
            assertThrows(IllegalArgumentException.class, () -> irqchip.get().line(24));
            assertThrows(IllegalStateException.class, p::createInterruptController);
            System.out.println("InterruptCapabilitiesTest: irqfd " + irqchip.get().irqfd());
        }
        try (Partition p = hypervisor.createPartition(2 << 20)) {
            p.createVcpu(0).close();
            assertThrows(IllegalStateException.class, p::createInterruptController);
        }
    }

    @Test
    public void doorbellCountsWritesThatNoLongerExit() {
        assertEquals("without a doorbell each write exits", 2, runGuest(false));
        assertEquals("with a doorbell no write exits", 0, runGuest(true));
    }

    /** Drivers reset devices: a closed doorbell must give its eventfd back at once, not when the VM ends. */
    @Test
    public void closedDoorbellsReleaseTheirEventfdsWhileThePartitionLives() throws Exception {
        try (Partition p = hypervisor.createPartition(RAM)) {
            long before = openFds();
            for (int i = 0; i < 64; i++) {
                Doorbell bell = p.createDoorbell(BELL, 4).orElseThrow();
                if (i % 2 == 1) {
                    // a thread waiting in await when it closes releases it on the way out
                    Thread waiter = Thread.ofPlatform().start(bell::await);
                    while (waiter.getState() != Thread.State.RUNNABLE && waiter.isAlive()) {
                        Thread.onSpinWait();
                    }
                    Thread.sleep(2);
                    bell.close();
                    waiter.join(5_000);
                    assertTrue("the waiter woke when the doorbell closed", !waiter.isAlive());
                } else {
                    bell.close();
                }
            }
            long after = openFds();
            System.out.println("InterruptCapabilitiesTest: open fds " + before + " before 64 doorbells, " + after + " after closing them");
            assertTrue("64 doorbells opened and closed left " + (after - before) + " fds open", after - before < 4);
        }
    }

    private static long openFds() throws java.io.IOException {
        try (var fds = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    /** Runs the guest; returns the MMIO write exits it made. */
    private int runGuest(boolean doorbell) {
        try (Partition p = hypervisor.createPartition(RAM)) {
            p.memory().write(0x1000, CODE);
            Optional<Doorbell> bell = doorbell ? p.createDoorbell(BELL, 2) : Optional.empty();
            if (doorbell) {
                assertTrue("hardware KVM has ioeventfd", bell.isPresent());
                assertThrows(IllegalArgumentException.class, () -> p.createDoorbell(0x1000, 2));
            }
            Vcpu vcpu = p.createVcpu(0);
            SpecialRegisters s = vcpu.specialRegisters();
            Segment cs = s.cs();
            Segment flat = new Segment(0, cs.limit(), 0, cs.type(), cs.present(), cs.dpl(), cs.db(), cs.s(), cs.l(), cs.g(), cs.unusable());
            vcpu.setSpecialRegisters(new SpecialRegisters(flat, s.ds(), s.es(), s.fs(), s.gs(), s.ss(), s.tr(), s.ldt(),
                    s.gdt(), s.idt(), s.cr0(), s.cr2(), s.cr3(), s.cr4(), s.cr8(), s.efer(), s.apicBase()));
            vcpu.setRegisters(Registers.RESET.withEntry(0x1000, 0, 0));
            int[] writes = new int[1];
            VcpuStop stop = vcpu.run(new ExitHandler() {
                @Override
                public void portWrite(int port, int size, int value) {
                }

                @Override
                public int portRead(int port, int size) {
                    return 0;
                }

                @Override
                public void mmioWrite(long address, int size, long value) {
                    assertEquals(BELL, address);
                    writes[0]++;
                }

                @Override
                public long mmioRead(long address, int size) {
                    return 0;
                }
            });
            assertEquals(stop.detail(), VcpuStop.Kind.HALT, stop.kind());
            bell.ifPresent(b -> {
                assertEquals("the doorbell counted both writes", 2, b.await());
                b.close();
                assertEquals(0, b.await());
            });
            return writes[0];
        }
    }
}
