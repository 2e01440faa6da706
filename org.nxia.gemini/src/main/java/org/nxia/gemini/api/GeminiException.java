package org.nxia.gemini.api;

import java.io.Serial;

/** A Gemini call failed; {@link #code()} says how, the message says why. */
public class GeminiException extends RuntimeException {
    @Serial
    private static final long serialVersionUID = 1L;

    private final ErrorCode code;

    public GeminiException(ErrorCode code, String message) {
        super(code + ": " + message);
        this.code = code;
    }

    public ErrorCode code() {
        return code;
    }

    /** The message without the code prefix. */
    public String reason() {
        return getMessage().substring(code.toString().length() + 2);
    }
}
