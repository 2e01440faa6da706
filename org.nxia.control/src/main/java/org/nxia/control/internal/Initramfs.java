package org.nxia.control.internal;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The System VM's per-VM initramfs: the image's own, then a newc cpio archive
 * holding the agent's secret. The kernel unpacks concatenated archives in turn,
 * compressed or not, each starting on a 4-byte boundary; the agent reads the
 * file at start and erases it. Unlike the kernel command line, nothing prints
 * it (console, /proc/cmdline).
 */
final class Initramfs {

    /** Where the agent looks as PID 1 (guest/agent/agent.c SECRET_FILE). */
    static final String SECRET_FILE = "etc/nxia/secret";

    private static final int DIR = 0040000, FILE = 0100000;

    private Initramfs() {
    }

    /** {@code image} (may be empty), zero-padded to 4 bytes, then the archive with {@code secret} as hex. */
    static byte[] withSecret(byte[] image, byte[] secret) {
        byte[] hex = new byte[2 * secret.length + 1];
        for (int i = 0; i < secret.length; i++) {
            hex[2 * i] = (byte) Character.forDigit((secret[i] >> 4) & 15, 16);
            hex[2 * i + 1] = (byte) Character.forDigit(secret[i] & 15, 16);
        }
        hex[hex.length - 1] = '\n';
        ByteArrayOutputStream out = new ByteArrayOutputStream(image.length + 1024);
        out.writeBytes(image);
        out.write(new byte[4], 0, -image.length & 3);
        entry(out, 1, "etc", DIR | 0755, new byte[0]);
        entry(out, 2, "etc/nxia", DIR | 0700, new byte[0]);
        entry(out, 3, SECRET_FILE, FILE | 0400, hex);
        entry(out, 0, "TRAILER!!!", 0, new byte[0]);
        return out.toByteArray();
    }

    /** One newc entry, owned by root, time 0: header, name, data, each padded to 4 bytes. */
    private static void entry(ByteArrayOutputStream out, int ino, String name, int mode, byte[] data) {
        byte[] n = (name + "\0").getBytes(StandardCharsets.US_ASCII);
        int nlink = (mode & DIR) != 0 ? 2 : 1;
        String header = "070701" + "%08x".repeat(13).formatted(ino, mode, 0, 0, nlink, 0, data.length, 0, 0, 0, 0, n.length, 0);
        out.writeBytes(header.getBytes(StandardCharsets.US_ASCII));
        out.writeBytes(n);
        out.write(new byte[4], 0, -(header.length() + n.length) & 3);
        out.writeBytes(data);
        out.write(new byte[4], 0, -data.length & 3);
    }
}
