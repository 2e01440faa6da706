package org.nxia.gemini.internal;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.Marshalling;
import org.nxia.gemini.api.TokenInfo;
import org.nxia.portal.api.PortalArena;

/**
 * A session as one host bundle holds it: its calls name that bundle to the policy and the audit
 * log ({@code host (bundle NAME)}, {@code caller=bundle:NAME}); everything else is the session's.
 * The name comes from the framework ({@link BundleGemini}), so a bundle cannot call as another.
 */
record BundleSession(Session session, String bundle) implements GeminiSession {

    @Override
    public long id() {
        return session.id();
    }

    @Override
    public String peer() {
        return session.peer();
    }

    @Override
    public String profile() {
        return session.profile();
    }

    @Override
    public String vmId() {
        return session.vmId();
    }

    @Override
    public boolean isOpen() {
        return session.isOpen();
    }

    @Override
    public Object call(String service, String method, Duration timeout, Object... args) {
        return call(service, method, Marshalling.AUTO, timeout, args);
    }

    @Override
    public CompletableFuture<Object> callAsync(String service, String method, List<CapabilityToken> tokens, Duration timeout,
                                               Object... args) {
        return callAsync(service, method, tokens, Marshalling.AUTO, timeout, args);
    }

    @Override
    public Object call(String service, String method, Marshalling marshalling, Duration timeout, Object... args) {
        return Session.await(callAsync(service, method, List.of(), marshalling, timeout, args));
    }

    @Override
    public CompletableFuture<Object> callAsync(String service, String method, List<CapabilityToken> tokens, Marshalling marshalling,
                                               Duration timeout, Object... args) {
        return session.callAsync(bundle, service, method, tokens, marshalling, timeout, args);
    }

    @Override
    public void bindReferenceRegion(String name, PortalArena arena) {
        session.bindReferenceRegion(name, arena);
    }

    @Override
    public Optional<String> referenceRegion() {
        return session.referenceRegion();
    }

    @Override
    public long referenceThreshold() {
        return session.referenceThreshold();
    }

    @Override
    public <T> T proxy(Class<T> type, String service, Duration timeout) {
        return Session.proxy(this, type, service, timeout);
    }

    @Override
    public CapabilityToken grant(String service, int rights, Duration ttl) {
        return session.grant(service, rights, ttl);
    }

    @Override
    public boolean revoke(CapabilityToken token) {
        return session.revoke(token);
    }

    @Override
    public List<TokenInfo> tokens() {
        return session.tokens();
    }

    @Override
    public int outstanding() {
        return session.outstanding();
    }

    @Override
    public void close(String reason) {
        session.close(reason);
    }

    @Override
    public String closeReason() {
        return session.closeReason();
    }

    @Override
    public String toString() {
        return session + " as bundle " + bundle;
    }
}
