package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.nxia.vmm.spi.InterruptController;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.SyntheticInterrupt;

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
    /** vCPUs whose SynIC is on: a SINT route is made only for those (KVM maps a SINT's GSI for an active SynIC only). */
    private final java.util.BitSet synics = new java.util.BitSet();
    /** The synthetic interrupts routed, at GSIs {@value #FIRST_SINT_GSI} on, in order. */
    private final java.util.List<Sint> sints = new java.util.ArrayList<>();
    private boolean closed;

    /** Where SINT routes begin: after the IOAPIC's pins. */
    static final int FIRST_SINT_GSI = IOAPIC_PINS;
    /** At most this many SINT routes per VM (16 SINTs of 4 vCPUs; VMBus uses one). */
    static final int MAX_SINTS = 64;
    /** GSIs 0 to 15 reach a PIC and the IOAPIC, 16 to 23 the IOAPIC only: KVM's default table. */
    private static final int PIC_GSIS = 16;

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

    /** vCPU {@code id} has its SynIC on: its SINTs can be routed. */
    synchronized void synicEnabled(int id) {
        synics.set(id);
    }

    /**
     * Routes a GSI to the SINT with KVM_SET_GSI_ROUTING, which replaces the whole table: KVM's
     * default PIC and IOAPIC routes go in again first, then every SINT route so far. An irqfd on the
     * GSI raises it; its resample eventfd hears the guest's acknowledgement (EOM or EOI), which KVM
     * never exits for.
     */
    @Override
    public synchronized SyntheticInterrupt syntheticInterrupt(int vcpu, int sint) {
        if (closed) {
            throw new IllegalStateException("the VM is closed");
        }
        if (sint < 0 || sint > 15) {
            throw new IllegalArgumentException("a SynIC has SINTs 0 to 15, not " + sint);
        }
        if (!synics.get(vcpu)) {
            throw new IllegalArgumentException("vCPU " + vcpu + " has no SynIC (it does not exist, or this is not a Hyper-V partition)");
        }
        for (Sint s : sints) {
            if (s.vcpu == vcpu && s.sint == sint) {
                throw new IllegalStateException("SINT " + sint + " of vCPU " + vcpu + " is taken");
            }
        }
        if (sints.size() == MAX_SINTS) {
            throw new IllegalStateException("a VM routes at most " + MAX_SINTS + " synthetic interrupts");
        }
        if (!irqfd || Libc.ioctl(vmFd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING, "KVM_CHECK_EXTENSION") <= 0
                || Libc.ioctl(vmFd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD_RESAMPLE, "KVM_CHECK_EXTENSION") <= 0) {
            throw new UnsupportedOperationException("this KVM cannot route synthetic interrupts (it lacks KVM_CAP_IRQ_ROUTING,"
                    + " KVM_CAP_IRQFD or KVM_CAP_IRQFD_RESAMPLE: 25, 32, 82)");
        }
        Sint made = new Sint(vcpu, sint, FIRST_SINT_GSI + sints.size());
        sints.add(made);
        try {
            setRouting();
            made.connect();
        } catch (RuntimeException e) {
            sints.remove(made);
            made.release();
            throw e;
        }
        return made;
    }

    private void setRouting() {
        int n = PIC_GSIS * 2 + (IOAPIC_PINS - PIC_GSIS) + sints.size();
        try (Arena call = Arena.ofConfined()) {
            MemorySegment table = call.allocate(KVM_IRQ_ROUTING.byteSize() + n * KVM_IRQ_ROUTING_ENTRY.byteSize(), 8);
            table.set(ValueLayout.JAVA_INT, 0, n);
            int i = 0;
            for (int gsi = 0; gsi < IOAPIC_PINS; gsi++) {
                route(table, i++, gsi, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQCHIP_IOAPIC, gsi);
                if (gsi < PIC_GSIS) {
                    route(table, i++, gsi, KVM_IRQ_ROUTING_IRQCHIP, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, gsi % 8);
                }
            }
            for (Sint s : sints) {
                route(table, i++, s.gsi, KVM_IRQ_ROUTING_HV_SINT, s.vcpu, s.sint);
            }
            Libc.ioctl(vmFd, KVM_SET_GSI_ROUTING, table, "KVM_SET_GSI_ROUTING");
        }
    }

    private static void route(MemorySegment table, int index, int gsi, int type, int first, int second) {
        MemorySegment e = table.asSlice(KVM_IRQ_ROUTING.byteSize() + index * KVM_IRQ_ROUTING_ENTRY.byteSize(), KVM_IRQ_ROUTING_ENTRY.byteSize());
        e.set(ValueLayout.JAVA_INT, offset(KVM_IRQ_ROUTING_ENTRY, "gsi"), gsi);
        e.set(ValueLayout.JAVA_INT, offset(KVM_IRQ_ROUTING_ENTRY, "type"), type);
        e.set(ValueLayout.JAVA_INT, offset(KVM_IRQ_ROUTING_ENTRY, "u0"), first);
        e.set(ValueLayout.JAVA_INT, offset(KVM_IRQ_ROUTING_ENTRY, "u1"), second);
    }

    /** Closes the lines' eventfds; the VM fd's close releases the irqfds. */
    synchronized void close() {
        closed = true;
        for (Sint s : sints) {
            s.close();
        }
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
        irqfd(eventFd, line.gsi, 0, -1);
        return () -> {
            synchronized (KvmInterrupts.this) {
                if (!closed) {
                    irqfd(eventFd, line.gsi, KVM_IRQFD_FLAG_DEASSIGN, -1);
                }
            }
        };
    }

    /** Assigns or deassigns an irqfd; {@code resampleFd} (or -1) with {@link KvmAbi#KVM_IRQFD_FLAG_RESAMPLE}. */
    private void irqfd(int eventFd, int gsi, int flags, int resampleFd) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment request = call.allocate(KVM_IRQFD_LAYOUT);
            request.set(ValueLayout.JAVA_INT, O_IRQFD_FD, eventFd);
            request.set(ValueLayout.JAVA_INT, O_IRQFD_GSI, gsi);
            request.set(ValueLayout.JAVA_INT, O_IRQFD_FLAGS, flags);
            if (resampleFd >= 0) {
                request.set(ValueLayout.JAVA_INT, offset(KVM_IRQFD_LAYOUT, "resamplefd"), resampleFd);
            }
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
                try {
                    KvmInterrupts.this.irqfd(fd, gsi, 0, -1);
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

    /**
     * A SINT route: an irqfd raises it, its resample eventfd counts the guest's acknowledgements.
     * Like a doorbell, the eventfds are released when no thread waits in {@link #awaitAck}: closing
     * them under a blocked read would let it read a descriptor number the process reused.
     */
    final class Sint implements SyntheticInterrupt {
        private final int vcpu;
        private final int sint;
        private final int gsi;
        private final Arena buffers = Arena.ofShared();
        private final MemorySegment one = buffers.allocate(ValueLayout.JAVA_LONG);
        private final MemorySegment count = buffers.allocate(ValueLayout.JAVA_LONG);
        private final int raiseFd;
        private final int ackFd;
        // guarded by this
        private boolean connected;
        private boolean shut;
        private boolean waiting;
        private boolean released;

        Sint(int vcpu, int sint, int gsi) {
            this.vcpu = vcpu;
            this.sint = sint;
            this.gsi = gsi;
            one.set(ValueLayout.JAVA_LONG, 0, 1L);
            int raise = Libc.eventfd();
            int ack;
            try {
                ack = Libc.eventfd();
            } catch (KvmException e) {
                Libc.close(raise);
                throw e;
            }
            this.raiseFd = raise;
            this.ackFd = ack;
        }

        private void connect() {
            irqfd(raiseFd, gsi, KVM_IRQFD_FLAG_RESAMPLE, ackFd);
            synchronized (this) {
                connected = true;
            }
        }

        @Override
        public int vcpu() {
            return vcpu;
        }

        @Override
        public int sint() {
            return sint;
        }

        @Override
        public synchronized void signal() {
            if (!shut) {
                Libc.write(raiseFd, one, "SINT irqfd");
            }
        }

        @Override
        public long awaitAck() {
            synchronized (this) {
                if (shut) {
                    return 0;
                }
                waiting = true;
            }
            // a close() between here and the read has already written the wake-up: the read returns at once
            try {
                Libc.read(ackFd, count, "SINT resamplefd");
            } finally {
                synchronized (this) {
                    waiting = false;
                    if (shut) {
                        release();
                    }
                }
            }
            synchronized (this) {
                return shut ? 0 : count.get(ValueLayout.JAVA_LONG, 0);
            }
        }

        @Override
        public synchronized void close() {
            if (shut) {
                return;
            }
            shut = true;
            if (connected) {
                try {
                    irqfd(raiseFd, gsi, KVM_IRQFD_FLAG_DEASSIGN, -1);
                } catch (KvmException e) {
                    // the VM is going away: its fd's close releases the irqfd
                }
            }
            if (waiting) {
                Libc.write(ackFd, one, "SINT resamplefd wake-up");   // the waiter releases it
            } else {
                release();
            }
        }

        private synchronized void release() {
            if (!released) {
                released = true;
                Libc.close(raiseFd);
                Libc.close(ackFd);
                buffers.close();
            }
        }
    }
}
