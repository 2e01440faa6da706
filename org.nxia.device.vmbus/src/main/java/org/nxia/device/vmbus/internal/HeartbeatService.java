package org.nxia.device.vmbus.internal;

import java.util.UUID;

/**
 * The heartbeat integration service: the host sends a sequence number every
 * {@link VmbusServer#HEARTBEAT_PERIOD}; a live guest answers it plus one.
 */
final class HeartbeatService extends IntegrationService {

    static final UUID TYPE = UUID.fromString("57164f39-9115-4e78-ab55-382f3bd5422d");
    static final int HEARTBEAT = 1;
    /** sequence number, 8 reserved words. */
    static final int DATA_BYTES = 8 + 32;

    private long sequence;
    private long beats;

    @Override
    public UUID type() {
        return TYPE;
    }

    @Override
    public String name() {
        return "heartbeat";
    }

    @Override
    int messageType() {
        return HEARTBEAT;
    }

    @Override
    int messageVersion() {
        return version(3, 0);
    }

    @Override
    void negotiatedNow() {
        beat();
    }

    /** Sends the next sequence number, unless one is unanswered. */
    void beat() {
        if (!ready()) {
            return;
        }
        java.util.Arrays.fill(buffer(), IC_DATA, IC_DATA + DATA_BYTES, (byte) 0);
        sequence += 2;
        Vmbus.putInt(buffer(), IC_DATA, (int) sequence);
        Vmbus.putInt(buffer(), IC_DATA + 4, (int) (sequence >>> 32));
        request(DATA_BYTES);
    }

    @Override
    void answered(byte[] p, int length, int status) {
        long answer = length < IC_DATA + 8 ? -1 : (Vmbus.intAt(p, IC_DATA) & 0xffff_ffffL) | (long) Vmbus.intAt(p, IC_DATA + 4) << 32;
        if (status == 0 && answer == sequence + 1) {
            beats++;
        } else {
            failures++;
        }
    }

    long beats() {
        return beats;
    }

    @Override
    public String state() {
        return "heartbeat: %s, %d beats, %d failures".formatted(versions(), beats, failures);
    }
}
