package org.nxia.device.platform.internal;

import java.util.ArrayDeque;

import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.api.device.SavedStateCodec;
import org.nxia.vmm.api.device.SerialPort;

/**
 * A 16550A UART at eight consecutive ports: the registers Linux's 8250
 * driver uses, the chip's 16-byte receive FIFO fed by the host ({@link #send})
 * or by loopback, transmit to the VM's console. A loopback byte that finds the
 * FIFO full is dropped and sets LSR.OE, as on the chip; host input beyond the
 * FIFO waits on the host side (up to {@link #MAX_PENDING} bytes) and refills
 * the FIFO as the guest reads. Where the VM has an interrupt controller the
 * UART drives its IRQ line from IIR (Linux's 8250 driver needs the
 * THR-empty interrupt to write from user space); micro-VMs have none, so
 * their guests poll LSR.
 */
final class Uart16550 implements Device, SerialPort, PortDevice {

    // register offsets
    static final int RBR_THR_DLL = 0;
    static final int IER_DLM = 1;
    static final int IIR_FCR = 2;
    static final int LCR = 3;
    static final int MCR = 4;
    static final int LSR = 5;
    static final int MSR = 6;
    static final int SCR = 7;

    static final int LCR_DLAB = 0x80;
    static final int MCR_LOOP = 0x10;
    static final int LSR_DR = 0x01;
    static final int LSR_OE = 0x02;
    static final int LSR_THRE = 0x20;
    static final int LSR_TEMT = 0x40;
    static final int IER_RDA = 0x01;
    static final int IER_THRE = 0x02;
    static final int IIR_NONE = 0x01;
    static final int IIR_THRE = 0x02;
    static final int IIR_RDA = 0x04;
    static final int IIR_FIFO = 0xc0;
    static final int FCR_ENABLE = 0x01;
    static final int FCR_CLEAR_RX = 0x02;
    /** The bits IER, MCR and FCR keep of what the guest writes. */
    static final int IER_KEPT = 0x0f;
    static final int MCR_KEPT = 0x1f;
    static final int FCR_KEPT = 0xc9;
    /** With loopback off, the modem lines read as connected: DCD, DSR, CTS. */
    static final int MSR_CONNECTED = 0xb0;
    static final int FIFO_SIZE = 16;
    /** Host input waiting for room in the FIFO; beyond this the host's bytes are dropped. */
    static final int MAX_PENDING = 1 << 20;

    private final int base;
    private final DeviceContext context;
    private final byte[] fifo = new byte[FIFO_SIZE];
    private int fifoHead;
    private int fifoCount;
    /** Overrun: set when a byte arrived at a full FIFO, cleared by reading LSR. */
    private boolean overrun;
    private final ArrayDeque<byte[]> pending = new ArrayDeque<>();
    private int pendingBytes;
    private int pendingOffset;
    private final byte[] one = new byte[1];
    /** The IRQ line, or null where the VM has no interrupt controller. */
    private final InterruptLine irq;

    private int ier;
    private int lcr;
    private int mcr;
    private int scr;
    private int dll = 12;   // 9600 baud at 1.8432 MHz
    private int dlm;
    private int fcr;
    /** A THR-empty interrupt is pending until IIR is read or THR written (16550 semantics). */
    private boolean threPending = true;

    Uart16550(int base, int irq, DeviceContext context) {
        this.base = base;
        this.context = context;
        context.claimPorts(base, 8, this);
        this.irq = context.claimIrq(irq).orElse(null);
    }

    @Override
    public String type() {
        return Uart16550Factory.TYPE;
    }

    @Override
    public synchronized void send(byte[] bytes) {
        if (bytes.length == 0 || pendingBytes + bytes.length > MAX_PENDING) {
            return;   // the guest is not reading: keep the host's memory bounded
        }
        pending.add(bytes.clone());
        pendingBytes += bytes.length;
        refill();
        updateIrq();
    }

    /** Moves waiting host input into the FIFO while it has room. */
    private void refill() {
        while (fifoCount < FIFO_SIZE && !pending.isEmpty()) {
            byte[] head = pending.peek();
            fifo[(fifoHead + fifoCount++) % FIFO_SIZE] = head[pendingOffset++];
            pendingBytes--;
            if (pendingOffset == head.length) {
                pending.poll();
                pendingOffset = 0;
            }
        }
    }

    private void clearReceiver() {
        fifoHead = 0;
        fifoCount = 0;
        pending.clear();
        pendingBytes = 0;
        pendingOffset = 0;
    }

    /** The chip's INTR output follows IIR: asserted while an enabled interrupt is pending. */
    private void updateIrq() {
        if (irq != null) {
            irq.set(interruptId() != IIR_NONE);
        }
    }

    @Override
    public synchronized void write(int port, int size, int value) {
        int v = value & 0xff;
        switch (port - base) {
            case RBR_THR_DLL -> {
                if ((lcr & LCR_DLAB) != 0) {
                    dll = v;
                } else if ((mcr & MCR_LOOP) != 0) {
                    if (fifoCount == FIFO_SIZE) {
                        overrun = true;
                    } else {
                        fifo[(fifoHead + fifoCount++) % FIFO_SIZE] = (byte) v;
                    }
                } else {
                    one[0] = (byte) v;
                    context.console(one, 0, 1);
                    threPending = true;
                }
            }
            case IER_DLM -> {
                if ((lcr & LCR_DLAB) != 0) {
                    dlm = v;
                } else {
                    // Enabling THRE with the transmitter empty raises it at once (16550 behaviour;
                    // Linux's 8250 driver checks for exactly this at startup).
                    if ((v & IER_THRE) != 0 && (ier & IER_THRE) == 0) {
                        threPending = true;
                    }
                    ier = v & IER_KEPT;
                }
            }
            case IIR_FCR -> {
                fcr = v & FCR_KEPT;
                if ((v & FCR_CLEAR_RX) != 0) {
                    clearReceiver();
                }
            }
            case LCR -> lcr = v;
            case MCR -> mcr = v & MCR_KEPT;
            case SCR -> scr = v;
            default -> {
                // LSR and MSR are read-only: writes are ignored, as on the chip
            }
        }
        updateIrq();
    }

