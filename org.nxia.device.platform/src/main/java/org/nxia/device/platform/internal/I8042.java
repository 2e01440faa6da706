package org.nxia.device.platform.internal;

import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.api.device.SavedStateCodec;

/**
 * The part of the i8042 keyboard controller a guest uses to reset the
 * machine (Linux's {@code reboot=k}): command 0xFE on port 0x64 pulses the
 * reset line, which stops the VM cleanly. Also the command byte (0x20/0x60)
 * and the self-test (0xAA → 0x55) that drivers probe with. No keyboard.
 */
final class I8042 implements Device, PortDevice {

    static final int DATA = 0x60;
    static final int COMMAND = 0x64;
    static final int CMD_READ_COMMAND_BYTE = 0x20;
    static final int CMD_WRITE_COMMAND_BYTE = 0x60;
    static final int CMD_SELF_TEST = 0xaa;
    static final int CMD_PULSE_RESET = 0xfe;
    static final int STATUS_OUTPUT_FULL = 0x01;
    static final int STATUS_SYSTEM_FLAG = 0x04;

    private final DeviceContext context;
    private int commandByte = 0x45;
    private int output = -1;
    private boolean expectCommandByte;

    I8042(DeviceContext context) {
        this.context = context;
        context.claimPorts(DATA, 1, this);
        context.claimPorts(COMMAND, 1, this);
    }

    @Override
    public String type() {
        return I8042Factory.TYPE;
    }

    @Override
    public synchronized void write(int port, int size, int value) {
        int v = value & 0xff;
        if (port == DATA) {
            if (expectCommandByte) {
                commandByte = v;
                expectCommandByte = false;
            }
            return;
        }
        switch (v) {
            case CMD_PULSE_RESET -> context.reset("i8042 command 0xfe");
            case CMD_READ_COMMAND_BYTE -> output = commandByte;
            case CMD_WRITE_COMMAND_BYTE -> expectCommandByte = true;
            case CMD_SELF_TEST -> output = 0x55;
            default -> {
                // keyboard and aux port commands: nothing is attached
            }
        }
    }

    @Override
    public synchronized int read(int port, int size) {
        if (port == DATA) {
            int v = output < 0 ? 0 : output;
            output = -1;
            return v;
        }
        return STATUS_SYSTEM_FLAG | (output >= 0 ? STATUS_OUTPUT_FULL : 0);
    }

    record State(int commandByte, int pendingOutput, boolean expectCommandByte) {
    }

    @Override
    public synchronized Record state() {
        return new State(commandByte, output, expectCommandByte);
    }

    /** What a snapshot keeps: the command byte, the byte waiting on the data port (-1: none), and a half-written command. */
    record Saved(int commandByte, int pendingOutput, boolean expectCommandByte) {
    }

    static final int SAVED_VERSION = 1;

    @Override
    public synchronized byte[] saveState() {
        return SavedStateCodec.writer(type(), SAVED_VERSION).u8(commandByte).bool(output >= 0).u8(Math.max(output, 0))
                .bool(expectCommandByte).toBytes();
    }

    @Override
    public synchronized void restoreState(byte[] bytes) {
        SavedStateCodec.Reader in = SavedStateCodec.reader(bytes, type(), SAVED_VERSION);
        int command = in.u8();
        boolean full = in.bool();
        int waiting = in.u8();
        Saved saved = new Saved(command, full ? waiting : -1, in.bool());
        in.end();
        if (!full && waiting != 0) {
            throw in.refuse("an empty output buffer holds 0x" + Integer.toHexString(waiting));
        }
        commandByte = saved.commandByte();
        output = saved.pendingOutput();
        expectCommandByte = saved.expectCommandByte();
    }
}
