package org.nxia.gemini.internal;

import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.TokenInfo;

/**
 * The capability tokens this host minted. A token is 128 bits from
 * {@link SecureRandom}; everything it means lives here and is checked on every
 * use. A token revoked one by one stays listed (marked), so its replay is
 * refused as "revoked", not "unknown"; when its session closes it is dropped.
 */
final class Tokens {
    /** Tokens one session holds at once (revoked and expired ones are dropped to make room). */
    static final int MAX_PER_SESSION = 1024;

    private final SecureRandom random = new SecureRandom();
    private final Map<CapabilityToken, TokenInfo> all = new ConcurrentHashMap<>();
    /** Session → how many of {@link #all} are its. */
    private final Map<Long, int[]> held = new ConcurrentHashMap<>();
    private final Clock clock;

    Tokens(Clock clock) {
        this.clock = clock;
    }

    CapabilityToken mint(long session, String service, int rights, Duration ttl) {
        if (ttl.isNegative() || ttl.isZero()) {
            throw new IllegalArgumentException("a token needs a positive lifetime, got " + ttl);
        }
        int[] n = held.computeIfAbsent(session, k -> new int[1]);
        synchronized (n) {
            if (n[0] >= MAX_PER_SESSION) {
                Instant now = clock.instant();
                List<CapabilityToken> spent = all.values().stream()
                        .filter(i -> i.session() == session && (i.revoked() || !now.isBefore(i.expires())))
                        .map(TokenInfo::token).toList();
                spent.forEach(all::remove);
                n[0] -= spent.size();
                if (n[0] >= MAX_PER_SESSION) {
                    throw new GeminiException(ErrorCode.BUSY, "session " + session + " holds " + MAX_PER_SESSION
                            + " live tokens already: revoke some or let them expire");
                }
            }
            CapabilityToken t;
            do {
                t = new CapabilityToken(random.nextLong(), random.nextLong());
            } while (all.containsKey(t));
            all.put(t, new TokenInfo(t, service, rights, session, clock.instant().plus(ttl), false));
            n[0]++;
            return t;
        }
    }

    /** The token's record if {@code session} may use it now; else TOKEN with the reason. */
    TokenInfo check(long session, CapabilityToken token) {
        TokenInfo i = all.get(token);
        if (i == null) {
            throw new GeminiException(ErrorCode.TOKEN, "token " + token + " is unknown (forged or never issued)");
        }
        if (i.session() != session) {
            throw new GeminiException(ErrorCode.TOKEN, "token " + token + " belongs to another session");
        }
        if (i.revoked()) {
            throw new GeminiException(ErrorCode.TOKEN, "token " + token + " was revoked");
        }
        if (!clock.instant().isBefore(i.expires())) {
            throw new GeminiException(ErrorCode.TOKEN, "token " + token + " expired at " + i.expires());
        }
        return i;
    }

    boolean revoke(long session, CapabilityToken token) {
        TokenInfo i = all.get(token);
        if (i == null || i.session() != session || i.revoked()) {
            return false;
        }
        return all.replace(token, i, revoked(i));
    }

    private static TokenInfo revoked(TokenInfo i) {
        return new TokenInfo(i.token(), i.service(), i.rights(), i.session(), i.expires(), true);
    }

    /**
     * Revokes every token of a session that closed, by dropping them: each later use is refused
     * (as unknown), a call still running in the closed session included, and the table keeps only
     * open sessions' tokens.
     */
    void revokeAll(long session) {
        all.values().removeIf(i -> i.session() == session);
        held.remove(session);
    }

    List<TokenInfo> of(long session) {
        List<TokenInfo> out = new ArrayList<>();
        for (TokenInfo i : all.values()) {
            if (session < 0 || i.session() == session) {
                out.add(i);
            }
        }
        out.sort(Comparator.comparing(TokenInfo::expires));
        return out;
    }

    Instant now() {
        return clock.instant();
    }
}
