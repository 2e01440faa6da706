package org.nxia.device.vmbus.internal;

import java.util.UUID;

/**
 * The shutdown integration service: the host asks the guest to power off (Linux: an orderly
 * poweroff, forced if it fails), and the guest answers before it acts.
 */
final class ShutdownService extends IntegrationService {

    static final UUID TYPE = UUID.fromString("0e0b6031-5213-4934-818b-38d90ced39db");
    static final int SHUTDOWN = 3;
    /** reason code, timeout (s), flags (0: power off), a 2048-byte message. */
    static final int DATA_BYTES = 4 + 4 + 4 + 2048;
    static final int FLAGS = IC_DATA + 8;

    private long requested;
    private long accepted;
    private int lastStatus;

    @Override
    public UUID type() {
        return TYPE;
    }

    @Override
    public String name() {
        return "shutdown";
    }

    @Override
    int messageType() {
        return SHUTDOWN;
    }

    @Override
    int messageVersion() {
        return version(3, 0);
    }

    /** Asks the guest to power off; false if the channel is not open and negotiated, or a request is in flight. */
    boolean requestPowerOff() {
        if (!ready()) {
            return false;
        }
        java.util.Arrays.fill(buffer(), IC_DATA, IC_DATA + DATA_BYTES, (byte) 0);
        Vmbus.putInt(buffer(), FLAGS, 0);
        if (!request(DATA_BYTES)) {
            return false;
        }
        requested++;
        return true;
    }

    @Override
    void answered(byte[] p, int length, int status) {
        lastStatus = status;
        if (status == 0) {
            accepted++;
        } else {
            failures++;
        }
    }

    @Override
    public String state() {
        return "shutdown: %s, %d requested, %d accepted, last status 0x%x, %d failures".formatted(versions(), requested, accepted, lastStatus, failures);
    }
}
