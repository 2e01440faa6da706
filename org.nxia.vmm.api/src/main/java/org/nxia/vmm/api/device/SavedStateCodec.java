package org.nxia.vmm.api.device;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The one encoding devices use for {@link Device#saveState()}: the device's kind
 * (its type id) and the version of its saved-state record, then the record's
 * fields in a fixed order, big-endian, byte arrays with a 32-bit length. The
 * {@link Reader} takes a snapshot's bytes as hostile: another kind or version,
 * a field past the end, an array longer than its caller allows, a boolean that
 * is not 0 or 1, or bytes left over are refused with
 * {@link IllegalArgumentException} naming the kind; the device then checks
 * each value's range before it applies any.
 */
public final class SavedStateCodec {

    /** The most a reader takes: devices save registers and small rings of them, never buffers. */
    public static final int MAX_BYTES = 1 << 20;

    private SavedStateCodec() {
    }

    /** A writer for {@code kind}'s record at {@code version} (1..255). */
    public static Writer writer(String kind, int version) {
        return new Writer(kind, version);
    }

    /**
     * A reader of {@code saved}, refusing it unless it is {@code kind}'s record at {@code version}.
     *
     * @throws IllegalArgumentException for another kind or version, or bytes too short or too many
     */
    public static Reader reader(byte[] saved, String kind, int version) {
        return new Reader(saved, kind, version);
    }

    /** Appends fields; {@link #toBytes()} ends the record. */
    public static final class Writer {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream(64);

        private Writer(String kind, int version) {
            byte[] name = kind.getBytes(StandardCharsets.US_ASCII);
            if (name.length == 0 || name.length > 255 || version < 1 || version > 255) {
                throw new IllegalArgumentException("kind '" + kind + "' or version " + version + " cannot be encoded");
            }
            out.write(name.length);
            out.writeBytes(name);
            out.write(version);
        }

        public Writer u8(int v) {
            out.write(v);
            return this;
        }

        public Writer bool(boolean v) {
            out.write(v ? 1 : 0);
            return this;
        }

        public Writer u16(int v) {
            out.write(v >>> 8);
            out.write(v);
            return this;
        }

        public Writer i32(int v) {
            out.writeBytes(ByteBuffer.allocate(4).putInt(v).array());
            return this;
        }

        public Writer i64(long v) {
            out.writeBytes(ByteBuffer.allocate(8).putLong(v).array());
            return this;
        }

        public Writer bytes(byte[] v) {
            i32(v.length);
            out.writeBytes(v);
            return this;
        }

        public byte[] toBytes() {
            return out.toByteArray();
        }
    }

    /** Reads fields in the order they were written; {@link #end()} refuses bytes left over. */
    public static final class Reader {
        private final ByteBuffer in;
        private final String kind;

        private Reader(byte[] saved, String kind, int version) {
            this.kind = kind;
            if (saved == null) {
                throw refuse("no saved state");
            }
            if (saved.length > MAX_BYTES) {
                throw refuse(saved.length + " bytes is more than the " + MAX_BYTES + " a saved state may have");
            }
            this.in = ByteBuffer.wrap(saved);
            byte[] name = new byte[u8()];
            take(name.length).get(name);
            String savedKind = new String(name, StandardCharsets.US_ASCII);
            if (!savedKind.equals(kind)) {
                throw refuse("the bytes are the saved state of '" + savedKind + "'");
            }
            int savedVersion = u8();
            if (savedVersion != version) {
                throw refuse("version " + savedVersion + " is not the version " + version + " this device reads");
            }
        }

        public int u8() {
            return Byte.toUnsignedInt(take(1).get());
        }

        public boolean bool() {
            int v = u8();
            if (v > 1) {
                throw refuse("a boolean field is " + v + ", not 0 or 1");
            }
            return v == 1;
        }

        public int u16() {
            return Short.toUnsignedInt(take(2).getShort());
        }

        public int i32() {
            return take(4).getInt();
        }

        public long i64() {
            return take(8).getLong();
        }

        /** A byte array of at most {@code max} bytes. */
        public byte[] bytes(int max) {
            int length = i32();
            if (length < 0 || length > max) {
                throw refuse("an array of " + Integer.toUnsignedString(length) + " bytes where at most " + max + " fit");
            }
            byte[] v = new byte[length];
            take(length).get(v);
            return v;
        }

        /** Refuses bytes left after the last field. */
        public void end() {
            if (in.hasRemaining()) {
                throw refuse(in.remaining() + " bytes follow the last field");
            }
        }

        /** An {@link IllegalArgumentException} naming the kind: for a device's own range checks. */
        public IllegalArgumentException refuse(String why) {
            return new IllegalArgumentException("saved state of " + kind + " refused: " + why);
        }

        private ByteBuffer take(int n) {
            if (in.remaining() < n) {
                throw refuse("truncated: a field needs " + n + " bytes, " + in.remaining() + " are left");
            }
            return in;
        }
    }
}
