package org.nxia.gemini.api;

import java.util.List;

import org.osgi.annotation.versioning.ProviderType;

/**
 * What a host service method sees of the call it serves; declare it as the
 * first parameter to receive it.
 */
@ProviderType
public interface CallContext {

    GeminiSession session();

    String service();

    String method();

    /** The tokens the caller presented, each already checked (owner, expiry, revocation). */
    List<TokenInfo> tokens();

    /**
     * Returns a presented token scoped to this service that carries all of
     * {@code rights}.
     *
     * @throws GeminiException {@link ErrorCode#TOKEN} if none does
     */
    TokenInfo require(int rights);

    /** Whether the caller cancelled the call or its session closed. */
    boolean cancelled();
}
