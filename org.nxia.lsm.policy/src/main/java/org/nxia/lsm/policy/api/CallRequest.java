package org.nxia.lsm.policy.api;

/**
 * One call to decide on.
 *
 * @param profile      the VM profile whose manifest applies
 * @param session      the Gemini session id (for the audit log)
 * @param vm           the VM the call crosses out of or into, or null for a session bound to no VM;
 *                     rate limits count per VM, caller and rule, so a new session of the same VM
 *                     (CLOSE, then ATTACH again) continues its windows
 * @param caller       who calls: {@code guest:<vm id>} for a guest, {@code host} for host code (which
 *                     host bundle is {@code bundle}), {@code unauthenticated} for the peer of a session
 *                     bound to no VM (its HELLO name proves nothing)
 * @param direction    which way the call goes
 * @param service      the called service
 * @param method       the called method
 * @param catastrophic whether the service marked the method catastrophic
 * @param process      the System VM process that called, through its VM's broker, or null for any
 *                     other caller; a {@code caller=} rule matches its {@linkplain GuestProcess#facets() facets} too
 * @param bundle       for a call by host code, the symbolic name of the bundle that called (the OSGi
 *                     framework says which bundle got the Gemini service it called through), or null;
 *                     a {@code caller=} rule matches it as {@code bundle:<name>}
 * @since 2.3
 */
public record CallRequest(String profile, long session, String vm, String caller, Direction direction, String service, String method,
                          boolean catastrophic, GuestProcess process, String bundle) {

    /** A call from a guest process, or from no particular process or bundle. */
    public CallRequest(String profile, long session, String vm, String caller, Direction direction, String service, String method,
                       boolean catastrophic, GuestProcess process) {
        this(profile, session, vm, caller, direction, service, method, catastrophic, process, null);
    }

    /** A call from no particular guest process. */
    public CallRequest(String profile, long session, String vm, String caller, Direction direction, String service, String method,
                       boolean catastrophic) {
        this(profile, session, vm, caller, direction, service, method, catastrophic, null, null);
    }

    /** Who called, for messages and the audit log: the caller and, if a guest process or a host bundle, which. */
    public String who() {
        return process != null ? caller + " (" + process + ")" : bundle != null ? caller + " (bundle " + bundle + ")" : caller;
    }

    /** What a {@code caller=} glob can match besides {@link #caller()}: the process's facets, or {@code bundle:<name>}. */
    public java.util.List<String> facets() {
        return process != null ? process.facets() : bundle != null ? java.util.List.of("bundle:" + bundle) : java.util.List.of();
    }

    /** Which way a call crosses the VM boundary. */
    public enum Direction {
        /** The guest calls a host service (L→H); manifest keyword {@code out}. */
        GUEST_TO_HOST,
        /** The host calls a guest function (H→L); manifest keyword {@code in}. */
        HOST_TO_GUEST
    }
}
