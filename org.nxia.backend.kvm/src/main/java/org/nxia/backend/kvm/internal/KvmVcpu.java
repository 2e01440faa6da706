package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.Map;

import org.nxia.vmm.spi.DescriptorTable;
import org.nxia.vmm.spi.ExitHandler;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;
import org.nxia.vmm.spi.SynicHost;
import org.nxia.vmm.spi.Vcpu;
import org.nxia.vmm.spi.VcpuState;
import org.nxia.vmm.spi.VcpuStop;
import org.nxia.vmm.bench.ExitTimeRecorder;

/**
 * A KVM vCPU: its fd and its shared {@code kvm_run} page. The run loop reads
 * exits straight from that page and calls the handler with primitives, so an
 * exit allocates nothing.
 */
final class KvmVcpu implements Vcpu, ExitTimeRecorder {

    private static final VcpuStop STOP_REQUESTED = new VcpuStop(VcpuStop.Kind.REQUESTED, "stop requested");
    private static final VcpuStop STOP_HALT = new VcpuStop(VcpuStop.Kind.HALT, "the guest executed hlt");

    // Field offsets, computed once: looking a layout path up by name on every call is slow.
    private static final long O_DTABLE_LIMIT = offset(KVM_DTABLE, "limit");
    private static final long O_MSR_ENTRY_DATA = offset(KVM_MSR_ENTRY, "data");
    private static final long O_MSR_ENTRY_INDEX = offset(KVM_MSR_ENTRY, "index");
    private static final long O_SEGMENT_AVL = offset(KVM_SEGMENT, "avl");
    private static final long O_SEGMENT_BASE = offset(KVM_SEGMENT, "base");
    private static final long O_SEGMENT_DB = offset(KVM_SEGMENT, "db");
    private static final long O_SEGMENT_DPL = offset(KVM_SEGMENT, "dpl");
    private static final long O_SEGMENT_G = offset(KVM_SEGMENT, "g");
    private static final long O_SEGMENT_L = offset(KVM_SEGMENT, "l");
    private static final long O_SEGMENT_LIMIT = offset(KVM_SEGMENT, "limit");
    private static final long O_SEGMENT_PADDING = offset(KVM_SEGMENT, "padding");
    private static final long O_SEGMENT_PRESENT = offset(KVM_SEGMENT, "present");
    private static final long O_SEGMENT_S = offset(KVM_SEGMENT, "s");
    private static final long O_SEGMENT_SELECTOR = offset(KVM_SEGMENT, "selector");
    private static final long O_SEGMENT_TYPE = offset(KVM_SEGMENT, "type");
    private static final long O_SEGMENT_UNUSABLE = offset(KVM_SEGMENT, "unusable");
    private static final long O_SREGS_APIC_BASE = offset(KVM_SREGS, "apic_base");
    private static final long O_SREGS_CR0 = offset(KVM_SREGS, "cr0");
    private static final long O_SREGS_CR2 = offset(KVM_SREGS, "cr2");
    private static final long O_SREGS_CR3 = offset(KVM_SREGS, "cr3");
    private static final long O_SREGS_CR4 = offset(KVM_SREGS, "cr4");
    private static final long O_SREGS_CR8 = offset(KVM_SREGS, "cr8");
    private static final long O_SREGS_EFER = offset(KVM_SREGS, "efer");

    private final int id;
    private final int fd;
    private final int kickSignal;
    /**
     * The shared kvm_run page. Global scope on purpose: closing a shared arena
     * costs a handshake with every JVM thread, and this segment never leaves
     * this class — every use is inside the run loop or under {@link #threadLock}
     * with a check of {@link #closed}, and close() unmaps it only after the run
     * loop has returned.
     */
    private final MemorySegment run;
    private final MemorySegment callState = Libc.newCallState(Arena.ofAuto());

    private volatile boolean stopRequested;
    private final Object threadLock = new Object();
    private Thread runner;
    private long runnerPthread;
    private boolean closed;

    private long[] exitTimes;
    private int exitTimesCount;

    // Counters written by the vCPU thread only; readers see a recent value.
    private long exits;
    private long ioExits;
    private long mmioExits;
    private long hypervExits;
    private long refusedHypercalls;
    private SynicHost synicHost = SynicHost.NONE;
    /** Where an x86 CPU starts after a reset: CS 0xf000, IP 0xfff0. */
    private static final long RESET_RIP = 0xfff0;
    private static final int RESET_CS = 0xf000;
    private long interruptedRuns;
    private int cpuidErrno;
    /** Opened before the vCPU first runs: a vCPU ioctl waits for KVM_RUN to return, which a halted Linux vCPU may never do. */
    private final KvmStats stats;
    private final int statsErrno;

