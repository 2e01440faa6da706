package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.nxia.vmm.spi.InterruptController;
import org.nxia.vmm.spi.InterruptLine;

/**
 * KVM's in-kernel interrupt controllers (KVM_CREATE_IRQCHIP: local APICs,
 * IOAPIC, PICs; KVM_CREATE_PIT2: the PIT). Lines are driven with
 * KVM_IRQ_LINE; where KVM has irqfd, a pulse is one eventfd write instead of
 * two ioctls. Every buffer is allocated when the line is made, so raising an
 * interrupt on the exit path allocates nothing.
 */
final class KvmInterrupts implements InterruptController {

    private static final long O_IRQ_LEVEL_IRQ = offset(KVM_IRQ_LEVEL, "irq");
    private static final long O_IRQ_LEVEL_LEVEL = offset(KVM_IRQ_LEVEL, "level");
    private static final long O_IRQFD_FD = offset(KVM_IRQFD_LAYOUT, "fd");
    private static final long O_IRQFD_GSI = offset(KVM_IRQFD_LAYOUT, "gsi");
    private static final long O_IRQFD_FLAGS = offset(KVM_IRQFD_LAYOUT, "flags");

    private final int vmFd;
    private final Arena arena;
    private final boolean irqfd;
    private final Line[] lines = new Line[IOAPIC_PINS];
    private boolean closed;

    private KvmInterrupts(int vmFd, Arena arena, boolean irqfd) {
        this.vmFd = vmFd;
        this.arena = arena;
        this.irqfd = irqfd;
    }

    /**
     * Creates the irqchip and PIT on {@code vmFd}, which must have no vCPUs yet.
     *
     * @return null when KVM has no in-kernel irqchip for this VM (the caller reports absence)
     */
    static KvmInterrupts create(int vmFd, Arena arena) {
        if (Libc.ioctl(vmFd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP, "KVM_CHECK_EXTENSION") <= 0
                || Libc.ioctl(vmFd, KVM_CHECK_EXTENSION, KVM_CAP_PIT2, "KVM_CHECK_EXTENSION") <= 0) {
            return null;
        }
        try {
            Libc.ioctl(vmFd, KVM_CREATE_IRQCHIP, 0L, "KVM_CREATE_IRQCHIP");
        } catch (KvmException e) {
            return null;
        }
        maskPic(vmFd, KVM_IRQCHIP_PIC_MASTER);
        maskPic(vmFd, KVM_IRQCHIP_PIC_SLAVE);
        MemorySegment pit = arena.allocate(KVM_PIT_CONFIG);
        pit.set(ValueLayout.JAVA_INT, 0, KVM_PIT_SPEAKER_DUMMY);
        Libc.ioctl(vmFd, KVM_CREATE_PIT2, pit, "KVM_CREATE_PIT2");
        boolean irqfd = Libc.ioctl(vmFd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD, "KVM_CHECK_EXTENSION") > 0;
        return new KvmInterrupts(vmFd, arena, irqfd);
    }

