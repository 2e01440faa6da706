package org.nxia.gemini.internal;

import org.nxia.gemini.api.GeminiException;
import org.nxia.lsm.policy.api.GuestProcess;

/** What a session does with the peer's calls and its own outgoing ones. */
interface Handler {

    /** Serves one incoming call on a worker thread; a {@link GeminiException} goes back typed, anything else as FAILED. */
    Object serve(Session session, Wire.Call call, Session.Context context) throws Exception;

    /**
     * Checks a call this side is about to make, by the host bundle named {@code bundle} (null when
     * none is known); throws {@link GeminiException} to refuse it.
     */
    void checkOutgoing(Session session, String bundle, String service, String method);

    /** Checks the peer's HELLO; throws {@link GeminiException} {@code AUTH} to refuse it. */
    void authenticate(Session session, Wire.Hello hello);

    /**
     * Whether the peer is a System VM's broker, whose CALLs may name the guest process they come
     * from; from any other peer such a CALL is refused (it could claim any process).
     */
    default boolean takesCallerIdentities() {
        return false;
    }

    /**
     * The one System VM process the whole session belongs to (a process's ring session), whose
     * identity every call of the session carries as a broker's CALL names its own; null for
     * every other session.
     */
    default GuestProcess owner() {
        return null;
    }

    /** The session closed (tokens are revoked here). */
    void closed(Session session);
}
