package org.nxia.snapshot.api;

import java.nio.ByteBuffer;
import java.security.MessageDigest;

import javax.crypto.SecretKey;

import org.nxia.snapshot.internal.ChunkCipher;
import org.nxia.snapshot.internal.Format;

/**
 * Edits snapshot bytes as an attacker would, then reseals what can be resealed: each
 * section's SHA-256 (where its range lies in the file), the header-and-table digest and,
 * given the key, the table's tag. Lets tests reach the checks that lie behind the hashes.
 */
final class Forge {

    private Forge() {
    }

    static ByteBuffer le(byte[] file) {
        return Format.le(file);
    }

    static int headerLength(byte[] f) {
        return le(f).getInt(Format.H_HEADER_LENGTH);
    }

    static int count(byte[] f) {
        return le(f).getInt(Format.H_SECTION_COUNT);
    }

    static long table(byte[] f) {
        return le(f).getLong(Format.H_TABLE_OFFSET);
    }

    static int entry(byte[] f, int i) {
        return (int) table(f) + i * Format.ENTRY;
    }

    static int index(byte[] f, String name) {
        for (int i = 0; i < count(f); i++) {
            int at = entry(f, i);
            int n = 0;
            while (n < 32 && f[at + n] != 0) {
                n++;
            }
            if (new String(f, at, n, java.nio.charset.StandardCharsets.US_ASCII).equals(name)) {
                return i;
            }
        }
        throw new IllegalArgumentException("no section " + name);
    }

    static long offset(byte[] f, String name) {
        return le(f).getLong(entry(f, index(f, name)) + Format.E_OFFSET);
    }

    static long stored(byte[] f, String name) {
        return le(f).getLong(entry(f, index(f, name)) + Format.E_STORED);
    }

    static void set(byte[] f, String name, int field, long value) {
        le(f).putLong(entry(f, index(f, name)) + field, value);
    }

    /** Reseals hashes and digest (and the tag, given the key) over whatever the bytes now say; never throws. */
    static byte[] reseal(byte[] f, SecretKey key) {
        if (f.length < Format.FIXED_HEADER) {
            return f;
        }
        ByteBuffer b = le(f);
        int h = b.getInt(Format.H_HEADER_LENGTH);
        int n = b.getInt(Format.H_SECTION_COUNT);
        long t = b.getLong(Format.H_TABLE_OFFSET);
        if (h < Format.FIXED_HEADER || h > f.length || n < 0 || n > Format.MAX_SECTIONS || t < 0 || t > f.length
            || t + (long) n * Format.ENTRY + Format.DIGEST > f.length) {
            return f;
        }
        for (int i = 0; i < n; i++) {
            int e = (int) t + i * Format.ENTRY;
            long offset = b.getLong(e + Format.E_OFFSET);
            long stored = b.getLong(e + Format.E_STORED);
            if (offset >= 0 && stored >= 0 && offset <= f.length && stored <= f.length - offset) {
                MessageDigest sha = Format.sha256();
                sha.update(f, (int) offset, (int) stored);
                b.put(e + Format.E_SHA256, sha.digest());
            }
        }
        MessageDigest sha = Format.sha256();
        sha.update(f, 0, h);
        sha.update(f, (int) t, n * Format.ENTRY);
        byte[] digest = sha.digest();
        int d = (int) t + n * Format.ENTRY;
        System.arraycopy(digest, 0, f, d, Format.DIGEST);
        if (key != null && d + Format.DIGEST + Format.TAG <= f.length) {
            byte[] header = java.util.Arrays.copyOf(f, h);
            byte[] table = java.util.Arrays.copyOfRange(f, (int) t, d);
            byte[] tag = new ChunkCipher(key, header).tableTag(header, table, digest);
            System.arraycopy(tag, 0, f, d + Format.DIGEST, Format.TAG);
        }
        return f;
    }
}
