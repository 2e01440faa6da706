package org.nxia.device.vmbus.internal;

import java.util.UUID;

/**
 * What a VMBus channel offers the guest and how it serves it: the interface type the guest's driver
 * binds by, and what to do once the guest opens the channel and sends packets. Called with the
 * server's lock held, on a vCPU thread or the server's timer: keep it short.
 */
interface ChannelDevice {

    /** The interface type GUID, which picks the guest's driver. */
    UUID type();

    /** A short name for {@code device:list}. */
    String name();

    /** Longest payload the guest may send on this channel; a longer packet closes it. */
    int maxPacket();

    /** The guest opened the channel: it can be sent to now. */
    void opened(Channel channel);

    /** A packet from the guest: {@code length} bytes of {@code payload}. */
    void received(Channel channel, byte[] payload, int length, long transaction);

    /** The guest closed the channel (or broke its ring). */
    void closed();

    /** Counters for {@code device:list}. */
    String state();
}
