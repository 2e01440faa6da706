package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.ExitHandler;
import org.nxia.vmm.spi.Hypervisor;
import org.nxia.vmm.spi.InterruptController;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.Partition;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;
import org.nxia.vmm.spi.Vcpu;
import org.nxia.vmm.spi.VcpuStop;
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

    /** Where the counting guest keeps its count (u16), reports it (OUT) and asks whether to wait for an interrupt (IN). */
    static final long COUNT = 0x500;
    static final int REPORT_PORT = 0xe0;
    static final int WAIT_PORT = 0xe1;
    /**
     * Real mode at 0x1000: IRQ 5 (the 8259 remapped to vectors 0x20..0x27, only IRQ 5 unmasked) runs
     * {@code inc word [0x500]; EOI; iret}. The loop: {@code out 0xe0, [0x500]} (the host checks the count,
     * acts on the line), {@code in al, 0xe1}: if non-zero, {@code cli; cmp; sti; hlt} until the count moves
     * (the sti shadow covers the hlt, so an interrupt cannot slip in between). GNU as, .code16:
     * <pre>
     *   xor %ax,%ax; mov %ax,%ds; mov %ax,%ss; mov $0x8000,%sp
     *   movw $handler,0x94; movw $0,0x96                       # IVT[0x25]
     *   mov $0x11,%al; out %al,$0x20; mov $0x20,%al; out %al,$0x21   # ICW1, ICW2: base 0x20
     *   mov $0x04,%al; out %al,$0x21; mov $0x01,%al; out %al,$0x21   # ICW3, ICW4: 8086 mode
     *   mov $0xdf,%al; out %al,$0x21; sti                       # unmask IRQ 5 only
     * again: mov 0x500,%ax; out %ax,$0xe0; mov %ax,%bx; in $0xe1,%al; test %al,%al; jz again
     * wait:  cli; cmp 0x500,%bx; jne taken; sti; hlt; jmp wait
     * taken: sti; jmp again
     * handler: incw 0x500; push %ax; mov $0x20,%al; out %al,$0x20; pop %ax; iret
     * </pre>
     */
    static final byte[] COUNTER = HexFormat.of().parseHex(
            "31c08ed88ed0bc0080c70694004510c70696000000b011e620b020e621b004e6"
            + "21b001e621b0dfe621fba10005e7e089c3e4e184c074f3fa3b1e00057504fbf4"
            + "ebf5fbebe5ff060005" + "50b020e62058cf");

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
            assertEquals(5, irqchip.get().line(5).gsi());
            assertThrows(IllegalArgumentException.class, () -> irqchip.get().line(24));
            assertThrows(IllegalStateException.class, p::createInterruptController);
            System.out.println("InterruptCapabilitiesTest: irqfd " + irqchip.get().irqfd());
        }
        try (Partition p = hypervisor.createPartition(2 << 20)) {
            p.createVcpu(0).close();
            assertThrows(IllegalStateException.class, p::createInterruptController);
        }
    }

    /** One step of the host's script: what it does to the line, and how many interrupts the guest must count for it. */
    private record Step(String what, Runnable action, int interrupts) {
    }

    /**
     * The guest counts every interrupt it takes; the host drives the line and
     * checks the count after each step. An edge that arrives while an earlier
     * one is still pending (not yet taken by the CPU) merges with it: three
     * pulses before the guest can take one are one interrupt. A level held high
     * is one interrupt (the pin is edge-triggered), a drop and a raise another.
     */
    @Test
    public void interruptsReachTheGuestOncePerEdgeAndMergeWhilePending() throws Exception {
        try (Partition p = hypervisor.createPartition(RAM)) {
            InterruptController irqchip = p.createInterruptController().orElseThrow();
            InterruptLine line = irqchip.line(5);
            p.memory().write(0x1000, COUNTER);
            Vcpu vcpu = realModeVcpu(p);
            List<Step> steps = new ArrayList<>();
            for (int i = 1; i <= 5; i++) {
                steps.add(new Step("pulse " + i, line::pulse, 1));
            }
            steps.add(new Step("set(true)", () -> line.set(true), 1));
            steps.add(new Step("set(true) while high", () -> line.set(true), 0));
            steps.add(new Step("set(false)", () -> line.set(false), 0));
            steps.add(new Step("set(true) after a drop", () -> line.set(true), 1));
            steps.add(new Step("set(false) again", () -> line.set(false), 0));
            steps.add(new Step("three pulses while the vCPU is out of the guest", () -> {
                line.pulse();
                line.pulse();
                line.pulse();
                sleep(500);  // an irqfd injects from a kernel worker: let all three land before the guest runs
            }, 1));
            List<String> failures = new ArrayList<>();
            int[] done = {0};
            int[] expected = {0};
            int[] answer = {0};
            Thread watchdog = Thread.ofPlatform().start(() -> {
                try {
                    Thread.sleep(60_000);
                    vcpu.requestStop();  // a lost interrupt leaves the guest halted: end the run, the asserts say where
                } catch (InterruptedException finished) {
                    // the run ended in time
                }
            });
            VcpuStop stop;
            try {
                stop = vcpu.run(new ExitHandler() {
                    @Override
                    public void portWrite(int port, int size, int value) {
                        if (port != REPORT_PORT || value != expected[0]) {
                            failures.add("after " + (done[0] == 0 ? "setup" : steps.get(done[0] - 1).what()) + " the guest wrote "
                                    + value + " to port 0x" + Integer.toHexString(port) + "; " + expected[0] + " interrupts expected");
                            vcpu.requestStop();
                        } else if (done[0] == steps.size()) {
                            vcpu.requestStop();
                        } else {
                            Step step = steps.get(done[0]++);
                            step.action().run();
                            expected[0] += step.interrupts();
                            answer[0] = step.interrupts();
                        }
                    }

                    @Override
                    public int portRead(int port, int size) {
                        return port == WAIT_PORT ? answer[0] : 0;
                    }

                    @Override
                    public void mmioWrite(long address, int size, long value) {
                        failures.add("MMIO write at 0x" + Long.toHexString(address));
                        vcpu.requestStop();
                    }

                    @Override
                    public long mmioRead(long address, int size) {
                        return 0;
                    }
                });
            } finally {
                watchdog.interrupt();
            }
            int counted = Short.toUnsignedInt(p.memory().readShort(COUNT));
            System.out.println("InterruptCapabilitiesTest: irqfd " + irqchip.irqfd() + ", " + done[0] + " of " + steps.size()
                    + " steps, the guest counted " + counted + " interrupts");
            assertEquals(List.of(), failures);
            assertEquals("the guest reported after every step (a lost interrupt leaves it waiting; count " + counted + ")",
                    steps.size(), done[0]);
            assertEquals(stop.detail(), VcpuStop.Kind.REQUESTED, stop.kind());
            assertEquals(expected[0], counted);
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
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
            Vcpu vcpu = realModeVcpu(p);
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

    /** vCPU 0 in real mode at 0x1000, CS based at 0. */
    private static Vcpu realModeVcpu(Partition p) {
        Vcpu vcpu = p.createVcpu(0);
        SpecialRegisters s = vcpu.specialRegisters();
        Segment cs = s.cs();
        Segment flat = new Segment(0, cs.limit(), 0, cs.type(), cs.present(), cs.dpl(), cs.db(), cs.s(), cs.l(), cs.g(), cs.unusable());
        vcpu.setSpecialRegisters(new SpecialRegisters(flat, s.ds(), s.es(), s.fs(), s.gs(), s.ss(), s.tr(), s.ldt(),
                s.gdt(), s.idt(), s.cr0(), s.cr2(), s.cr3(), s.cr4(), s.cr8(), s.efer(), s.apicBase()));
        vcpu.setRegisters(Registers.RESET.withEntry(0x1000, 0, 0));
        return vcpu;
    }
}
