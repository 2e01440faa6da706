package org.nxia.gemini.api;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Optional;

import org.nxia.lsm.policy.api.GuestProcess;

import org.nxia.portal.api.Ref;

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

    /**
     * The bytes a reference argument names in the session's reference region, read-only and in
     * place, checked now (bounds, block, generation). Valid until the call returns; the peer
     * can change them meanwhile, so read each byte once.
     *
     * @throws GeminiException {@link ErrorCode#BAD_REF} if it names no live block of the region
     */
    MemorySegment read(Ref ref);

    /**
     * The System VM process that made the call, when it came through its VM's broker (the guest
     * kernel's word for uid, gid, pid and executable); empty for every other caller.
     *
     * @since 1.1
     */
    Optional<GuestProcess> process();

    /** Whether the caller cancelled the call or its session closed. */
    boolean cancelled();
}
