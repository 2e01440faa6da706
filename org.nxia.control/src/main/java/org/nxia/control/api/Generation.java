package org.nxia.control.api;

import java.security.SecureRandom;
import java.util.Arrays;

/**
 * A guest's identity after a snapshot: what {@link AgentSession#resume(Generation)} hands the
 * agent of a clone (or of the original, once one exists) so that no two running copies share a
 * secret or random state. The number must rise with every resume of the same guest memory; the
 * agent refuses one that does not.
 *
 * @param number later than every generation the guest has seen (the original is 0)
 * @param seed   {@value #MIN_SEED}..{@value #MAX_SEED} bytes mixed into the guest's entropy pool, which then reseeds
 * @param secret {@value #MIN_SECRET}..{@value #MAX_SECRET} bytes, the secret later connections to the agent must prove
 */
public record Generation(long number, byte[] seed, byte[] secret) {

    public static final int MIN_SEED = 32, MAX_SEED = 256, MIN_SECRET = 16, MAX_SECRET = 64;

    public Generation {
        if (number <= 0) {
            throw new IllegalArgumentException("a generation after a snapshot is 1 or later, not " + Long.toUnsignedString(number));
        }
        if (seed.length < MIN_SEED || seed.length > MAX_SEED) {
            throw new IllegalArgumentException("a seed is " + MIN_SEED + ".." + MAX_SEED + " bytes, not " + seed.length);
        }
        if (secret.length < MIN_SECRET || secret.length > MAX_SECRET) {
            throw new IllegalArgumentException("a secret is " + MIN_SECRET + ".." + MAX_SECRET + " bytes, not " + secret.length);
        }
        seed = seed.clone();
        secret = secret.clone();
    }

    /** Generation {@code number} with a fresh 64-byte seed and 32-byte secret from {@code random}. */
    public static Generation fresh(long number, SecureRandom random) {
        byte[] seed = new byte[64];
        byte[] secret = new byte[32];
        random.nextBytes(seed);
        random.nextBytes(secret);
        return new Generation(number, seed, secret);
    }

    @Override
    public byte[] seed() {
        return seed.clone();
    }

    @Override
    public byte[] secret() {
        return secret.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Generation g && g.number == number && Arrays.equals(g.seed, seed) && Arrays.equals(g.secret, secret);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(number) * 31 + Arrays.hashCode(seed);
    }

    /** Never shows the seed or the secret. */
    @Override
    public String toString() {
        return "Generation[" + number + "]";
    }
}
