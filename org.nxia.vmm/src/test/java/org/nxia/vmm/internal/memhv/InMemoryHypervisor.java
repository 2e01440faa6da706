package org.nxia.vmm.internal.memhv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;

import org.nxia.vmm.spi.DirtyLog;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.Hypervisor;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.spi.InterruptController;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.Partition;
import org.nxia.vmm.spi.SynicHost;
import org.nxia.vmm.spi.PartitionState;
import org.nxia.vmm.spi.RamFile;
import org.nxia.vmm.spi.SharedMapping;
import org.nxia.vmm.spi.StatePart;
import org.nxia.vmm.spi.Vcpu;

/**
 * A hypervisor without one, for lifecycle tests of the VMM core: each
 * partition's RAM is shared off-heap memory (closing the partition frees it,
 * so a use after destroy fails), and each vCPU plays the {@link Script} the
 * test gives for its id. Not a VM: tests of guests run on KVM in org.nxia.itest.
 */
public final class InMemoryHypervisor implements Hypervisor {

    private final HypervisorInfo info;
    private final IntFunction<Script> scripts;
    private final boolean stickyStop;
    private final List<InMemoryPartition> partitions = new CopyOnWriteArrayList<>();

    /**
     * @param stickyStop whether a stop requested before {@code run} is kept for it (KVM's behaviour) or lost
     */
    public InMemoryHypervisor(HypervisorInfo.Flavour flavour, boolean stickyStop, IntFunction<Script> scripts) {
        this.info = new HypervisorInfo("in-memory", flavour, true, "test hypervisor", 0);
        this.scripts = scripts;
        this.stickyStop = stickyStop;
    }

    /** Whether partitions emulate Hyper-V ({@code Partition.enableHyperV()}). */
    public volatile boolean hyperV = true;

    public InMemoryHypervisor(IntFunction<Script> scripts) {
        this(HypervisorInfo.Flavour.HARDWARE_VMX, true, scripts);
    }

    @Override
    public HypervisorInfo info() {
        return info;
    }

    @Override
    public InMemoryPartition createPartition(long ramBytes) {
        InMemoryPartition p = new InMemoryPartition(ramBytes);
        partitions.add(p);
        return p;
    }

    /** Every partition created, in order. */
    public List<InMemoryPartition> partitions() {
        return List.copyOf(partitions);
    }

    /** The only partition; fails unless exactly one was created. */
    public InMemoryPartition partition() {
        if (partitions.size() != 1) {
            throw new IllegalStateException(partitions.size() + " partitions");
        }
        return partitions.getFirst();
    }

    /** RAM over shared memory, vCPUs that play scripts, optional interrupt lines that count pulses. */
    public final class InMemoryPartition implements Partition {
        private final Arena arena = Arena.ofShared();
        private final GuestMemory memory;
        private final long ramBytes;
        private final List<ScriptedVcpu> vcpus = new CopyOnWriteArrayList<>();
        private final List<SharedMapping> mappings = new CopyOnWriteArrayList<>();
        private final AtomicInteger[] pulses = new AtomicInteger[InterruptController.IOAPIC_PINS];
        private volatile boolean closed;
        private boolean interrupts;

        InMemoryPartition(long ramBytes) {
            this.ramBytes = ramBytes;
            this.memory = GuestMemory.of(0, arena.allocate(ramBytes, 4096));
            for (int i = 0; i < pulses.length; i++) {
                pulses[i] = new AtomicInteger();
            }
        }

        @Override
        public GuestMemory memory() {
            return memory;
        }

        @Override
        public ScriptedVcpu createVcpu(int id) {
            ScriptedVcpu v = new ScriptedVcpu(id, scripts.apply(id), stickyStop);
            vcpus.add(v);
            return v;
        }

        public List<ScriptedVcpu> vcpus() {
            return List.copyOf(vcpus);
        }

        /** How many vCPUs existed when {@link #enableHyperV} was called; -1 while it was not. */
        public volatile int hyperVAfterVcpus = -1;

        /** Whom {@link #enableHyperV(SynicHost)} was given: where a guest's SynIC exits would go. */
        public volatile SynicHost synicHost;

        @Override
        public void enableHyperV() {
            enableHyperV(SynicHost.NONE);
        }

        @Override
        public synchronized void enableHyperV(SynicHost host) {
            if (!hyperV) {
                Partition.super.enableHyperV(host);   // the SPI's answer for a backend without it
            }
            if (!interrupts) {
                throw new IllegalStateException("Hyper-V before the interrupt controller");
            }
            hyperVAfterVcpus = vcpus.size();
            synicHost = host;
        }

        @Override
        public synchronized Optional<InterruptController> createInterruptController() {
            if (interrupts || !vcpus.isEmpty()) {
                throw new IllegalStateException("interrupt controller after vCPUs or twice");
            }
            interrupts = true;
            return Optional.of(new InterruptController() {
                @Override
                public InterruptLine line(int gsi) {
                    return new InterruptLine() {
                        @Override
                        public int gsi() {
                            return gsi;
                        }

                        @Override
                        public void set(boolean asserted) {
                            if (asserted) {
                                pulses[gsi].incrementAndGet();
                            }
                        }

                        @Override
                        public void pulse() {
                            pulses[gsi].incrementAndGet();
                        }
                    };
                }

                @Override
                public boolean irqfd() {
                    return false;
                }
            });
        }

