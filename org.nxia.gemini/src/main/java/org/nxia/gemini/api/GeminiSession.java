package org.nxia.gemini.api;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

import org.nxia.portal.api.PortalArena;

import org.osgi.annotation.versioning.ProviderType;

/**
 * One Gemini session with a peer (a guest, or a loopback peer in tests).
 * Calls go both ways; when the session closes or its VM dies, every
 * outstanding call fails with {@link ErrorCode#CLOSED} and its tokens are
 * revoked.
 */
@ProviderType
public interface GeminiSession {

    int READ = 1;
    int WRITE = 2;
    int EXECUTE = 4;
    int ADMIN = 8;

    long id();

    /** The peer's name from its HELLO. */
    String peer();

    /** The VM profile the policy applies to this session. */
    String profile();

    /** The VM id, or null for a session that has no VM. */
    String vmId();

    boolean isOpen();

    /** Calls {@code service.method} in the peer and waits at most {@code timeout}. */
    Object call(String service, String method, Duration timeout, Object... args);

    /**
     * Calls {@code service.method} in the peer. Cancelling the future sends a
     * CANCEL; a timeout fails it with {@link ErrorCode#TIMEOUT} and cancels the call.
     */
    CompletableFuture<Object> callAsync(String service, String method, List<CapabilityToken> tokens, Duration timeout,
                                        Object... args);

    /**
     * As {@link #call(String, String, Duration, Object...)}, passing {@code byte[]} arguments as
     * {@code marshalling} says (the per-call override of {@link Marshalling#AUTO}).
     */
    Object call(String service, String method, Marshalling marshalling, Duration timeout, Object... args);

    /**
     * As {@link #callAsync(String, String, List, Duration, Object...)} with {@code marshalling}.
     * A block allocated for a by-reference argument is freed when the call completes, fails,
     * times out or is cancelled.
     */
    CompletableFuture<Object> callAsync(String service, String method, List<CapabilityToken> tokens, Marshalling marshalling,
                                        Duration timeout, Object... args);

    /**
     * Binds the Portal region whose block arena holds this session's by-reference arguments
     * (both directions); the peer must use the same region. A VM binds its own with the
     * host call {@code gemini} (op REGION).
     *
     * @throws IllegalStateException if a region is already bound
     */
    void bindReferenceRegion(String name, PortalArena arena);

    /** The name of the bound reference region, if any. */
    Optional<String> referenceRegion();

    /** The size from which {@link Marshalling#AUTO} passes a {@code byte[]} argument by reference. */
    long referenceThreshold();

    /**
     * A proxy for {@code type}: each method calls {@code service.<method name>}
     * in the peer. Methods returning {@link CompletableFuture} are asynchronous.
     */
    <T> T proxy(Class<T> type, String service, Duration timeout);

    /** Mints a token owned by this session for {@code service} with {@code rights}, valid for {@code ttl}. */
    CapabilityToken grant(String service, int rights, Duration ttl);

    /** Revokes a token of this session. @return whether it existed and was not yet revoked */
    boolean revoke(CapabilityToken token);

    List<TokenInfo> tokens();

    /** Calls in flight, both directions. */
    int outstanding();

    /** Closes the session: outstanding calls fail, tokens are revoked, the peer gets a CLOSE. */
    void close(String reason);

    /** Why the session closed, or null while open. */
    String closeReason();
}
