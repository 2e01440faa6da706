package org.nxia.gemini.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.TokenInfo;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.lsm.policy.api.Decision;
import org.nxia.lsm.policy.api.GuestProcess;

/**
 * The host's side of every session: each incoming call is checked by the
 * policy, then its tokens, then dispatched to the host service by name;
 * each outgoing call is checked by the policy.
 */
final class HostHandler implements Handler {

    /** Where host services come from (OSGi in the platform, a map in tests). */
    interface Services {
        /** The service and its callable methods, or null. */
        Values.Exported find(String name);

        /** Whether the service marks {@code method} catastrophic. */
        boolean catastrophic(String name, String method);
    }

    private final CallPolicy policy;
    private final boolean broker;
    private final Services services;
    private final Tokens tokens;
    private final Consumer<Session> onClose;
    private final GuestProcess owner;

    HostHandler(CallPolicy policy, Services services, Tokens tokens, boolean broker, Consumer<Session> onClose) {
        this(policy, services, tokens, broker, null, onClose);
    }

    /** {@code owner}: the System VM process a ring session belongs to, or null. */
    HostHandler(CallPolicy policy, Services services, Tokens tokens, boolean broker, GuestProcess owner, Consumer<Session> onClose) {
        this.policy = policy;
        this.owner = owner;
        this.broker = broker;
        this.services = services;
        this.tokens = tokens;
        this.onClose = onClose;
    }

    /**
     * Who calls, for the policy: a VM's session is that VM by construction; a session bound to no
     * VM has only the name its peer claimed in HELLO, which proves nothing, so it is
     * {@value #UNAUTHENTICATED} whatever the name (no {@code caller=} rule can be claimed by saying a name).
     */
    static String guestCaller(Session s) {
        return s.vmId() != null ? "guest:" + s.vmId() : UNAUTHENTICATED;
    }

    static final String UNAUTHENTICATED = "unauthenticated";

    @Override
    public Object serve(Session session, Wire.Call call, Session.Context context) throws Exception {
        Values.Exported service = services.find(call.service());
        CallRequest request = new CallRequest(session.profile(), session.id(), session.vmId(), guestCaller(session),
                CallRequest.Direction.GUEST_TO_HOST, call.service(), call.method(),
                service != null && services.catastrophic(call.service(), call.method()), context.process().orElse(null));
        Decision d = policy.check(request);
        if (!d.allowed()) {
            throw new GeminiException(d.rateLimited() ? ErrorCode.RATE_LIMITED : ErrorCode.DENIED, d.reason());
        }
        List<TokenInfo> checked = new ArrayList<>();
        for (CapabilityToken t : call.tokens()) {
            checked.add(tokens.check(session.id(), t));
        }
        context.checked(checked);
        if (service == null) {
            throw new GeminiException(ErrorCode.NO_SERVICE, "no host service '" + call.service() + "' (gemini:services lists them)");
        }
        if (context.cancelled()) { // the CANCEL came while the checks ran: the service never sees the call
            throw new GeminiException(ErrorCode.CANCELLED, call.service() + "." + call.method() + " was cancelled before it ran");
        }
        return Values.invoke(service, call.service(), call.method(), call.args(), context);
    }

    @Override
    public void checkOutgoing(Session session, String bundle, String service, String method) {
        Decision d = policy.check(new CallRequest(session.profile(), session.id(), session.vmId(), "host", CallRequest.Direction.HOST_TO_GUEST,
                service, method, false, null, bundle));
        if (!d.allowed()) {
            throw new GeminiException(d.rateLimited() ? ErrorCode.RATE_LIMITED : ErrorCode.DENIED, d.reason());
        }
    }

    @Override
    public void authenticate(Session session, Wire.Hello hello) {
        // Over a VM's own rings the peer is that VM by construction; the auth bytes are reserved (docs/gemini-protocol.md).
        if (hello.auth().length != 0) {
            throw new GeminiException(ErrorCode.AUTH, "this transport takes no auth bytes: the session is bound to its VM");
        }
    }

    @Override
    public boolean takesCallerIdentities() {
        return broker;
    }

    @Override
    public GuestProcess owner() {
        return owner;
    }

    @Override
    public void closed(Session session) {
        tokens.revokeAll(session.id());
        onClose.accept(session);
    }
}
