package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Optional;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.Partition;
import org.nxia.vmm.spi.Vcpu;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.internal.bus.Bus;

/** A console sink that buffers still sees each write at once; a doorbell's edges and what the counted wrapper passes on. */
class ConsoleAndDoorbellEdgesTest {

    @Test
    void aBufferedStreamSinkIsFlushedOnEveryWrite() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ConsoleLog log = new ConsoleLog();
        log.sink(new PrintStream(new BufferedOutputStream(out, 8192), false, StandardCharsets.UTF_8));
        log.append("ready\n".getBytes(StandardCharsets.UTF_8), 0, 6);
        assertEquals("ready\n", out.toString(StandardCharsets.UTF_8));
    }

    private static final AutoCloseable CONNECTION = () -> { };

    /** A partition whose doorbells report where they are and connect to a line. */
    private static final Partition PARTITION = new Partition() {
        @Override
        public GuestMemory memory() {
            return GuestMemory.of(0, MemorySegment.ofArray(new byte[4096]));
        }

        @Override
        public Vcpu createVcpu(int id) {
            throw new UnsupportedOperationException();
        }

        @Override
        public Optional<Doorbell> createDoorbell(long address, int length) {
            return Optional.of(new Doorbell() {
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
                    return 0;
                }

                @Override
                public Optional<AutoCloseable> connect(InterruptLine line) {
                    return Optional.of(CONNECTION);
                }

                @Override
                public void close() {
                }
            });
        }

        @Override
        public Map<String, Long> statistics() {
            return Map.of();
        }

        @Override
        public void close() {
        }
    };

    @Test
    void aOneByteDoorbellMaySitOnAWindowsLastByte() {
        Bus bus = new Bus();
        bus.addMmio(0xd000_0000L, 0x1000, new MmioDevice() {
            @Override
            public void write(long offset, int size, long value) {
            }

            @Override
            public long read(long offset, int size) {
                return 0;
            }
        });
        DeviceDoorbells doorbells = new DeviceDoorbells(PARTITION, bus);
        Doorbell last = doorbells.create(0xd000_0fffL, 1).orElseThrow();
        assertEquals(0xd000_0fffL, last.address());
        assertEquals(1, last.length());
        assertSame(CONNECTION, last.connect(null).orElseThrow(), "the counted doorbell connects the partition's");
        Doorbell four = doorbells.create(0xd000_0ffcL, 4).orElseThrow();
        assertEquals(4, four.length());
        assertThrows(IllegalArgumentException.class, () -> doorbells.create(0xd000_0ffdL, 4), "one byte past the window");
        assertThrows(IllegalArgumentException.class, () -> doorbells.create(0xd000_0000L, 0), "no bytes");
        assertEquals(2, doorbells.open());
    }
}
