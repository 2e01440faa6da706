package org.nxia.gemini.api;

import java.util.HexFormat;

/**
 * A capability token as it crosses the boundary: 128 random bits. It means
 * nothing by itself; the session that minted it looks it up on every use
 * (rights, owner session, expiry, revocation).
 *
 * @param high bytes 0..7 of the wire form, little-endian
 * @param low  bytes 8..15 of the wire form, little-endian
 */
public record CapabilityToken(long high, long low) {

    /** The 16 wire bytes. */
    public byte[] bytes() {
        byte[] b = new byte[16];
        for (int i = 0; i < 8; i++) {
            b[i] = (byte) (high >>> (8 * i));
            b[8 + i] = (byte) (low >>> (8 * i));
        }
        return b;
    }

    public static CapabilityToken of(byte[] b, int offset) {
        long h = 0;
        long l = 0;
        for (int i = 7; i >= 0; i--) {
            h = (h << 8) | (b[offset + i] & 0xff);
            l = (l << 8) | (b[offset + 8 + i] & 0xff);
        }
        return new CapabilityToken(h, l);
    }

    /** Parses the 32-digit hex form {@link #toString()} gives. */
    public static CapabilityToken parse(String hex) {
        if (hex.length() != 32) {
            throw new IllegalArgumentException("a token is 32 hex digits, got " + hex.length() + " characters");
        }
        return of(HexFormat.of().parseHex(hex), 0);
    }

    @Override
    public String toString() {
        return HexFormat.of().formatHex(bytes());
    }
}
