package org.nxia.device.platform.internal;

import java.util.concurrent.ConcurrentLinkedQueue;

import org.nxia.vmm.api.InterruptLine;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.api.device.SerialPort;

/**
 * A 16550A UART at eight consecutive ports: the registers Linux's 8250
 * driver uses, a receive FIFO fed by the host ({@link #send}), transmit to
 * the VM's console, loopback. Where the VM has an interrupt controller the
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
    /** With loopback off, the modem lines read as connected: DCD, DSR, CTS. */
    static final int MSR_CONNECTED = 0xb0;

    private final int base;
    private final DeviceContext context;
    private final ConcurrentLinkedQueue<Byte> rx = new ConcurrentLinkedQueue<>();
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
    public void send(byte[] bytes) {
        for (byte b : bytes) {
            rx.add(b);
        }
        synchronized (this) {
            updateIrq();
        }
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
                    rx.add((byte) v);
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
                    ier = v & 0x0f;
                }
            }
            case IIR_FCR -> {
                fcr = v & 0xc9;
                if ((v & FCR_CLEAR_RX) != 0) {
                    rx.clear();
                }
            }
            case LCR -> lcr = v;
            case MCR -> mcr = v & 0x1f;
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
                Byte b = rx.poll();
                yield b == null ? 0 : b & 0xff;
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
            case LSR -> LSR_THRE | LSR_TEMT | (rx.peek() != null ? LSR_DR : 0);
            case MSR -> (mcr & MCR_LOOP) != 0 ? loopbackModemStatus() : MSR_CONNECTED;
            case SCR -> scr;
            default -> 0xff;
        };
    }

    private int interruptId() {
        if ((ier & IER_RDA) != 0 && rx.peek() != null) {
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

    /** Saved state. */
    record State(int port, int ier, int lcr, int mcr, int scr, int dll, int dlm, int fcr, byte[] pendingInput) {
    }

    @Override
    public synchronized Record state() {
        byte[] pending = new byte[rx.size()];
        int i = 0;
        for (Byte b : rx) {
            if (i < pending.length) {
                pending[i++] = b;
            }
        }
        return new State(base, ier, lcr, mcr, scr, dll, dlm, fcr, pending);
    }
}
