package org.nxia.cluster.api;

import java.io.Serial;
import java.io.Serializable;
import java.time.Duration;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * A micro-VM that one node asks another to make.
 *
 * @param guest       a guest of the target node's kit, by name ({@code hello}): never a path,
 *                    since the asking node must not choose files on the target
 * @param memoryBytes guest RAM
 * @param arg         the number handed to the guest in its boot block
 * @param timeout     how long the guest may run before the target stops it
 */
public record GuestRequest(String guest, long memoryBytes, long arg, Duration timeout) implements Serializable {

    @Serial
    private static final long serialVersionUID = 1L;

    /** A guest kit name: no path, no dots. */
    public static final Pattern GUEST_NAME = Pattern.compile("[a-z0-9][a-z0-9_-]{0,63}");

    /** The longest run a remote node may ask for: a node's VMs are its own first. */
    public static final Duration MAX_TIMEOUT = Duration.ofMinutes(10);

    /** Checked here, and so again on the receiving node: deserialization runs this constructor. */
    public GuestRequest {
        Objects.requireNonNull(guest, "guest");
        Objects.requireNonNull(timeout, "timeout");
        if (!GUEST_NAME.matcher(guest).matches()) {
            throw new IllegalArgumentException("guest '" + guest + "' is not a guest kit name (" + GUEST_NAME.pattern()
                    + "): a remote node runs its own kit's guests, not paths");
        }
        if (timeout.isNegative() || timeout.isZero() || timeout.compareTo(MAX_TIMEOUT) > 0) {
            throw new IllegalArgumentException("timeout " + timeout + " is not between 0 and " + MAX_TIMEOUT);
        }
    }

    public static GuestRequest of(String guest, long memoryBytes) {
        return new GuestRequest(guest, memoryBytes, 0, Duration.ofSeconds(30));
    }
}
