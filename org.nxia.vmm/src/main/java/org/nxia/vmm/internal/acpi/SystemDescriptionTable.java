package org.nxia.vmm.internal.acpi;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The header every ACPI system description table starts with (ACPI 6.3
 * §5.2.6) and the checksum rule: all bytes of a table sum to 0 mod 256.
 * OEM and creator are NXIA.
 */
public final class SystemDescriptionTable {

    public static final int HEADER_SIZE = 36;
    public static final int LENGTH = 4;
    public static final int REVISION = 8;
    public static final int CHECKSUM = 9;
    public static final int OEM_ID = 10;
    public static final int OEM_TABLE_ID = 16;
    public static final int OEM_REVISION = 24;
    public static final int CREATOR_ID = 28;
    public static final int CREATOR_REVISION = 32;
    /** Six characters, padded. */
    public static final String NXIA_OEM_ID = "NXIA  ";
    public static final String NXIA_CREATOR_ID = "NXIA";
    public static final int NXIA_OEM_REVISION = 1;
    public static final int NXIA_CREATOR_REVISION = 1;

    private SystemDescriptionTable() {
    }

    /**
     * The table {@code signature} with its header and {@code body}: the
     * length and checksum filled in, the OEM table id "NXIA" + signature.
     */
    static byte[] of(String signature, int revision, byte[] body) {
        if (signature.length() != 4) {
            throw new IllegalArgumentException("a table signature has 4 characters: " + signature);
        }
        ByteBuffer b = ByteBuffer.allocate(HEADER_SIZE + body.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(ascii(signature)).putInt(HEADER_SIZE + body.length).put((byte) revision).put((byte) 0)
                .put(ascii(NXIA_OEM_ID)).put(ascii("NXIA" + signature)).putInt(NXIA_OEM_REVISION)
                .put(ascii(NXIA_CREATOR_ID)).putInt(NXIA_CREATOR_REVISION).put(body);
        byte[] table = b.array();
        table[CHECKSUM] = checksum(table, 0, table.length);
        return table;
    }

    /** The byte that makes {@code [from, from + length)} sum to 0 mod 256 when it replaces a zero in that range. */
    public static byte checksum(byte[] bytes, int from, int length) {
        return (byte) -sum(bytes, from, length);
    }

    /** The sum of {@code [from, from + length)} mod 256: 0 for a table whose checksum is right. */
    public static int sum(byte[] bytes, int from, int length) {
        if (from < 0 || length < 0 || from + length > bytes.length) {
            throw new IndexOutOfBoundsException("range [%d, +%d) outside %d bytes".formatted(from, length, bytes.length));
        }
        int sum = 0;
        for (int i = from; i < from + length; i++) {
            sum += bytes[i];
        }
        return sum & 0xff;
    }

    static byte[] ascii(String text) {
        return text.getBytes(StandardCharsets.US_ASCII);
    }
}
