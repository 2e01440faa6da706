package org.nxia.lsm.policy.api;

/**
 * One call to decide on.
 *
 * @param profile      the VM profile whose manifest applies
 * @param session      the Gemini session id (rate limits count per session)
 * @param caller       who calls: {@code guest:<vm id>} for a guest, {@code host} for host code (one
 *                     identity: which host bundle called is not told apart yet)
 * @param direction    which way the call goes
 * @param service      the called service
 * @param method       the called method
 * @param catastrophic whether the service marked the method catastrophic
 */
public record CallRequest(String profile, long session, String caller, Direction direction, String service, String method,
                          boolean catastrophic) {

    /** Which way a call crosses the VM boundary. */
    public enum Direction {
        /** The guest calls a host service (L→H); manifest keyword {@code out}. */
        GUEST_TO_HOST,
        /** The host calls a guest function (H→L); manifest keyword {@code in}. */
        HOST_TO_GUEST
    }
}
