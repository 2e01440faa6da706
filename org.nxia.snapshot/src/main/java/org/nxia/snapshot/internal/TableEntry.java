package org.nxia.snapshot.internal;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/** One section-table entry (96 bytes, docs/snapshot-format.md). */
public record TableEntry(String name, int kind, long offset, long stored, long length, byte[] sha256) {

    public void encode(ByteBuffer table, int at) {
        byte[] n = name.getBytes(StandardCharsets.US_ASCII);
        table.put(at + Format.E_NAME, n);
        table.putShort(at + Format.E_KIND, (short) kind);
        table.putLong(at + Format.E_OFFSET, offset);
        table.putLong(at + Format.E_STORED, stored);
        table.putLong(at + Format.E_LENGTH, length);
        table.put(at + Format.E_SHA256, sha256);
    }

    public long end() {
        return offset + stored;
    }

    public String hex() {
        return HexFormat.of().formatHex(sha256);
    }
}
