package org.nxia.device.vmbus.internal;

/**
 * A Hyper-V integration service (Linux's hv_utils binds it): the host asks, the guest answers, one
 * request at a time. Each payload starts with a pipe header (flags, size) and an IC message header
 * (framework version, message type, message version, size, status, transaction, flags); the first
 * exchange negotiates the framework and message versions, which later headers carry.
 */
abstract class IntegrationService implements ChannelDevice {

    static final int PIPE_FLAGS = 0;
    static final int PIPE_SIZE = 4;
    static final int IC_FRAMEWORK_VERSION = 8;
    static final int IC_TYPE = 12;
    static final int IC_MESSAGE_VERSION = 14;
    static final int IC_SIZE = 18;
    static final int IC_STATUS = 20;
    static final int IC_TRANSACTION = 24;
    static final int IC_FLAGS = 25;
    static final int IC_DATA = 28;
    static final int NEGOTIATE = 0;
    static final int FLAG_TRANSACTION = 1;
    static final int FLAG_REQUEST = 2;
    static final int FLAG_RESPONSE = 4;
    /** Negotiation: framework and message version counts, then the versions (major, minor; 16 bits each). */
    static final int NEGOTIATE_FRAMEWORK_COUNT = IC_DATA;
    static final int NEGOTIATE_MESSAGE_COUNT = IC_DATA + 2;
    static final int NEGOTIATE_VERSIONS = IC_DATA + 8;
    /** The one framework version offered. */
    static final int FRAMEWORK_3_0 = version(3, 0);
    /** hv_utils reads into a page-sized buffer. */
    static final int MAX_PACKET = 4096;

    private final byte[] out = new byte[MAX_PACKET];
    // guarded by the server
    protected Channel channel;
    private int serviceVersion;
    private boolean negotiated;
    private boolean outstanding;
    private long transaction;
    protected long failures;

    static int version(int major, int minor) {
        return major | minor << 16;
    }

    static String versionText(int v) {
        return (v & 0xffff) + "." + (v >>> 16);
    }

    /** The IC message type of this service's requests. */
    abstract int messageType();

    /** The message version offered. */
    abstract int messageVersion();

    /** The guest answered this service's request: {@code length} bytes of {@code p}, its status. */
    abstract void answered(byte[] p, int length, int status);

    @Override
    public int maxPacket() {
        return MAX_PACKET;
    }

    @Override
    public void opened(Channel c) {
        channel = c;
        negotiated = false;
        outstanding = false;
        int data = 8 + 8;
        java.util.Arrays.fill(out, 0, IC_DATA + data, (byte) 0);
        out[NEGOTIATE_FRAMEWORK_COUNT] = 1;
        out[NEGOTIATE_MESSAGE_COUNT] = 1;
        Vmbus.putInt(out, NEGOTIATE_VERSIONS, FRAMEWORK_3_0);
        Vmbus.putInt(out, NEGOTIATE_VERSIONS + 4, messageVersion());
        send(NEGOTIATE, version(1, 0), version(1, 0), data);
    }

    @Override
    public void closed() {
        channel = null;
        negotiated = false;
        outstanding = false;
    }

    boolean ready() {
        return channel != null && negotiated && !outstanding;
    }

    /** Fills the headers in front of {@code data} bytes already at {@link #IC_DATA} of {@link #buffer()} and sends it. */
    protected boolean request(int data) {
        return send(messageType(), FRAMEWORK_3_0, messageVersion(), data);
    }

    protected byte[] buffer() {
        return out;
    }

    private boolean send(int type, int framework, int message, int data) {
        int length = IC_DATA + data;
        Vmbus.putInt(out, PIPE_FLAGS, 0);
        Vmbus.putInt(out, PIPE_SIZE, length - 8);
        Vmbus.putInt(out, IC_FRAMEWORK_VERSION, framework);
        out[IC_TYPE] = (byte) type;
        out[IC_TYPE + 1] = 0;
        Vmbus.putInt(out, IC_MESSAGE_VERSION, message);
        out[IC_SIZE] = (byte) data;
        out[IC_SIZE + 1] = (byte) (data >>> 8);
        Vmbus.putInt(out, IC_STATUS, 0);
        out[IC_TRANSACTION] = (byte) ++transaction;
        out[IC_FLAGS] = FLAG_TRANSACTION | FLAG_REQUEST;
        out[IC_FLAGS + 1] = 0;
        out[IC_FLAGS + 2] = 0;
        if (channel == null || !channel.send(out, length, transaction)) {
            return false;
        }
        outstanding = true;
        return true;
    }

    /** An answer: the negotiation's, which must pick the versions offered, or the service's. Anything else counts as a failure. */
    @Override
    public void received(Channel c, byte[] p, int length, long id) {
        if (length < IC_DATA || (p[IC_FLAGS] & FLAG_RESPONSE) == 0 || !outstanding) {
            failures++;
            return;
        }
        outstanding = false;
        int type = (p[IC_TYPE] & 0xff) | (p[IC_TYPE + 1] & 0xff) << 8;
        int status = Vmbus.intAt(p, IC_STATUS);
        if (type == NEGOTIATE) {
            if (status == 0 && length >= NEGOTIATE_VERSIONS + 8 && p[NEGOTIATE_FRAMEWORK_COUNT] == 1 && p[NEGOTIATE_MESSAGE_COUNT] == 1
                    && Vmbus.intAt(p, NEGOTIATE_VERSIONS) == FRAMEWORK_3_0 && Vmbus.intAt(p, NEGOTIATE_VERSIONS + 4) == messageVersion()) {
                negotiated = true;
                serviceVersion = messageVersion();
                negotiatedNow();
            } else {
                failures++;
            }
        } else if (type == messageType() && negotiated) {
            answered(p, length, status);
        } else {
            failures++;
        }
    }

    /** Negotiation is done: a request may go now. */
    void negotiatedNow() {
    }

    protected String versions() {
        return negotiated ? "framework 3.0, " + name() + " " + versionText(serviceVersion) : channel == null ? "closed" : "negotiating";
    }
}
