package org.nxia.device.vmbus.internal;

import java.time.Clock;
import java.util.UUID;

/**
 * The time synchronization integration service: once the channel is negotiated the host sends its
 * clock with the sync flag, and Linux sets its own clock to it (a guest starts with whatever its
 * RTC says: here, 2000-01-01). Message version 3.0: the host's time, the child's (unused), a round
 * trip (0), flags.
 */
final class TimeSyncService extends IntegrationService {

    static final UUID TYPE = UUID.fromString("9527e630-d0ae-497b-adce-e80ab0175caf");
    static final int TIMESYNC = 4;
    /** parent time, child time, round trip (each 64-bit), flags (8-bit), padded to 8 bytes. */
    static final int DATA_BYTES = 32;
    static final int PARENT_TIME = IC_DATA;
    static final int FLAGS = IC_DATA + 24;
    /** Set the clock to this sample (rather than only note it). */
    static final int FLAG_SYNC = 1;
    /** 100-ns intervals from 1601-01-01 (Windows' epoch) to 1970-01-01. */
    static final long WINDOWS_EPOCH_OFFSET = 116_444_736_000_000_000L;

    private final Clock clock;
    private long sent;
    private long answered;

    TimeSyncService(Clock clock) {
        this.clock = clock;
    }

    @Override
    public UUID type() {
        return TYPE;
    }

    @Override
    public String name() {
        return "timesync";
    }

    @Override
    int messageType() {
        return TIMESYNC;
    }

    @Override
    int messageVersion() {
        return version(3, 0);
    }

    @Override
    void negotiatedNow() {
        sync();
    }

    /** Sends the host's time with the sync flag; false if the channel is not ready. */
    boolean sync() {
        if (!ready()) {
            return false;
        }
        java.time.Instant now = clock.instant();
        long windows = WINDOWS_EPOCH_OFFSET + now.getEpochSecond() * 10_000_000L + now.getNano() / 100;
        java.util.Arrays.fill(buffer(), IC_DATA, IC_DATA + DATA_BYTES, (byte) 0);
        Vmbus.putInt(buffer(), PARENT_TIME, (int) windows);
        Vmbus.putInt(buffer(), PARENT_TIME + 4, (int) (windows >>> 32));
        buffer()[FLAGS] = FLAG_SYNC;
        if (!request(DATA_BYTES)) {
            return false;
        }
        sent++;
        return true;
    }

    @Override
    void answered(byte[] p, int length, int status) {
        if (status == 0) {
            answered++;
        } else {
            failures++;
        }
    }

    @Override
    public String state() {
        return "timesync: %s, %d sent, %d answered, %d failures".formatted(versions(), sent, answered, failures);
    }
}