    @Override
    public synchronized int read(int port, int size) {
        int value = register(port);
        updateIrq();
        return value;
    }

    private int register(int port) {
        return switch (port - base) {
            case RBR_THR_DLL -> {
                if ((lcr & LCR_DLAB) != 0) {
                    yield dll;
                }
                if (fifoCount == 0) {
                    yield 0;
                }
                int b = fifo[fifoHead] & 0xff;
                fifoHead = (fifoHead + 1) % FIFO_SIZE;
                fifoCount--;
                refill();
                yield b;
            }
            case IER_DLM -> (lcr & LCR_DLAB) != 0 ? dlm : ier;
            case IIR_FCR -> {
                int id = interruptId();
                if (id == IIR_THRE) {
                    threPending = false;   // reading IIR clears a THR-empty interrupt
                }
                yield id | ((fcr & FCR_ENABLE) != 0 ? IIR_FIFO : 0);
            }
            case LCR -> lcr;
            case MCR -> mcr;
            case LSR -> {
                int lsr = LSR_THRE | LSR_TEMT | (fifoCount > 0 ? LSR_DR : 0) | (overrun ? LSR_OE : 0);
                overrun = false;   // reading LSR clears the error bits
                yield lsr;
            }
            case MSR -> (mcr & MCR_LOOP) != 0 ? loopbackModemStatus() : MSR_CONNECTED;
            case SCR -> scr;
            default -> 0xff;
        };
    }

    private int interruptId() {
        if ((ier & IER_RDA) != 0 && fifoCount > 0) {
            return IIR_RDA;
        }
        if ((ier & IER_THRE) != 0 && threPending) {
            return IIR_THRE;
        }
        return IIR_NONE;
    }

    /** In loopback the outputs DTR, RTS, OUT1, OUT2 come back as DSR, CTS, RI, DCD. */
    private int loopbackModemStatus() {
        return ((mcr & 0x01) << 5) | ((mcr & 0x02) << 3) | ((mcr & 0x04) << 4) | ((mcr & 0x08) << 4);
    }

    /** Counters and diagnostics: the registers and every byte of input waiting, the host's included. */
    record State(int port, int ier, int lcr, int mcr, int scr, int dll, int dlm, int fcr, byte[] pendingInput) {
    }

    @Override
    public synchronized Record state() {
        byte[] input = new byte[fifoCount + pendingBytes];
        for (int i = 0; i < fifoCount; i++) {
            input[i] = fifo[(fifoHead + i) % FIFO_SIZE];
        }
        int at = fifoCount;
        int offset = pendingOffset;
        for (byte[] chunk : pending) {
            System.arraycopy(chunk, offset, input, at, chunk.length - offset);
            at += chunk.length - offset;
            offset = 0;
        }
        return new State(base, ier, lcr, mcr, scr, dll, dlm, fcr, input);
    }

    /**
     * What a snapshot keeps: the registers as the guest wrote them, the pending
     * THR-empty interrupt, the overrun bit and the bytes in the receive FIFO
     * (the guest can read them). Host input still waiting outside the FIFO is
     * the host's, not the chip's, and is not kept.
     */
    record Saved(int ier, int lcr, int mcr, int scr, int dll, int dlm, int fcr, boolean threPending, boolean overrun,
                 byte[] receiveFifo) {
    }

    static final int SAVED_VERSION = 1;

    @Override
    public synchronized byte[] saveState() {
        byte[] received = new byte[fifoCount];
        for (int i = 0; i < fifoCount; i++) {
            received[i] = fifo[(fifoHead + i) % FIFO_SIZE];
        }
        return SavedStateCodec.writer(type(), SAVED_VERSION).u8(ier).u8(lcr).u8(mcr).u8(scr).u8(dll).u8(dlm).u8(fcr)
                .bool(threPending).bool(overrun).bytes(received).toBytes();
    }

    @Override
    public synchronized void restoreState(byte[] bytes) {
        SavedStateCodec.Reader in = SavedStateCodec.reader(bytes, type(), SAVED_VERSION);
        Saved saved = new Saved(in.u8(), in.u8(), in.u8(), in.u8(), in.u8(), in.u8(), in.u8(), in.bool(), in.bool(),
                in.bytes(FIFO_SIZE));
        in.end();
        // The write path keeps only some bits of IER, MCR and FCR: a state with others was edited.
        if ((saved.ier() & ~IER_KEPT) != 0 || (saved.mcr() & ~MCR_KEPT) != 0 || (saved.fcr() & ~FCR_KEPT) != 0) {
            throw in.refuse("IER 0x%x, MCR 0x%x or FCR 0x%x has bits the chip does not keep"
                    .formatted(saved.ier(), saved.mcr(), saved.fcr()));
        }
        ier = saved.ier();
        lcr = saved.lcr();
        mcr = saved.mcr();
        scr = saved.scr();
        dll = saved.dll();
        dlm = saved.dlm();
        fcr = saved.fcr();
        threPending = saved.threPending();
        overrun = saved.overrun();
        clearReceiver();
        System.arraycopy(saved.receiveFifo(), 0, fifo, 0, saved.receiveFifo().length);
        fifoCount = saved.receiveFifo().length;
        updateIrq();
    }
}
