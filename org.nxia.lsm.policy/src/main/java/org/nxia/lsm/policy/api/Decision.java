package org.nxia.lsm.policy.api;

/**
 * The policy's answer.
 *
 * @param allowed     whether the call may proceed
 * @param rateLimited whether it was refused only because a rate limit ran out
 * @param reason      why, for people (names the manifest rule or the default)
 */
public record Decision(boolean allowed, boolean rateLimited, String reason) {

    public static Decision allow(String reason) {
        return new Decision(true, false, reason);
    }

    public static Decision deny(String reason) {
        return new Decision(false, false, reason);
    }
}
