package org.nxia.control.api;

import java.io.IOException;

/** The agent answered with an error, or the session broke. */
public class ControlException extends IOException {

    private static final long serialVersionUID = 1L;

    /** Why; the numbers are the protocol's ERROR codes. */
    public enum Code {
        /** The connection broke or the peer broke the protocol (not an ERROR frame). */
        SESSION(0),
        PROTOCOL(1), VERSION(2), AUTH(3), TOO_BIG(4), TRUNCATED(5), UNKNOWN_TYPE(6), EXEC(7),
        NO_SUCH_ID(8), QUIESCED(9), SYSTEM(10);

        private final int wire;

        Code(int wire) {
            this.wire = wire;
        }

        public int wire() {
            return wire;
        }

        public static Code of(int wire) {
            for (Code c : values())
                if (c.wire == wire)
                    return c;
            return PROTOCOL;
        }
    }

    private final Code code;

    public ControlException(Code code, String message) {
        super(message);
        this.code = code;
    }

    public ControlException(Code code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    public Code code() {
        return code;
    }
}
