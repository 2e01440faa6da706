package org.nxia.snapshot.api;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.Set;

import javax.crypto.SecretKey;
import javax.crypto.spec.SecretKeySpec;

/**
 * Snapshot keys (AES-256). A key file holds the 32 key bytes either raw (exactly 32 bytes)
 * or as 64 hex digits, optionally followed by one newline; it must be readable by its owner
 * only (no group or other permission bits), as an SSH private key must.
 */
public final class SnapshotKeys {

    /** The largest file {@link #load} reads: 64 hex digits and a CRLF. */
    private static final int MAX_KEY_FILE = 66;

    private SnapshotKeys() {
    }

    /** A key from its 32 bytes (copied). */
    public static SecretKey of(byte[] key) {
        if (key.length != 32) {
            throw new IllegalArgumentException("a snapshot key is 32 bytes (AES-256), not " + key.length);
        }
        return new SecretKeySpec(key, "AES");
    }

    /** A new random key. */
    public static SecretKey generate() {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        try {
            return of(key);
        } finally {
            Arrays.fill(key, (byte) 0);
        }
    }

    /**
     * Reads a key file (see the class comment). Refuses, with a message that names the file and
     * the fix: a file that group or others may read or write, a link, a file that is not 32
     * raw bytes or 64 hex digits.
     */
    public static SecretKey load(Path file) throws IOException {
        PosixFileAttributeView view = Files.getFileAttributeView(file, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS);
        if (view == null) {
            throw new IOException(file + ": key files need a POSIX file system (to check who may read them)");
        }
        var attributes = view.readAttributes();
        if (!attributes.isRegularFile()) {
            throw new IOException(file + ": a key file must be a regular file (not a link, directory or device)");
        }
        Set<PosixFilePermission> open = EnumSet.copyOf(attributes.permissions());
        open.retainAll(EnumSet.of(PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_EXECUTE,
            PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_EXECUTE));
        if (!open.isEmpty()) {
            throw new IOException(file + ": the key file is accessible to group or others ("
                + PosixFilePermissions.toString(attributes.permissions()) + "); chmod 600 it");
        }
        if (attributes.size() > MAX_KEY_FILE) {
            throw new IOException(file + ": a key file holds 32 raw bytes or 64 hex digits, this one has " + attributes.size() + " bytes");
        }
        byte[] content = Files.readAllBytes(file);
        byte[] key = null;
        try {
            key = parse(content);
            if (key == null) {
                throw new IOException(file + ": a key file holds 32 raw bytes or 64 hex digits (and a newline), this one has "
                    + content.length + " bytes that are neither");
            }
            return of(key);
        } finally {
            Arrays.fill(content, (byte) 0);
            if (key != null) {
                Arrays.fill(key, (byte) 0);
            }
        }
    }

    private static byte[] parse(byte[] content) {
        if (content.length == 32) {
            return content.clone();
        }
        int length = content.length;
        if (length > 0 && content[length - 1] == '\n') {
            length--;
            if (length > 0 && content[length - 1] == '\r') {
                length--;
            }
        }
        if (length != 64) {
            return null;
        }
        String hex = new String(content, 0, 64, StandardCharsets.US_ASCII);
        try {
            return HexFormat.of().parseHex(hex);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** Writes {@code key} as 64 hex digits and a newline to a new file, mode 0600 from the start. */
    public static void write(Path file, SecretKey key) throws IOException {
        byte[] raw = key.getEncoded();
        try {
            if (raw == null || raw.length != 32) {
                throw new IllegalArgumentException("a snapshot key is 32 bytes (AES-256)");
            }
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            Files.writeString(file, HexFormat.of().formatHex(raw) + "\n", StandardCharsets.US_ASCII);
        } finally {
            if (raw != null) {
                Arrays.fill(raw, (byte) 0);
            }
        }
    }
}
