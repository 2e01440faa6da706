package org.nxia.snapshot.internal;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The byte layout of docs/snapshot-format.md: constants, and the encoding of the header's
 * fixed part and of section-table entries. All integers are little-endian.
 */
public final class Format {

    private Format() {
    }

    public static final byte[] MAGIC = "NXIASNAP".getBytes(StandardCharsets.US_ASCII);
    public static final int MAJOR = 1;
    public static final int MINOR = 0;

    /** Header fields: offsets into the fixed part. */
    public static final int H_MAGIC = 0;
    public static final int H_MAJOR = 8;
    public static final int H_MINOR = 10;
    public static final int H_FLAGS = 12;
    public static final int H_HEADER_LENGTH = 16;
    public static final int H_SECTION_COUNT = 20;
    public static final int H_TABLE_OFFSET = 24;
    public static final int H_FILE_LENGTH = 32;
    public static final int H_CHUNK_SIZE = 40;
    public static final int H_RESERVED = 44;
    public static final int H_SALT = 48;
    public static final int FIXED_HEADER = 64;

    public static final int FLAG_ENCRYPTED = 1;
    public static final int KNOWN_FLAGS = FLAG_ENCRYPTED;

    /** Requirements: architecture and backend 1..32 bytes each, opaque cpu and features; the encoded block at most this. */
    public static final int MAX_REQUIREMENTS = 4096;
    public static final int MAX_HEADER = FIXED_HEADER + MAX_REQUIREMENTS;
    public static final int NAME_FIELD_MAX = 32;

    public static final int MAX_SECTIONS = 4096;
    public static final int ENTRY = 96;
    public static final int E_NAME = 0;
    public static final int E_KIND = 32;
    public static final int E_RESERVED = 34;
    public static final int E_OFFSET = 40;
    public static final int E_STORED = 48;
    public static final int E_LENGTH = 56;
    public static final int E_SHA256 = 64;

    public static final int KIND_DATA = 0;
    public static final int KIND_RAM_MAP = 1;
    public static final int KIND_RAM_PAGES = 2;
    public static final String RAM_MAP_NAME = "ram.map";
    public static final String RAM_PAGES_NAME = "ram";

    /** A data section's content, and the page map's: at most 16 MiB. */
    public static final long MAX_SECTION = 16L << 20;
    public static final int PAGE = 4096;
    /** Guest RAM: at most 1 TiB. */
    public static final long MAX_RAM = 1L << 40;
    /** Page map: RAM size, page size, run count, then (first page, page count) per run. */
    public static final int MAP_HEADER = 16;
    public static final int RUN = 16;
    public static final int MAX_RUNS = (int) ((MAX_SECTION - MAP_HEADER) / RUN);

    public static final int MIN_CHUNK = 256;
    public static final int MAX_CHUNK = 16 << 20;
    public static final int DEFAULT_CHUNK = 1 << 20;
    public static final int TAG = 16;
    public static final int DIGEST = 32;
    public static final int SALT = 16;
    /** Gaps between parts of the file are zero and shorter than a page (alignment only). */
    public static final int MAX_GAP = PAGE - 1;

    public static ByteBuffer le(byte[] bytes) {
        return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    public static long align(long value, long to) {
        return (value + to - 1) & -to;
    }

    /** Section and name rule: 1..32 of {@code [a-z0-9._-]}, starting with a letter or digit. */
    public static boolean validName(String name) {
        if (name.isEmpty() || name.length() > NAME_FIELD_MAX) {
            return false;
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            boolean alnum = c >= 'a' && c <= 'z' || c >= '0' && c <= '9';
            if (!alnum && (i == 0 || c != '.' && c != '_' && c != '-')) {
                return false;
            }
        }
        return true;
    }

    /** Stored length of {@code length} content bytes: itself, or with a tag per chunk when encrypted. */
    public static long storedLength(long length, int chunkSize) {
        return chunkSize == 0 ? length : length + chunks(length, chunkSize) * TAG;
    }

    public static long chunks(long length, int chunkSize) {
        return (length + chunkSize - 1) / chunkSize;
    }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    /** Length of the trailer after the table: the digest, and the table's tag when encrypted. */
    public static int trailer(boolean encrypted) {
        return DIGEST + (encrypted ? TAG : 0);
    }
}
