package org.nxia.vmm.internal.memhv;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.nxia.vmm.spi.ExitHandler;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.SpecialRegisters;
import org.nxia.vmm.spi.StatePart;
import org.nxia.vmm.spi.Vcpu;
import org.nxia.vmm.spi.VcpuState;
import org.nxia.vmm.spi.VcpuStop;
import org.nxia.vmm.internal.micro.EntryState;

/** A vCPU that plays its {@link Script} to the exit handler; what it saw is there to assert. */
public final class ScriptedVcpu implements Vcpu {

    public static final String RUNS_PART = "runs";

    private final int id;
    private final Script script;
    private final boolean stickyStop;
    private final CountDownLatch entered = new CountDownLatch(1);
    private final CountDownLatch left = new CountDownLatch(1);
    private final AtomicInteger runs = new AtomicInteger();
    private final Object stopLock = new Object();
    private volatile boolean stopRequested;
    private volatile boolean inRun;
    private volatile boolean interrupted;
    private volatile boolean closed;
    private volatile long lastRead;
    private volatile long restoredRuns = -1;
    private final Set<Thread> threads = ConcurrentHashMap.newKeySet();
    private Registers registers = Registers.RESET;
    private SpecialRegisters special;

    ScriptedVcpu(int id, Script script, boolean stickyStop) {
        this.id = id;
        this.script = script;
        this.stickyStop = stickyStop;
        this.special = EntryState.specialRegisters(0, 0xfee0_0900L);   // any valid set: the VMM keeps apicBase
    }

    @Override
    public int id() {
        return id;
    }

    @Override
    public Registers registers() {
        return registers;
    }

    @Override
    public void setRegisters(Registers r) {
        registers = r;
    }

    @Override
    public SpecialRegisters specialRegisters() {
        return special;
    }

    @Override
    public void setSpecialRegisters(SpecialRegisters r) {
        special = r;
    }

    @Override
    public long readMsr(int index) {
        return 0;
    }

    @Override
    public void writeMsr(int index, long value) {
    }

    @Override
    public VcpuStop run(ExitHandler handler) {
        runs.incrementAndGet();
        threads.add(Thread.currentThread());
        if (!stickyStop) {
            stopRequested = false;   // a stop asked for before this entry is lost, as on a backend without a sticky flag
        }
        inRun = true;
        entered.countDown();
        try {
            return play(handler);
        } finally {
            inRun = false;
            left.countDown();
        }
    }

    private VcpuStop play(ExitHandler handler) {
        Script.Exit[] exits = script.exits();
        for (int round = 0; round < script.rounds(); round++) {
            for (int i = 0; i < exits.length; i++) {
                if (stopRequested) {
                    return new VcpuStop(VcpuStop.Kind.REQUESTED, "requested");
                }
                switch (exits[i]) {
                    case Script.PortWrite w -> handler.portWrite(w.port(), w.size(), w.value());
                    case Script.PortRead r -> lastRead = handler.portRead(r.port(), r.size());
                    case Script.MmioWrite w -> handler.mmioWrite(w.address(), w.size(), w.value());
                    case Script.MmioRead r -> lastRead = handler.mmioRead(r.address(), r.size());
                }
            }
        }
        return switch (script.ending()) {
            case Script.Halt h -> stopRequested ? requested() : new VcpuStop(VcpuStop.Kind.HALT, "hlt");
            case Script.Shutdown s -> new VcpuStop(VcpuStop.Kind.SHUTDOWN, s.detail());
            case Script.UntilStopped u -> untilStopped();
            case Script.IgnoringStop i -> untilInterrupted();
            case Script.Throw t -> throw sneaky(t.thrown());
        };
    }

    private static VcpuStop requested() {
        return new VcpuStop(VcpuStop.Kind.REQUESTED, "requested");
    }

    private VcpuStop untilStopped() {
        long deadline = System.nanoTime() + Script.DEADLINE.toNanos();
        synchronized (stopLock) {
            while (!stopRequested) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return new VcpuStop(VcpuStop.Kind.INTERNAL_ERROR, "script deadline: no stop was requested");
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(stopLock, left);
                } catch (InterruptedException e) {
                    interrupted = true;
                    return new VcpuStop(VcpuStop.Kind.INTERNAL_ERROR, "interrupted");
                }
            }
        }
        return requested();
    }

    private VcpuStop untilInterrupted() {
        try {
            Thread.sleep(Script.DEADLINE);
            return new VcpuStop(VcpuStop.Kind.INTERNAL_ERROR, "script deadline: never interrupted");
        } catch (InterruptedException e) {
            interrupted = true;
            return requested();
        }
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> RuntimeException sneaky(Throwable t) throws T {
        throw (T) t;
    }

    @Override
    public void requestStop() {
        if (!stickyStop && !inRun) {
            return;
        }
        synchronized (stopLock) {
            stopRequested = true;
            stopLock.notifyAll();
        }
    }

    @Override
    public void clearStopRequest() {
        if (inRun) {
            throw new IllegalStateException("vCPU " + id + " is in run");
        }
        synchronized (stopLock) {
            stopRequested = false;
        }
    }

    /** Its state: the registers and one 8-byte part, {@value #RUNS_PART}, that holds how often it entered the guest. */
    @Override
    public VcpuState saveState() {
        if (inRun) {
            throw new IllegalStateException("vCPU " + id + " is in run");
        }
        byte[] runsPart = ByteBuffer.allocate(8).putLong(runs.get()).array();
        return new VcpuState(id, registers, special, List.of(new StatePart(RUNS_PART, runsPart)));
    }

    @Override
    public void restoreState(VcpuState state) {
        if (inRun) {
            throw new IllegalStateException("vCPU " + id + " is in run");
        }
        for (StatePart p : state.parts()) {
            if (!p.name().equals(RUNS_PART) || p.size() != 8) {
                throw new IllegalArgumentException("vCPU %d state part '%s' of %d bytes: the in-memory vCPU has only '%s' of 8"
                        .formatted(id, p.name(), p.size(), RUNS_PART));
            }
        }
        registers = state.registers();
        special = state.special();
        state.part(RUNS_PART).ifPresent(p -> restoredRuns = ByteBuffer.wrap(p.bytes()).getLong());
    }

    /** The threads that have run it. */
    public Set<Thread> threads() {
        return Set.copyOf(threads);
    }

    /** The runs count of the state last restored into it, or -1. */
    public long restoredRuns() {
        return restoredRuns;
    }

    @Override
    public Map<String, Long> statistics() {
        return Map.of("runs", (long) runs.get());
    }

    @Override
    public void close() {
        closed = true;
    }

    /** Waits until {@code run} was entered. */
    public boolean awaitEntered(long millis) throws InterruptedException {
        return entered.await(millis, TimeUnit.MILLISECONDS);
    }

    /** Whether {@code run} has returned (or thrown). */
    public boolean hasLeft() {
        return left.getCount() == 0;
    }

    /** Whether a thread is in {@code run} now. */
    public boolean inGuest() {
        return inRun;
    }

    public int runs() {
        return runs.get();
    }

    /** Whether the thread in {@code run} was interrupted (a cancelled vCPU task). */
    public boolean wasInterrupted() {
        return interrupted;
    }

    public boolean closed() {
        return closed;
    }

    /** The value the last scripted read returned. */
    public long lastRead() {
        return lastRead;
    }
}
