package org.nxia.device.vmbus.internal;

/**
 * VMBus's wire: the channel messages' types and layouts, the SynIC message slot the host writes
 * into, and the {@code HvPostMessage} input the guest posts. Little-endian throughout; offsets in
 * bytes. From Hyper-V's TLFS and the VMBus protocol as Linux's hv_vmbus speaks it.
 */
final class Vmbus {

    private Vmbus() {
    }

    // ---- channel messages: an 8-byte header (the type, then padding), then the message's fields ----

    static final int HEADER_BYTES = 8;
    static final int OFFERCHANNEL = 1;
    static final int REQUESTOFFERS = 3;
    static final int ALLOFFERS_DELIVERED = 4;
    static final int INITIATE_CONTACT = 14;
    static final int VERSION_RESPONSE = 15;
    static final int UNLOAD = 16;
    static final int UNLOAD_RESPONSE = 17;
    static final int OPENCHANNEL = 5;
    static final int OPENCHANNEL_RESULT = 6;
    static final int CLOSECHANNEL = 7;
    static final int GPADL_HEADER = 8;
    static final int GPADL_BODY = 9;
    static final int GPADL_CREATED = 10;
    static final int GPADL_TEARDOWN = 11;
    static final int GPADL_TORNDOWN = 12;
    static final int RELID_RELEASED = 13;
    static final int MODIFYCHANNEL = 22;
    static final int MODIFYCHANNEL_RESPONSE = 24;

    /** OFFERCHANNEL: type and instance GUIDs, flags, relid, monitor, dedicated interrupt, connection id. */
    static final int OFFER_TYPE = 8;
    static final int OFFER_INSTANCE = 24;
    static final int OFFER_RELID = 184;
    static final int OFFER_MONITOR_ALLOCATED = 189;
    static final int OFFER_DEDICATED_INTERRUPT = 190;
    static final int OFFER_CONNECTION_ID = 192;
    static final int OFFER_BYTES = 196;

    /** Fields that name a channel and a GPADL, at the same offsets in most channel messages. */
    static final int MESSAGE_RELID = 8;
    static final int MESSAGE_GPADL = 12;
    /** GPADL_HEADER: range buffer length, range count, the range's byte count and offset, its page numbers. */
    static final int GPADL_RANGE_COUNT = 18;
    static final int GPADL_BYTE_COUNT = 20;
    static final int GPADL_BYTE_OFFSET = 24;
    static final int GPADL_HEADER_PFNS = 28;
    /** GPADL_BODY: message number, the GPADL, then more page numbers. */
    static final int GPADL_BODY_PFNS = 16;
    static final int GPADL_CREATED_STATUS = 16;
    static final int GPADL_CREATED_BYTES = 20;
    static final int GPADL_TORNDOWN_GPADL = 8;
    static final int GPADL_TORNDOWN_BYTES = 12;
    /** OPENCHANNEL: relid, open id, the GPADL of both rings, the VP for events, where the host-to-guest ring starts (pages). */
    static final int OPEN_ID = 12;
    static final int OPEN_GPADL = 16;
    static final int OPEN_TARGET_VP = 20;
    static final int OPEN_DOWNSTREAM_OFFSET = 24;
    static final int OPEN_BYTES = 28;
    static final int OPEN_RESULT_STATUS = 16;
    static final int OPEN_RESULT_BYTES = 20;
    static final int MODIFY_TARGET_VP = 12;
    static final int MODIFY_RESPONSE_STATUS = 12;
    static final int MODIFY_RESPONSE_BYTES = 16;
    /** A refusal's status in GPADL_CREATED, OPENCHANNEL_RESULT and MODIFYCHANNEL_RESPONSE (nonzero: the guest gives up). */
    static final int STATUS_REFUSED = 0xc000_0001;

    /** The SynIC event-flags page: 16 areas of 256 bytes (2048 bits), one per SINT; bit relid of SINT 2's marks a channel. */
    static final int EVENT_FLAGS_BYTES = 256;