        /** Interrupts raised on {@code gsi}. */
        public int pulses(int gsi) {
            return pulses[gsi].get();
        }

        @Override
        public SharedMapping mapShared(long gpa, MemorySegment host, boolean readOnly) {
            long size = host.byteSize();
            if ((gpa & 4095) != 0 || (size & 4095) != 0 || size == 0 || gpa < ramBytes) {
                throw new IllegalArgumentException("misaligned, empty or in RAM: 0x%x + %d".formatted(gpa, size));
            }
            for (SharedMapping m : mappings) {
                if (gpa < m.gpa() + m.size() && m.gpa() < gpa + size) {
                    throw new IllegalArgumentException("overlaps the mapping at 0x%x".formatted(m.gpa()));
                }
            }
            SharedMapping mapping = new SharedMapping() {
                @Override
                public long gpa() {
                    return gpa;
                }

                @Override
                public long size() {
                    return size;
                }

                @Override
                public boolean readOnly() {
                    return readOnly;
                }

                @Override
                public void close() {
                    mappings.remove(this);
                }
            };
            mappings.add(mapping);
            return mapping;
        }

        /** Files RAM was mapped from ({@link #mapRamFrom}), in order. */
        public final List<RamFile> mappedFrom = new CopyOnWriteArrayList<>();

        /**
         * A stand-in for a copy-on-write mapping: zeroes RAM and copies the file's extents in, each
         * checked against the file's size first, as the KVM backend does before it maps them.
         */
        @Override
        public synchronized void mapRamFrom(RamFile ram) {
            if (ram.ramBytes() != ramBytes) {
                throw new IllegalArgumentException(ram.file() + " describes " + ram.ramBytes() + " bytes of RAM; this VM has " + ramBytes);
            }
            try (FileChannel file = FileChannel.open(ram.file(), StandardOpenOption.READ)) {
                for (RamFile.Extent e : ram.extents()) {
                    if (e.fileOffset() + e.length() > file.size()) {
                        throw new IllegalArgumentException("RAM extent at 0x%x lies past the end of %s".formatted(e.gpa(), ram.file()));
                    }
                }
                MemorySegment all = memory.slice(0, ramBytes);
                all.fill((byte) 0);
                for (RamFile.Extent e : ram.extents()) {
                    ByteBuffer target = all.asSlice(e.gpa(), e.length()).asByteBuffer();
                    while (target.hasRemaining()) {
                        if (file.read(target, e.fileOffset() + target.position()) < 0) {
                            throw new IllegalArgumentException(ram.file() + " ended early");
                        }
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            mappedFrom.add(ram);
        }

        /** Shared regions mapped now. */
        public List<SharedMapping> mappings() {
            return List.copyOf(mappings);
        }

        /** A stand-in for the hypervisor's dirty log: the pages {@link #guestWrite} wrote since it started or was collected. */
        private long[] guestWritten;

        @Override
        public synchronized Optional<DirtyLog> startDirtyLog() {
            if (guestWritten == null) {
                guestWritten = new long[(int) ((ramBytes / DirtyLog.PAGE + 63) / 64)];
            }
            return Optional.of(bitmap -> {
                synchronized (this) {
                    long pages = 0;
                    for (int i = 0; i < guestWritten.length; i++) {
                        bitmap[i] |= guestWritten[i];
                        pages += Long.bitCount(guestWritten[i]);
                        guestWritten[i] = 0;
                    }
                    return pages;
                }
            });
        }

        /** Writes {@code bytes} at {@code gpa} as a guest would: straight into RAM, logged if the dirty log runs. */
        public synchronized void guestWrite(long gpa, byte[] bytes) {
            memory.write(gpa, bytes);
            for (long page = gpa / DirtyLog.PAGE; guestWritten != null && page <= (gpa + bytes.length - 1) / DirtyLog.PAGE; page++) {
                guestWritten[(int) (page >>> 6)] |= 1L << page;
            }
        }

        /** A stand-in for the hypervisor's own VM state: one 8-byte part, {@value #CLOCK_PART}. */
        public volatile long clock;
        public static final String CLOCK_PART = "clock";

        @Override
        public PartitionState saveState() {
            return new PartitionState(List.of(new StatePart(CLOCK_PART, ByteBuffer.allocate(8).putLong(clock).array())));
        }

        @Override
        public void restoreState(PartitionState state) {
            for (StatePart p : state.parts()) {
                if (!p.name().equals(CLOCK_PART) || p.size() != 8) {
                    throw new IllegalArgumentException("partition state part '%s' of %d bytes: the in-memory partition has only '%s' of 8"
                            .formatted(p.name(), p.size(), CLOCK_PART));
                }
            }
            state.part(CLOCK_PART).ifPresent(p -> clock = ByteBuffer.wrap(p.bytes()).getLong());
        }

        @Override
        public Map<String, Long> statistics() {
            return Map.of("ram_bytes", memory().size());   // one figure of the partition's own, as KVM's VM statistics are
        }

        public boolean closed() {
            return closed;
        }

        @Override
        public synchronized void close() {
            if (closed) {
                return;
            }
            closed = true;
            vcpus.forEach(Vcpu::close);
            arena.close();   // fails while a vCPU thread still reads guest memory: the test sees it
        }
    }
}
