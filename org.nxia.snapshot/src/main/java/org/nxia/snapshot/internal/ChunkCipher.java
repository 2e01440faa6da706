package org.nxia.snapshot.internal;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Arrays;

import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * AES-256-GCM of one snapshot file. The file key is HMAC-SHA256(key, label || salt), so each
 * file (random salt) has its own key and a chunk of one file never opens in another; the
 * nonce is the chunk's counter in the file (0 for the section table's tag), so no nonce
 * repeats under a file key; the AAD binds the header's fixed fields, the section's index,
 * the chunk's index in it and whether it is the last.
 */
public final class ChunkCipher {

    private static final byte[] LABEL = "NXIA snapshot 1 file key".getBytes(StandardCharsets.US_ASCII);
    public static final int AAD = 16 + 24 + 4 + 8 + 1;

    private final SecretKey fileKey;
    private final Cipher cipher;
    private final byte[] nonce = new byte[12];
    private final byte[] aad = new byte[AAD];

    /** @param header the header's first 64 bytes: magic..flags and chunk size..salt are bound into every chunk */
    public ChunkCipher(SecretKey key, byte[] header) {
        byte[] raw = key.getEncoded();
        if (raw == null || raw.length != 32) {
            throw new IllegalArgumentException("a snapshot key is 32 bytes (AES-256)");
        }
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(raw, "HmacSHA256"));
            mac.update(LABEL);
            mac.update(header, Format.H_SALT, Format.SALT);
            byte[] derived = mac.doFinal();
            fileKey = new SecretKeySpec(derived, "AES");
            Arrays.fill(derived, (byte) 0);
            cipher = Cipher.getInstance("AES/GCM/NoPadding");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK lacks HmacSHA256 or AES/GCM", e);
        } finally {
            Arrays.fill(raw, (byte) 0);
        }
        System.arraycopy(header, 0, aad, 0, 16);
        System.arraycopy(header, Format.H_CHUNK_SIZE, aad, 16, 24);
    }

    private GCMParameterSpec nonce(long counter) {
        Format.le(nonce).putLong(4, Long.reverseBytes(counter));   // big-endian counter after 4 zero bytes
        return new GCMParameterSpec(128, nonce);
    }

    private void aad(int section, long index, boolean last) {
        Format.le(aad).putInt(40, section).putLong(44, index).put(52, (byte) (last ? 1 : 0));
    }

    /** Encrypts {@code len} bytes into {@code out} (length + 16); returns the bytes written. */
    public int seal(long counter, int section, long index, boolean last, byte[] in, int off, int len, byte[] out) {
        try {
            cipher.init(Cipher.ENCRYPT_MODE, fileKey, nonce(counter));
            aad(section, index, last);
            cipher.updateAAD(aad);
            return cipher.doFinal(in, off, len, out, 0);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM failed", e);
        }
    }

    /** Decrypts a chunk into {@code out}; false when its tag does not verify (changed, moved, from another file, wrong key). */
    public boolean open(long counter, int section, long index, boolean last, byte[] in, int off, int len, byte[] out) {
        try {
            cipher.init(Cipher.DECRYPT_MODE, fileKey, nonce(counter));
            aad(section, index, last);
            cipher.updateAAD(aad);
            cipher.doFinal(in, off, len, out, 0);
            return true;
        } catch (AEADBadTagException e) {
            return false;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM failed", e);
        }
    }

    /** The section table's tag: GMAC (nonce counter 0) over header, table and digest. */
    public byte[] tableTag(byte[] header, byte[] table, byte[] digest) {
        try {
            cipher.init(Cipher.ENCRYPT_MODE, fileKey, nonce(0));
            cipher.updateAAD(header);
            cipher.updateAAD(table);
            cipher.updateAAD(digest);
            return cipher.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM failed", e);
        }
    }
}