    /** INITIATE_CONTACT: the version asked for, the VP to answer on, then for 5.0 on the SINT to answer on. */
    static final int CONTACT_VERSION = 8;
    static final int CONTACT_TARGET_VP = 12;
    static final int CONTACT_MESSAGE_SINT = 16;
    /** Its size, the interrupt page and the two monitor pages included. */
    static final int CONTACT_BYTES = 40;

    /** VERSION_RESPONSE: whether the version is taken, the connection state, the connection id to post to from now on. */
    static final int RESPONSE_SUPPORTED = 8;
    static final int RESPONSE_CONNECTION_ID = 12;
    static final int RESPONSE_BYTES = 16;

    /** Protocol versions, major in the high half: 5.0 (Windows 10 v5) to 5.3, the ones this server speaks. */
    static final int VERSION_5_0 = 0x5_0000;
    static final int VERSION_5_3 = 0x5_0003;

    /** Where the guest posts its first message from 5.0 on. */
    static final int CONTACT_CONNECTION_ID = 4;
    /** Where it posts every other message: what the server answers in VERSION_RESPONSE. */
    static final int MESSAGE_CONNECTION_ID = 1;
    /** The SINT VMBus messages arrive on. */
    static final int MESSAGE_SINT = 2;

    // ---- the SynIC message page: 16 slots of 256 bytes, one per SINT ----

    static final int SLOT_BYTES = 256;
    static final int SLOT_TYPE = 0;
    static final int SLOT_PAYLOAD_SIZE = 4;
    static final int SLOT_FLAGS = 5;
    static final int SLOT_SENDER = 8;
    static final int SLOT_PAYLOAD = 16;
    static final int MAX_PAYLOAD = 240;
    /** Flag: another message waits; the guest writes the end-of-message MSR once it frees the slot. */
    static final int FLAG_PENDING = 1;
    /** A free slot's type. */
    static final int HVMSG_NONE = 0;
    /** The type VMBus's messages carry (the guest checks only that it is not NONE). */
    static final int HVMSG_VMBUS = 1;

    // ---- HvPostMessage's input: connection id, reserved, message type, payload size, payload ----

    static final int POST_CONNECTION_ID = 0;
    static final int POST_TYPE = 8;
    static final int POST_SIZE = 12;
    static final int POST_PAYLOAD = 16;
    static final int POST_BYTES = POST_PAYLOAD + MAX_PAYLOAD;
    /** Connection ids are 24 bits. */
    static final int CONNECTION_ID_MASK = 0xff_ffff;
    /** Control word bit 16: the fast form, inputs in registers. */
    static final long FAST = 1L << 16;
    static final long PAGE = 4096;

    static long longAt(byte[] b, int offset) {
        return (intAt(b, offset) & 0xffff_ffffL) | (long) intAt(b, offset + 4) << 32;
    }

    /** A GUID as Windows lays it out: the first three fields little-endian, the last eight bytes in order. */
    static void putGuid(byte[] b, int offset, java.util.UUID guid) {
        long hi = guid.getMostSignificantBits();
        long lo = guid.getLeastSignificantBits();
        putInt(b, offset, (int) (hi >>> 32));
        b[offset + 4] = (byte) (hi >>> 16);
        b[offset + 5] = (byte) (hi >>> 24);
        b[offset + 6] = (byte) hi;
        b[offset + 7] = (byte) (hi >>> 8);
        for (int i = 0; i < 8; i++) {
            b[offset + 8 + i] = (byte) (lo >>> (56 - 8 * i));
        }
    }

    static int intAt(byte[] b, int offset) {
        return (b[offset] & 0xff) | (b[offset + 1] & 0xff) << 8 | (b[offset + 2] & 0xff) << 16 | (b[offset + 3] & 0xff) << 24;
    }

    static void putInt(byte[] b, int offset, int value) {
        b[offset] = (byte) value;
        b[offset + 1] = (byte) (value >>> 8);
        b[offset + 2] = (byte) (value >>> 16);
        b[offset + 3] = (byte) (value >>> 24);
    }

    /** "5.3", or "none" for 0. */
    static String version(int v) {
        return v == 0 ? "none" : (v >>> 16) + "." + (v & 0xffff);
    }
}
