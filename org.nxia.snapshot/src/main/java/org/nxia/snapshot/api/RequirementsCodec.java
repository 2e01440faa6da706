package org.nxia.snapshot.api;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

import org.nxia.snapshot.internal.Format;

/** {@link Requirements} in the header: four fields, each a u16 length and its bytes, then zeros to 8-byte alignment. */
final class RequirementsCodec {

    private RequirementsCodec() {
    }

    static byte[] encode(Requirements r) {
        byte[][] fields = {r.architecture().getBytes(StandardCharsets.US_ASCII), r.backend().getBytes(StandardCharsets.US_ASCII),
            r.cpu(), r.features()};
        int length = 0;
        for (byte[] f : fields) {
            length += 2 + f.length;
        }
        ByteBuffer b = Format.le(new byte[length]);
        for (byte[] f : fields) {
            b.putShort((short) f.length).put(f);
        }
        return b.array();
    }

    /** The requirements in {@code header} (its full length), every length checked. */
    static Requirements decode(byte[] header, String label) throws SnapshotFormatException {
        ByteBuffer b = Format.le(header).position(Format.FIXED_HEADER);
        byte[][] fields = new byte[4][];
        for (int i = 0; i < 4; i++) {
            int at = b.position();
            if (b.remaining() < 2) {
                throw new SnapshotFormatException(label + ": the requirements end inside the header (offset " + at + ")");
            }
            int length = Short.toUnsignedInt(b.getShort());
            if (length > b.remaining()) {
                throw new SnapshotFormatException(label + ": requirement field " + i + " of " + length + " bytes (offset " + at
                    + ") runs past the header's end at " + header.length);
            }
            fields[i] = new byte[length];
            b.get(fields[i]);
        }
        if (b.remaining() >= 8) {
            throw new SnapshotFormatException(label + ": " + b.remaining() + " bytes follow the requirements in the header (offset "
                + b.position() + "), more than alignment");
        }
        while (b.hasRemaining()) {
            if (b.get() != 0) {
                throw new SnapshotFormatException(label + ": the header's padding is not zero (offset " + (b.position() - 1) + ")");
            }
        }
        try {
            return new Requirements(new String(fields[0], StandardCharsets.US_ASCII), new String(fields[1], StandardCharsets.US_ASCII),
                fields[2], fields[3]);
        } catch (IllegalArgumentException e) {
            throw new SnapshotFormatException(label + ": bad requirements in the header: " + e.getMessage());
        }
    }

    /** Decodes a header this process just wrote. */
    static Requirements decodeTrusted(byte[] header) {
        try {
            return decode(header, "the header just written");
        } catch (SnapshotFormatException e) {
            throw new IllegalStateException(e);
        }
    }
}
