package org.nxia.control.api;

import java.nio.charset.StandardCharsets;

/**
 * A finished program's status and output.
 *
 * @param truncated whether output past {@link #OUTPUT_LIMIT} was dropped
 */
public record ExecResult(ExitStatus status, byte[] stdout, byte[] stderr, boolean truncated) {

    /** The most bytes kept per stream: the guest decides how much it prints. */
    public static final int OUTPUT_LIMIT = 16 << 20;

    public String stdoutText() {
        return new String(stdout, StandardCharsets.UTF_8);
    }

    public String stderrText() {
        return new String(stderr, StandardCharsets.UTF_8);
    }
}
