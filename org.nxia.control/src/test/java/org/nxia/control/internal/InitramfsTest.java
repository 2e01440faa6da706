package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** The appended archive read back the way the kernel's initramfs unpacker reads it. */
class InitramfsTest {

    /** One cpio entry: mode, owner, link count and data. */
    record Entry(int mode, int uid, int nlink, byte[] data) {
    }

    /**
     * Reads the newc archive that starts at the first 4-aligned "070701" at or after {@code from}
     * (zero padding before it is skipped, as the kernel does), up to its trailer; entries by name.
     */
    static Map<String, Entry> read(byte[] b, int from) {
        int p = from;
        while (b[p] == 0)
            p++;
        assertEquals(0, p & 3, "an archive must start on a 4-byte boundary");
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (;;) {
            String h = new String(b, p, 110, StandardCharsets.US_ASCII);
            assertEquals("070701", h.substring(0, 6));
            int[] f = new int[13];
            for (int i = 0; i < 13; i++)
                f[i] = Integer.parseUnsignedInt(h.substring(6 + 8 * i, 14 + 8 * i), 16);
            int nameSize = f[11], size = f[6];
            assertEquals(0, b[p + 110 + nameSize - 1], "the name ends in NUL");
            String name = new String(b, p + 110, nameSize - 1, StandardCharsets.US_ASCII);
            int data = (p + 110 + nameSize + 3) & ~3;
            p = (data + size + 3) & ~3;
            if (name.equals("TRAILER!!!")) {
                assertEquals(b.length, p, "nothing after the trailer");
                return entries;
            }
            entries.put(name, new Entry(f[1], f[2], f[4], Arrays.copyOfRange(b, data, data + size)));
        }
    }

    @Test
    void theSecretFollowsTheImageInAnArchiveOfItsOwn() {
        byte[] secret = HexFormat.of().parseHex("00112233445566778899aabbccddeeff0123456789abcdef");
        for (int len = 0; len < 8; len++) {    // every alignment of the image's end
            byte[] image = new byte[len];
            Arrays.fill(image, (byte) 0x1f);
            byte[] all = Initramfs.withSecret(image, secret);
            assertArrayEquals(image, Arrays.copyOf(all, len), "the image comes first, unchanged");
            Map<String, Entry> entries = read(all, len);
            assertEquals(java.util.List.of("etc", "etc/nxia", Initramfs.SECRET_FILE), java.util.List.copyOf(entries.keySet()));
            assertEquals(0040755, entries.get("etc").mode());
            assertEquals(0040700, entries.get("etc/nxia").mode());
            assertEquals(2, entries.get("etc").nlink(), "a directory has two links (its name and its .)");
            assertEquals(2, entries.get("etc/nxia").nlink());
            Entry file = entries.get(Initramfs.SECRET_FILE);
            assertEquals(0100400, file.mode(), "a regular file only root reads");
            assertEquals(0, file.uid());
            assertEquals(1, file.nlink());
            assertEquals(HexFormat.of().formatHex(secret) + "\n", new String(file.data(), StandardCharsets.US_ASCII));
            assertTrue(all.length % 4 == 0);
        }
    }
}
