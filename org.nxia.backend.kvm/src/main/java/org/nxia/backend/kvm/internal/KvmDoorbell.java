package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Optional;
import java.util.function.Consumer;

import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.InterruptLine;

/**
 * An ioeventfd: KVM counts guest writes to one MMIO address on an eventfd
 * instead of exiting. Closing it deassigns the address and releases the
 * eventfd and its buffers — at once, or, while a thread waits in
 * {@link #await}, when that thread leaves: closing the fd under a blocked
 * read would let it read a descriptor number the process reused. Devices
 * open and close doorbells as drivers reset them, so nothing may pile up
 * until the partition closes. Connected to another VM's line, the same
 * eventfd is that VM's irqfd: the guest's write reaches the other VM's
 * interrupt controller in the kernel.
 */
final class KvmDoorbell implements Doorbell {

    private static final long O_ADDR = offset(KVM_IOEVENTFD_LAYOUT, "addr");
    private static final long O_LEN = offset(KVM_IOEVENTFD_LAYOUT, "len");
    private static final long O_FD = offset(KVM_IOEVENTFD_LAYOUT, "fd");
    private static final long O_FLAGS = offset(KVM_IOEVENTFD_LAYOUT, "flags");

    private final int vmFd;
    private final long address;
    private final int length;
    private final int eventFd;
    /** Called once closed, so the partition stops tracking it. */
    private final Consumer<KvmDoorbell> onClose;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment request;
    private final MemorySegment count;
    private final MemorySegment wake;
    // guarded by this
    private boolean closed;
    private boolean waiting;
    private boolean released;
    /** The other VM's irqfd this doorbell's eventfd feeds, or null. */
    private AutoCloseable link;

    KvmDoorbell(int vmFd, long address, int length, Consumer<KvmDoorbell> onClose) {
        this.vmFd = vmFd;
        this.address = address;
        this.length = length;
        this.onClose = onClose;
        this.request = arena.allocate(KVM_IOEVENTFD_LAYOUT);
        this.count = arena.allocate(ValueLayout.JAVA_LONG);
        this.wake = arena.allocate(ValueLayout.JAVA_LONG);
        wake.set(ValueLayout.JAVA_LONG, 0, 1L);
        int fd;
        try {
            fd = Libc.eventfd();
        } catch (KvmException e) {
            arena.close();
            throw e;
        }
        this.eventFd = fd;
        request.set(ValueLayout.JAVA_LONG, O_ADDR, address);
        request.set(ValueLayout.JAVA_INT, O_LEN, length);
        request.set(ValueLayout.JAVA_INT, O_FD, eventFd);
        request.set(ValueLayout.JAVA_INT, O_FLAGS, 0);   // MMIO, any value
        try {
            Libc.ioctl(vmFd, KVM_IOEVENTFD, request, "KVM_IOEVENTFD");
        } catch (KvmException e) {
            Libc.close(eventFd);
            arena.close();
            throw e;
        }
    }

    @Override
    public long address() {
        return address;
    }

    @Override
    public int length() {
        return length;
    }

    @Override
    public long await() {
        synchronized (this) {
            if (closed) {
                return 0;
            }
            waiting = true;
        }
        // A close() between here and the read has already written the wake-up: the read returns at once.
        try {
            Libc.read(eventFd, count, "ioeventfd");
        } finally {
            synchronized (this) {
                waiting = false;
                if (closed) {
                    release();
                }
            }
        }
        synchronized (this) {
            return closed ? 0 : count.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    @Override
    public synchronized Optional<AutoCloseable> connect(InterruptLine line) {
        if (closed) {
            throw new IllegalStateException("the doorbell at 0x%x is closed".formatted(address));
        }
        if (link != null) {
            throw new IllegalStateException("the doorbell at 0x%x is already connected".formatted(address));
        }
        if (!(line instanceof KvmInterrupts.Line target) || !target.takesIrqfd()) {
            return Optional.empty();
        }
        link = target.listen(eventFd);
        return Optional.of(this::disconnect);
    }

    private synchronized void disconnect() throws Exception {
        AutoCloseable l = link;
        link = null;
        if (l != null) {
            l.close();
        }
    }

    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            try {
                disconnect();   // before the wake-up write below, which would otherwise interrupt the other VM
            } catch (Exception e) {
                // the other VM is going away: its irqfd goes with it
            }
            closed = true;
            request.set(ValueLayout.JAVA_INT, O_FLAGS, KVM_IOEVENTFD_FLAG_DEASSIGN);
            try {
                Libc.ioctl(vmFd, KVM_IOEVENTFD, request, "KVM_IOEVENTFD");
            } catch (KvmException e) {
                // the VM is going away: nothing left to unregister from
            }
            if (waiting) {
                Libc.write(eventFd, wake, "ioeventfd wake-up");   // the waiter releases it
            } else {
                release();
            }
        }
        onClose.accept(this);
    }

    private void release() {
        if (!released) {
            released = true;
            Libc.close(eventFd);
            arena.close();
        }
    }
}