    private final KvmVcpuState.Support stateSupport;

    KvmVcpu(int id, int fd, int mmapSize, int kickSignal, KvmVcpuState.Support stateSupport) {
        this.id = id;
        this.fd = fd;
        this.kickSignal = kickSignal;
        this.stateSupport = stateSupport;
        this.run = Libc.mmap(mmapSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, "kvm_run");
        KvmStats opened = null;
        int errno = 0;
        try {
            opened = KvmStats.open(fd);
        } catch (KvmException e) {
            errno = e.errno();
        }
        this.stats = opened;
        this.statsErrno = errno;
    }

    void setCpuid(MemorySegment cpuid) {
        try {
            Libc.ioctl(fd, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
        } catch (KvmException e) {
            // The guest kit needs no particular CPUID; record it and go on.
            cpuidErrno = e.errno();
        }
    }

    /** KVM_SET_CPUID2 where the guest must see this table (a Hyper-V partition's leaves): a refusal is the VM's failure. */
    void setCpuidOrFail(MemorySegment cpuid) {
        Libc.ioctl(fd, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
    }

    /**
     * SynIC on this vCPU (KVM_CAP_HYPERV_SYNIC2: the message and event pages are not zeroed behind
     * the guest's back); {@code host} takes what KVM leaves to the VMM.
     */
    void enableSynic(SynicHost host) {
        this.synicHost = host;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment cap = a.allocate(KVM_ENABLE_CAP_LAYOUT);
            cap.set(ValueLayout.JAVA_INT, 0, KVM_CAP_HYPERV_SYNIC2);
            Libc.ioctl(fd, KVM_ENABLE_CAP, cap, "KVM_ENABLE_CAP(KVM_CAP_HYPERV_SYNIC2)");
        }
    }

    /** KVM_GET_SUPPORTED_HV_CPUID of this vCPU: the Hyper-V leaves, SynIC's included once it is on. */
    MemorySegment supportedHyperVCpuid(Arena arena) {
        return Cpuid.query(fd, KVM_GET_SUPPORTED_HV_CPUID, "KVM_GET_SUPPORTED_HV_CPUID", 16, 256, arena);
    }

    @Override
    public int id() {
        return id;
    }

    @Override
    public Registers registers() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment r = a.allocate(KVM_REGS);
            Libc.ioctl(fd, KVM_GET_REGS, r, "KVM_GET_REGS");
            long[] v = r.toArray(ValueLayout.JAVA_LONG);
            return new Registers(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11],
                    v[12], v[13], v[14], v[15], v[16], v[17]);
        }
    }

    @Override
    public void setRegisters(Registers g) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment r = a.allocateFrom(ValueLayout.JAVA_LONG,
                    g.rax(), g.rbx(), g.rcx(), g.rdx(), g.rsi(), g.rdi(), g.rsp(), g.rbp(),
                    g.r8(), g.r9(), g.r10(), g.r11(), g.r12(), g.r13(), g.r14(), g.r15(), g.rip(), g.rflags());
            Libc.ioctl(fd, KVM_SET_REGS, r, "KVM_SET_REGS");
        }
    }

    @Override
    public SpecialRegisters specialRegisters() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(KVM_SREGS);
            Libc.ioctl(fd, KVM_GET_SREGS, s, "KVM_GET_SREGS");
            return SregsCodec.decode(s);
        }
    }

    @Override
    public void setSpecialRegisters(SpecialRegisters registers) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(KVM_SREGS);   // zeroed: no pending interrupt in interrupt_bitmap
            SregsCodec.encode(registers, s);
            Libc.ioctl(fd, KVM_SET_SREGS, s, "KVM_SET_SREGS");
        }
    }

    @Override
    public long readMsr(int index) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment msrs = msrBuffer(a, index, 0);
            int n = Libc.ioctl(fd, KVM_GET_MSRS, msrs, "KVM_GET_MSRS");
            if (n != 1) {
                throw new KvmException("ioctl(KVM_GET_MSRS)", 0, "MSR 0x%x is not readable on this vCPU".formatted(index));
            }
            return msrs.get(ValueLayout.JAVA_LONG, KVM_MSRS.byteSize() + O_MSR_ENTRY_DATA);
        }
    }

    @Override
    public void writeMsr(int index, long value) {
        try (Arena a = Arena.ofConfined()) {
            int n = Libc.ioctl(fd, KVM_SET_MSRS, msrBuffer(a, index, value), "KVM_SET_MSRS");
            if (n != 1) {
                throw new KvmException("ioctl(KVM_SET_MSRS)", 0,
                        "MSR 0x%x refused the value 0x%x".formatted(index, value));
            }
        }
    }

    private static MemorySegment msrBuffer(Arena a, int index, long value) {
        MemorySegment msrs = a.allocate(KVM_MSRS.byteSize() + KVM_MSR_ENTRY.byteSize(), 8);
        msrs.set(ValueLayout.JAVA_INT, 0, 1);
        msrs.set(ValueLayout.JAVA_INT, KVM_MSRS.byteSize() + O_MSR_ENTRY_INDEX, index);
        msrs.set(ValueLayout.JAVA_LONG, KVM_MSRS.byteSize() + O_MSR_ENTRY_DATA, value);
        return msrs;
    }

    @Override
    public VcpuStop run(ExitHandler handler) {
        synchronized (threadLock) {
            if (closed) {
                throw new IllegalStateException("vCPU " + id + " is closed");
            }
            if (runner != null) {
                throw new IllegalStateException("vCPU " + id + " is already running on " + runner.getName());
            }
            runner = Thread.currentThread();
            runnerPthread = Libc.pthreadSelf();
        }
        try {
            return loop(handler);
        } finally {
            synchronized (threadLock) {
                runner = null;
                runnerPthread = 0;
                threadLock.notifyAll();
            }
        }
    }

    /**
     * The exit loop. Nothing here allocates until the vCPU stops. A stop is
     * seen only when KVM_RUN returns EINTR: {@link #requestStop} sets
     * immediate_exit, and KVM first completes the I/O of the last exit (an
     * {@code in}'s value reaches RAX, RIP moves past the instruction), so the
     * state a paused vCPU shows is consistent (KVM API: "immediate_exit").
     */
    private VcpuStop loop(ExitHandler handler) {
        long returnedAt = 0;
        while (true) {
            long[] sink = exitTimes;
            if (sink != null && returnedAt != 0 && exitTimesCount < sink.length) {
                sink[exitTimesCount++] = System.nanoTime() - returnedAt;
            }
            int rc = Libc.ioctlRaw(callState, fd, KVM_RUN, MemorySegment.NULL);
            if (sink != null) {
                returnedAt = System.nanoTime();
            }
            if (rc < 0) {
                int errno = Libc.errno(callState);
                if (errno == Libc.EINTR || errno == Libc.EAGAIN) {
                    if (stopRequested) {
                        return STOP_REQUESTED;
                    }
                    interruptedRuns++;
                    continue;
                }
                throw KvmException.of("ioctl(KVM_RUN)", errno, "vCPU " + id);
            }
            exits++;
            int reason = run.get(ValueLayout.JAVA_INT, RUN_EXIT_REASON);
            switch (reason) {
                case KVM_EXIT_IO -> {
                    ioExits++;
                    dispatchIo(handler);
                }
                case KVM_EXIT_MMIO -> {
                    mmioExits++;
                    dispatchMmio(handler);
                }
                case KVM_EXIT_INTR -> interruptedRuns++;
                case KVM_EXIT_HYPERV -> hypervExit();
                case KVM_EXIT_HLT -> {
                    return STOP_HALT;
                }
                case KVM_EXIT_SHUTDOWN -> {
                    return new VcpuStop(VcpuStop.Kind.SHUTDOWN,
                            "KVM_EXIT_SHUTDOWN: the guest triple-faulted or took an exception it cannot handle" + whereItStopped());
                }
                case KVM_EXIT_FAIL_ENTRY -> {
                    return new VcpuStop(VcpuStop.Kind.FAIL_ENTRY,
                            "KVM_EXIT_FAIL_ENTRY: hardware entry failure reason 0x%x (bad entry state)"
                                    .formatted(run.get(ValueLayout.JAVA_LONG, RUN_UNION_FIRST_LONG)));
                }
                case KVM_EXIT_INTERNAL_ERROR -> {
                    return new VcpuStop(VcpuStop.Kind.INTERNAL_ERROR, internalErrorDetail());
                }
                case KVM_EXIT_SYSTEM_EVENT -> {
                    return new VcpuStop(VcpuStop.Kind.SHUTDOWN, "KVM_EXIT_SYSTEM_EVENT type "
                            + run.get(ValueLayout.JAVA_INT, RUN_UNION_FIRST_LONG) + " (shutdown or reset)");
                }
                default -> {
                    return new VcpuStop(VcpuStop.Kind.UNHANDLED_EXIT, exitReasonName(reason)
                            + " is not handled by this backend");
                }
            }
        }
    }

    /**
     * Where a vCPU that shut down was, for whoever reads why the VM ended: a triple fault leaves no
     * guest message, and these registers tell a bad IDT (idt limit 0), a bad stack (rsp) and a page
     * fault on the fault path (cr2) apart. KVM on AMD reinitializes the vCPU on a shutdown (its VMCB
     * is undefined after one), so there the registers are the reset vector's and say nothing. Read
     * after the vCPU stopped, so it may allocate.
     */
    private String whereItStopped() {
        try {
            Registers r = registers();
            SpecialRegisters s = specialRegisters();
            if (r.rip() == RESET_RIP && s.cs().selector() == RESET_CS) {
                return " (KVM reset the vCPU on the shutdown, as it does on AMD: where the guest faulted is lost)";
            }
            return " (rip=%#x rsp=%#x rflags=%#x cr0=%#x cr2=%#x cr3=%#x cr4=%#x efer=%#x cs=%#x idt=%#x/%#x)".formatted(
                    r.rip(), r.rsp(), r.rflags(), s.cr0(), s.cr2(), s.cr3(), s.cr4(), s.efer(), s.cs().selector(),
                    s.idt().base(), s.idt().limit());
        } catch (RuntimeException e) {
            return " (its registers could not be read: " + e.getMessage() + ")";
        }
    }

    /**
     * A SynIC MSR write (KVM has applied it: the host learns where the message and event pages are
     * now) or a hypercall KVM leaves to the VMM (HvPostMessage, HvSignalEvent), whose status the
     * host decides; without a host it is refused as unknown, as Hyper-V answers a hypercall it does
     * not offer.
     */
    private void hypervExit() {
        hypervExits++;
        int type = run.get(ValueLayout.JAVA_INT, RUN_HYPERV_TYPE);
        if (type == KVM_EXIT_HYPERV_SYNIC) {
            synicHost.synicChanged(id, run.get(ValueLayout.JAVA_LONG, RUN_HYPERV_SYNIC_CONTROL),
                    run.get(ValueLayout.JAVA_LONG, RUN_HYPERV_SYNIC_EVT_PAGE), run.get(ValueLayout.JAVA_LONG, RUN_HYPERV_SYNIC_MSG_PAGE));
        } else if (type == KVM_EXIT_HYPERV_HCALL) {
            long status = synicHost.hypercall(id, run.get(ValueLayout.JAVA_LONG, RUN_HYPERV_HCALL_INPUT),
                    run.get(ValueLayout.JAVA_LONG, RUN_HYPERV_HCALL_PARAM0), run.get(ValueLayout.JAVA_LONG, RUN_HYPERV_HCALL_PARAM1));
            if (status == SynicHost.HV_STATUS_INVALID_HYPERCALL_CODE) {
                refusedHypercalls++;
            }
            run.set(ValueLayout.JAVA_LONG, RUN_HYPERV_HCALL_RESULT, status);
        }
    }

    private void dispatchIo(ExitHandler handler) {
        int direction = run.get(ValueLayout.JAVA_BYTE, RUN_IO_DIRECTION);
        int size = run.get(ValueLayout.JAVA_BYTE, RUN_IO_SIZE);
        int port = Short.toUnsignedInt(run.get(ValueLayout.JAVA_SHORT, RUN_IO_PORT));
        int count = run.get(ValueLayout.JAVA_INT, RUN_IO_COUNT);
        long data = run.get(ValueLayout.JAVA_LONG, RUN_IO_DATA_OFFSET);
        // The kernel fills these, but a bad value must not walk off the page: the
        // scoped segment would throw, so check once and stop cleanly instead.
        if ((size != 1 && size != 2 && size != 4) || count < 0 || data < 0
                || data > run.byteSize() || (long) size * count > run.byteSize() - data) {
            requestStop();
            return;
        }
        for (int i = 0; i < count; i++) {
            long at = data + (long) i * size;
            if (direction == KVM_EXIT_IO_OUT) {
                int value = switch (size) {
                    case 1 -> Byte.toUnsignedInt(run.get(ValueLayout.JAVA_BYTE, at));
                    case 2 -> Short.toUnsignedInt(run.get(ValueLayout.JAVA_SHORT_UNALIGNED, at));
                    default -> run.get(ValueLayout.JAVA_INT_UNALIGNED, at);
                };
                handler.portWrite(port, size, value);
            } else {
                int value = handler.portRead(port, size);
                switch (size) {
                    case 1 -> run.set(ValueLayout.JAVA_BYTE, at, (byte) value);
                    case 2 -> run.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, (short) value);
                    default -> run.set(ValueLayout.JAVA_INT_UNALIGNED, at, value);
                }
            }
        }
    }

    private void dispatchMmio(ExitHandler handler) {
        long address = run.get(ValueLayout.JAVA_LONG, RUN_MMIO_PHYS_ADDR);
        int length = run.get(ValueLayout.JAVA_INT, RUN_MMIO_LEN);
        if (length < 1 || length > 8) {
            requestStop();
            return;
        }
        if (run.get(ValueLayout.JAVA_BYTE, RUN_MMIO_IS_WRITE) != 0) {
            long value = 0;
            for (int i = length - 1; i >= 0; i--) {
                value = (value << 8) | Byte.toUnsignedLong(run.get(ValueLayout.JAVA_BYTE, RUN_MMIO_DATA + i));
            }
            handler.mmioWrite(address, length, value);
        } else {
            long value = handler.mmioRead(address, length);
            for (int i = 0; i < length; i++) {
                run.set(ValueLayout.JAVA_BYTE, RUN_MMIO_DATA + i, (byte) (value >>> (8 * i)));
            }
        }
    }

    private String internalErrorDetail() {
        int suberror = run.get(ValueLayout.JAVA_INT, RUN_UNION_FIRST_LONG);
        String what = switch (suberror) {
            case 1 -> "emulation failure";
            case 2 -> "simultaneous exception";
            case 3 -> "delivery event";
            case 4 -> "unexpected exit reason";
            default -> "suberror " + suberror;
        };
        return "KVM_EXIT_INTERNAL_ERROR: " + what + " (the hypervisor could not run an instruction of the guest)";
    }

    @Override
    public void requestStop() {
        stopRequested = true;
        synchronized (threadLock) {
            if (closed) {
                return;
            }
            // Seen by KVM_RUN on entry: covers the window before the ioctl.
            run.set(ValueLayout.JAVA_BYTE, RUN_IMMEDIATE_EXIT, (byte) 1);
            if (runner != null && runner != Thread.currentThread()) {
                // Kicks a guest that runs without exits out of KVM_RUN (EINTR).
                Libc.pthreadKill(runnerPthread, kickSignal);
            }
        }
    }

    @Override
    public void clearStopRequest() {
        synchronized (threadLock) {
            if (closed) {
                throw new IllegalStateException("vCPU " + id + " is closed");
            }
            if (runner != null) {
                throw new IllegalStateException("vCPU " + id + " is running on " + runner.getName());
            }
            stopRequested = false;
            run.set(ValueLayout.JAVA_BYTE, RUN_IMMEDIATE_EXIT, (byte) 0);
        }
    }

    @Override
    public VcpuState saveState() {
        synchronized (threadLock) {
            requireIdle("saved");
            return new VcpuState(id, registers(), specialRegisters(), KvmVcpuState.save(fd, id, stateSupport));
        }
    }

    @Override
    public void restoreState(VcpuState state) {
        synchronized (threadLock) {
            requireIdle("restored");
            // WHY this order: sregs before the MSRs (EFER) and the local APIC (its base is in sregs)
            KvmVcpuState.check(id, stateSupport, state.parts());   // nothing is set unless every part is good
            setSpecialRegisters(state.special());
            setRegisters(state.registers());
            KvmVcpuState.restore(fd, id, stateSupport, state.parts());
        }
    }

    private void requireIdle(String what) {
        if (closed) {
            throw new IllegalStateException("vCPU " + id + " is closed");
        }
        if (runner != null) {
            throw new IllegalStateException("vCPU " + id + " is in the guest on " + runner.getName()
                    + "; it can be " + what + " only while paused or not started");
        }
    }

    @Override
    public int recordExitTimes(long[] sink) {
        int previous = exitTimesCount;
        exitTimesCount = 0;
        exitTimes = sink;
        return previous;
    }

    @Override
    public Map<String, Long> statistics() {
        Map<String, Long> out = new LinkedHashMap<>();
        out.put("exits", exits);
        out.put("io_exits", ioExits);
        out.put("mmio_exits", mmioExits);
        if (hypervExits != 0) {
            out.put("hyperv_exits", hypervExits);
            out.put("hyperv_refused_hypercalls", refusedHypercalls);
        }
        out.put("interrupted_runs", interruptedRuns);
        if (cpuidErrno != 0) {
            out.put("set_cpuid_errno", (long) cpuidErrno);
        }
        synchronized (threadLock) {
            if (!closed) {
                if (stats == null) {
                    out.put("binary_stats_unavailable_errno", (long) statsErrno);
                } else {
                    try {
                        // KVM's own exits/io_exits/mmio_exits count exits KVM handled in the kernel
                        // too, and a kvm_pvm host leaves io_exits at 0: ours (exits to this VMM) keep
                        // the plain names, KVM's get a kvm_ prefix.
                        for (Map.Entry<String, Long> e : stats.read().entrySet()) {
                            out.put(out.containsKey(e.getKey()) ? "kvm_" + e.getKey() : e.getKey(), e.getValue());
                        }
                    } catch (KvmException e) {
                        out.put("binary_stats_unavailable_errno", (long) e.errno());
                    }
                }
            }
        }
        return out;
    }

    @Override
    public void close() {
        synchronized (threadLock) {
            if (closed) {
                return;
            }
            stopRequested = true;
            if (runner != null && runner != Thread.currentThread()) {
                run.set(ValueLayout.JAVA_BYTE, RUN_IMMEDIATE_EXIT, (byte) 1);
                Libc.pthreadKill(runnerPthread, kickSignal);
                long deadline = System.nanoTime() + 5_000_000_000L;
                while (runner != null && System.nanoTime() < deadline) {
                    try {
                        threadLock.wait(100);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        break;
                    }
                }
            }
            closed = true;
            if (stats != null) {
                stats.close();
            }
            // A run loop that did not leave in time may still read kvm_run: leak the
            // page rather than unmap it under that thread.
            if (runner == null) {
                Libc.munmap(run);
            }
        }
        Libc.close(fd);
    }

    /** Encodes and decodes struct kvm_sregs. */
    static final class SregsCodec {
        private static final long[] SEGMENTS = {
            offset(KVM_SREGS, "cs"), offset(KVM_SREGS, "ds"), offset(KVM_SREGS, "es"), offset(KVM_SREGS, "fs"),
            offset(KVM_SREGS, "gs"), offset(KVM_SREGS, "ss"), offset(KVM_SREGS, "tr"), offset(KVM_SREGS, "ldt")};
        private static final long GDT = offset(KVM_SREGS, "gdt");
        private static final long IDT = offset(KVM_SREGS, "idt");

        private SregsCodec() {
        }

        static SpecialRegisters decode(MemorySegment s) {
            Segment[] seg = new Segment[SEGMENTS.length];
            for (int i = 0; i < SEGMENTS.length; i++) {
                seg[i] = decodeSegment(s.asSlice(SEGMENTS[i], KVM_SEGMENT.byteSize()));
            }
            return new SpecialRegisters(seg[0], seg[1], seg[2], seg[3], seg[4], seg[5], seg[6], seg[7],
                    decodeTable(s, GDT), decodeTable(s, IDT),
                    s.get(ValueLayout.JAVA_LONG, O_SREGS_CR0),
                    s.get(ValueLayout.JAVA_LONG, O_SREGS_CR2),
                    s.get(ValueLayout.JAVA_LONG, O_SREGS_CR3),
                    s.get(ValueLayout.JAVA_LONG, O_SREGS_CR4),
                    s.get(ValueLayout.JAVA_LONG, O_SREGS_CR8),
                    s.get(ValueLayout.JAVA_LONG, O_SREGS_EFER),
                    s.get(ValueLayout.JAVA_LONG, O_SREGS_APIC_BASE));
        }

        static void encode(SpecialRegisters r, MemorySegment s) {
            Segment[] seg = {r.cs(), r.ds(), r.es(), r.fs(), r.gs(), r.ss(), r.tr(), r.ldt()};
            for (int i = 0; i < SEGMENTS.length; i++) {
                encodeSegment(seg[i], s.asSlice(SEGMENTS[i], KVM_SEGMENT.byteSize()));
            }
            encodeTable(r.gdt(), s, GDT);
            encodeTable(r.idt(), s, IDT);
            s.set(ValueLayout.JAVA_LONG, O_SREGS_CR0, r.cr0());
            s.set(ValueLayout.JAVA_LONG, O_SREGS_CR2, r.cr2());
            s.set(ValueLayout.JAVA_LONG, O_SREGS_CR3, r.cr3());
            s.set(ValueLayout.JAVA_LONG, O_SREGS_CR4, r.cr4());
            s.set(ValueLayout.JAVA_LONG, O_SREGS_CR8, r.cr8());
            s.set(ValueLayout.JAVA_LONG, O_SREGS_EFER, r.efer());
            s.set(ValueLayout.JAVA_LONG, O_SREGS_APIC_BASE, r.apicBase());
        }

        static Segment decodeSegment(MemorySegment g) {
            return new Segment(
                    g.get(ValueLayout.JAVA_LONG, O_SEGMENT_BASE),
                    g.get(ValueLayout.JAVA_INT, O_SEGMENT_LIMIT),
                    Short.toUnsignedInt(g.get(ValueLayout.JAVA_SHORT, O_SEGMENT_SELECTOR)),
                    g.get(ValueLayout.JAVA_BYTE, O_SEGMENT_TYPE),
                    flag(g, O_SEGMENT_PRESENT),
                    g.get(ValueLayout.JAVA_BYTE, O_SEGMENT_DPL),
                    flag(g, O_SEGMENT_DB), flag(g, O_SEGMENT_S), flag(g, O_SEGMENT_L), flag(g, O_SEGMENT_G), flag(g, O_SEGMENT_UNUSABLE));
        }

        static void encodeSegment(Segment v, MemorySegment g) {
            g.set(ValueLayout.JAVA_LONG, O_SEGMENT_BASE, v.base());
            g.set(ValueLayout.JAVA_INT, O_SEGMENT_LIMIT, v.limit());
            g.set(ValueLayout.JAVA_SHORT, O_SEGMENT_SELECTOR, (short) v.selector());
            g.set(ValueLayout.JAVA_BYTE, O_SEGMENT_TYPE, (byte) v.type());
            g.set(ValueLayout.JAVA_BYTE, O_SEGMENT_PRESENT, (byte) (v.present() ? 1 : 0));
            g.set(ValueLayout.JAVA_BYTE, O_SEGMENT_DPL, (byte) v.dpl());
            g.set(ValueLayout.JAVA_BYTE, O_SEGMENT_DB, (byte) (v.db() ? 1 : 0));
            g.set(ValueLayout.JAVA_BYTE, O_SEGMENT_S, (byte) (v.s() ? 1 : 0));
            g.set(ValueLayout.JAVA_BYTE, O_SEGMENT_L, (byte) (v.l() ? 1 : 0));
            g.set(ValueLayout.JAVA_BYTE, O_SEGMENT_G, (byte) (v.g() ? 1 : 0));
            g.set(ValueLayout.JAVA_BYTE, O_SEGMENT_AVL, (byte) 0);
            g.set(ValueLayout.JAVA_BYTE, O_SEGMENT_UNUSABLE, (byte) (v.unusable() ? 1 : 0));
            g.set(ValueLayout.JAVA_BYTE, O_SEGMENT_PADDING, (byte) 0);
        }

        private static boolean flag(MemorySegment g, long fieldOffset) {
            return g.get(ValueLayout.JAVA_BYTE, fieldOffset) != 0;
        }

        private static DescriptorTable decodeTable(MemorySegment s, long at) {
            return new DescriptorTable(s.get(ValueLayout.JAVA_LONG, at),
                    Short.toUnsignedInt(s.get(ValueLayout.JAVA_SHORT, at + O_DTABLE_LIMIT)));
        }

        private static void encodeTable(DescriptorTable t, MemorySegment s, long at) {
            s.set(ValueLayout.JAVA_LONG, at, t.base());
            s.set(ValueLayout.JAVA_SHORT, at + O_DTABLE_LIMIT, (short) t.limit());
        }
    }
}
