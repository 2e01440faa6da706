package org.nxia.gemini.api;

import java.time.Instant;

/**
 * What the minting side knows about a capability token.
 *
 * @param token   the 128 random bits
 * @param service the service it is good for
 * @param rights  a bitmask of rights ({@link GeminiSession#READ} ...)
 * @param session the owning session's id; no other session may use it
 * @param expires when it stops being valid
 * @param revoked whether it was revoked (explicitly or with its session)
 */
public record TokenInfo(CapabilityToken token, String service, int rights, long session, Instant expires, boolean revoked) {
}
