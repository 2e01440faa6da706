package org.nxia.device.vmbus.internal;

import java.util.UUID;

/**
 * One offered channel: its relid and connection id, its device, and once the guest opens it, its
 * two rings (guest to host, host to guest) and the VP its events go to.
 */
final class Channel {

    /** Connection ids of channels: 16 + relid, clear of the bus's own (1 and 4). */
    static final int CONNECTION_BASE = 16;

    final int relid;
    final UUID instance;
    final ChannelDevice device;
    private final VmbusServer server;
    final byte[] in;
    private final Ring.Packet packet = new Ring.Packet();
    // guarded by the server
    Ring fromGuest;
    Ring toGuest;
    int gpadl;
    int vp;
    long packetsIn;
    long packetsOut;
    long full;
    /** Why the channel was closed on the guest, if its ring broke a rule. */
    String broken;

    Channel(VmbusServer server, int relid, UUID instance, ChannelDevice device) {
        this.server = server;
        this.relid = relid;
        this.instance = instance;
        this.device = device;
        this.in = new byte[device.maxPacket()];
    }

    int connectionId() {
        return CONNECTION_BASE + relid;
    }

    boolean open() {
        return toGuest != null;
    }

    /**
     * Sends a data packet to the guest and signals it if it waits.
     *
     * @return false if the channel is not open or its ring has no room
     */
    boolean send(byte[] payload, int length, long transaction) {
        if (!open()) {
            return false;
        }
        Ring.Written w;
        try {
            w = toGuest.write(payload, length, transaction);
        } catch (Ring.Malformed e) {
            server.closeChannel(this, e.getMessage());
            return false;
        }
        if (w == Ring.Written.FULL) {
            full++;
            return false;
        }
        packetsOut++;
        if (w == Ring.Written.SIGNAL) {
            server.signal(this);
        }
        return true;
    }

    /** The guest signalled: every packet it wrote goes to the device, at most {@code limit}. */
    void drain(int limit) {
        try {
            for (int n = 0; n < limit && open() && fromGuest.read(in, packet); n++) {
                packetsIn++;
                device.received(this, in, packet.length, packet.transaction);
            }
        } catch (Ring.Malformed e) {
            server.closeChannel(this, e.getMessage());
        }
    }
}
