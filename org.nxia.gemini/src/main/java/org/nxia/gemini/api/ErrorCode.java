package org.nxia.gemini.api;

/** The typed errors of a Gemini call (docs/gemini-protocol.md, "Error codes"). */
public enum ErrorCode {
    BAD_FRAME(1),
    VERSION(2),
    AUTH(3),
    NO_SERVICE(4),
    NO_METHOD(5),
    BAD_ARGS(6),
    DENIED(7),
    TOKEN(8),
    FAILED(9),
    CANCELLED(10),
    TIMEOUT(11),
    CLOSED(12),
    RATE_LIMITED(13),
    BUSY(14),
    /** A Portal reference is outside the session's reference region, stale, or the session has none. */
    BAD_REF(15);

    private final int wire;

    ErrorCode(int wire) {
        this.wire = wire;
    }

    /** The code on the wire. */
    public int wire() {
        return wire;
    }

    /** The code for a wire value, or null if it is unknown. */
    public static ErrorCode of(int wire) {
        for (ErrorCode c : values()) {
            if (c.wire == wire) {
                return c;
            }
        }
        return null;
    }
}