    /**
     * Masks every line of one 8259, as firmware leaves them. KVM makes both unmasked at vector
     * base 0 and the boot vCPU's LINT0 an unmasked ExtINT, and every ISA GSI reaches the PICs
     * too: a line raised before the guest programs them arrives as an exception vector (a
     * hardware-reduced ACPI Linux never programs them and masks LINT0 only late in its boot;
     * seen: an early virtio interrupt on GSI 5 as 'Oops: bounds'). A guest that uses the PICs
     * programs them, masks included.
     */
    private static void maskPic(int vmFd, int chipId) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment chip = call.allocate(KVM_IRQCHIP);
            chip.set(ValueLayout.JAVA_INT, 0, chipId);
            Libc.ioctl(vmFd, KVM_GET_IRQCHIP, chip, "KVM_GET_IRQCHIP");
            chip.set(ValueLayout.JAVA_BYTE, offset(KVM_IRQCHIP, "chip") + PIC_STATE_IMR, (byte) 0xff);
            Libc.ioctl(vmFd, KVM_SET_IRQCHIP, chip, "KVM_SET_IRQCHIP");
        }
    }

    @Override
    public synchronized InterruptLine line(int gsi) {
        if (gsi < 0 || gsi >= IOAPIC_PINS) {
            throw new IllegalArgumentException("GSI " + gsi + " does not exist: the IOAPIC has pins 0 to " + (IOAPIC_PINS - 1));
        }
        if (lines[gsi] == null) {
            lines[gsi] = new Line(gsi);
        }
        return lines[gsi];
    }

    @Override
    public boolean irqfd() {
        return irqfd;
    }

    /** Closes the lines' eventfds; the VM fd's close releases the irqfds. */
    synchronized void close() {
        closed = true;
        for (Line line : lines) {
            if (line != null && line.eventFd >= 0) {
                Libc.close(line.eventFd);
            }
        }
    }

    /**
     * Registers {@code eventFd} (another VM's doorbell) as an irqfd of {@code line}:
     * each signal raises the line in the kernel. The returned handle deregisters
     * it, unless this VM has closed meanwhile (its fd's close released it).
     */
    synchronized AutoCloseable listen(Line line, int eventFd) {
        if (closed) {
            throw new IllegalStateException("the VM with GSI " + line.gsi + " is closed");
        }
        irqfd(eventFd, line.gsi, 0);
        return () -> {
            synchronized (KvmInterrupts.this) {
                if (!closed) {
                    irqfd(eventFd, line.gsi, KVM_IRQFD_FLAG_DEASSIGN);
                }
            }
        };
    }

    private void irqfd(int eventFd, int gsi, int flags) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment request = call.allocate(KVM_IRQFD_LAYOUT);
            request.set(ValueLayout.JAVA_INT, O_IRQFD_FD, eventFd);
            request.set(ValueLayout.JAVA_INT, O_IRQFD_GSI, gsi);
            request.set(ValueLayout.JAVA_INT, O_IRQFD_FLAGS, flags);
            Libc.ioctl(vmFd, KVM_IRQFD, request, "KVM_IRQFD");
        }
    }

    final class Line implements InterruptLine {
        private final int gsi;
        private final MemorySegment level = arena.allocate(KVM_IRQ_LEVEL);
        private final MemorySegment one = arena.allocate(ValueLayout.JAVA_LONG);
        private final int eventFd;
        private boolean asserted;

        Line(int gsi) {
            this.gsi = gsi;
            level.set(ValueLayout.JAVA_INT, O_IRQ_LEVEL_IRQ, gsi);
            one.set(ValueLayout.JAVA_LONG, 0, 1L);
            int fd = -1;
            if (irqfd) {
                fd = Libc.eventfd();
                MemorySegment request = arena.allocate(KVM_IRQFD_LAYOUT);
                request.set(ValueLayout.JAVA_INT, O_IRQFD_FD, fd);
                request.set(ValueLayout.JAVA_INT, O_IRQFD_GSI, gsi);
                try {
                    Libc.ioctl(vmFd, KVM_IRQFD, request, "KVM_IRQFD");
                } catch (KvmException e) {
                    Libc.close(fd);
                    throw e;
                }
            }
            this.eventFd = fd;
        }

        @Override
        public int gsi() {
            return gsi;
        }

        /** Whether another eventfd can raise this line in the kernel. */
        boolean takesIrqfd() {
            return irqfd;
        }

        AutoCloseable listen(int fd) {
            return KvmInterrupts.this.listen(this, fd);
        }

        @Override
        public synchronized void set(boolean value) {
            if (value != asserted) {
                asserted = value;
                drive(value);
            }
        }

        @Override
        public synchronized void pulse() {
            if (eventFd >= 0 && !asserted) {
                // KVM raises and drops the line from a worker: one write, no wait for the injection
                Libc.write(eventFd, one, "irqfd");
            } else if (!asserted) {
                drive(true);
                drive(false);
            } else {
                drive(false);
                drive(true);
            }
        }

        private void drive(boolean value) {
            level.set(ValueLayout.JAVA_INT, O_IRQ_LEVEL_LEVEL, value ? 1 : 0);
            Libc.ioctl(vmFd, KVM_IRQ_LINE, level, "KVM_IRQ_LINE");
        }
    }
}
