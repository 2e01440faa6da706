package org.nxia.control.internal;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import org.nxia.control.api.Confinement;
import org.nxia.control.api.ControlException.Code;

/** Control protocol v1 on the wire (docs/control-protocol.md): frames, fields, proofs. */
final class Wire {

    static final int VERSION = 1;
    static final int HEADER = 12;                  // u32 length, u16 type, u16 flags, u32 id
    static final int MAX_BODY = 65536;             // the largest length field
    static final int MAX_PAYLOAD = MAX_BODY - 8;
    static final int NONCE = 32;
    static final int MAC = 32;

    // host -> agent
    static final int HELLO = 0x01, AUTH = 0x02, CONFIGURE = 0x10, EXEC = 0x11, STDIN = 0x12,
            SIGNAL = 0x13, RESIZE = 0x14, QUIESCE = 0x15, RESUME = 0x16, SHUTDOWN = 0x17;
    // agent -> host
    static final int HELLO_REPLY = 0x81, READY = 0x82, OK = 0x90, ERROR = 0x91, STARTED = 0x92,
            STDOUT = 0x93, STDERR = 0x94, EXIT = 0x95, DENIED = 0x96;
    // fields of CONFIGURE and EXEC
    static final int T_ARG = 1, T_ENV = 2, T_CWD = 3, T_PTY = 4, T_HOSTNAME = 5, T_MOUNT = 6,
            T_GENERATION = 7, T_SEED = 8, T_SECRET = 9, T_FS_RULE = 10, T_DENY_SYSCALLS = 11, T_UNSHARE = 12;

    private Wire() {
    }

    /** A decoded frame; payload is a copy. */
    record Frame(int type, int id, byte[] payload) {
        ByteBuffer body() {
            return ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        }
    }

    static byte[] encode(int type, int id, byte[] payload) {
        if (payload.length > MAX_PAYLOAD)
            throw new IllegalArgumentException("payload of " + payload.length + " bytes is over " + MAX_PAYLOAD);
        ByteBuffer b = ByteBuffer.allocate(HEADER + payload.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(8 + payload.length).putShort((short) type).putShort((short) 0).putInt(id).put(payload);
        return b.array();
    }

    /**
     * Looks at a stream's bytes from a frame's start (buffer position .. limit):
     * the frame's whole size when complete, 0 when more bytes are needed, or
     * -code for a stream that must be refused (truncated only when atEof).
     */
    static int scan(ByteBuffer in, boolean atEof) {
        ByteBuffer b = in.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int avail = b.remaining(), p = b.position();
        if (avail >= 4) {
            long body = Integer.toUnsignedLong(b.getInt(p));
            if (body > MAX_BODY)
                return -Code.TOO_BIG.wire();
            if (body < 8)
                return -Code.PROTOCOL.wire();
            if (avail >= 8 && b.getShort(p + 6) != 0)
                return -Code.PROTOCOL.wire();
            if (avail >= HEADER && avail - 4 >= body)
                return 4 + (int) body;
        }
        return atEof && avail > 0 ? -Code.TRUNCATED.wire() : 0;
    }

    /** Takes the complete frame at the buffer's position (after a positive {@link #scan}). */
    static Frame take(ByteBuffer in, int size) {
        ByteBuffer b = in.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int p = b.position();
        int type = Short.toUnsignedInt(b.getShort(p + 4));
        int id = b.getInt(p + 8);
        byte[] payload = new byte[size - HEADER];
        b.get(p + HEADER, payload);
        in.position(p + size);
        return new Frame(type, id, payload);
    }

    /** Builds CONFIGURE and EXEC payloads: tag u8, length u32, value. */
    static final class Fields {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Fields put(int tag, byte[] value) {
            ByteBuffer h = ByteBuffer.allocate(5).order(ByteOrder.LITTLE_ENDIAN);
            h.put((byte) tag).putInt(value.length);
            out.writeBytes(h.array());
            out.writeBytes(value);
            return this;
        }

        Fields put(int tag, String value) {
            return put(tag, value.getBytes(StandardCharsets.UTF_8));
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }

    /** EXEC's confinement fields: one FS_RULE per path, then DENY_SYSCALLS and UNSHARE if any. */
    static void putConfinement(Fields fields, Confinement c) {
        for (Confinement.PathRule r : c.paths()) {
            byte[] path = r.path().getBytes(StandardCharsets.UTF_8);
            fields.put(T_FS_RULE, ByteBuffer.allocate(4 + path.length).order(ByteOrder.LITTLE_ENDIAN)
                    .putInt(r.bits()).put(path).array());
        }
        if (!c.deniedSyscalls().isEmpty()) {
            ByteBuffer b = ByteBuffer.allocate(4 * c.deniedSyscalls().size()).order(ByteOrder.LITTLE_ENDIAN);
            c.deniedSyscalls().forEach(b::putInt);
            fields.put(T_DENY_SYSCALLS, b.array());
        }
        if (!c.namespaces().isEmpty()) {
            int bits = 0;
            for (Confinement.Namespace ns : c.namespaces())
                bits |= ns.bit();
            fields.put(T_UNSHARE, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(bits).array());
        }
    }

    /** One field read back out of a payload. */
    record Field(int tag, byte[] value) {
    }

    /** Splits a payload into its fields; null if a length runs past the end. */
    static List<Field> fields(byte[] payload) {
        ByteBuffer b = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        List<Field> list = new ArrayList<>();
        while (b.hasRemaining()) {
            if (b.remaining() < 5)
                return null;
            int tag = Byte.toUnsignedInt(b.get());
            long len = Integer.toUnsignedLong(b.getInt());
            if (len > b.remaining())
                return null;
            byte[] v = new byte[(int) len];
            b.get(v);
            list.add(new Field(tag, v));
        }
        return list;
    }

    static byte[] hmac(byte[] key, byte[] message) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(message);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is part of every JDK", e);
        }
    }

    /**
     * HMAC(secret, label || a || b): the agent proves itself over (host nonce,
     * agent nonce), the host over (agent nonce, host nonce). Distinct labels keep
     * one side's proof from being replayed as the other's.
     */
    static byte[] proof(byte[] secret, boolean agent, byte[] a, byte[] b) {
        byte[] label = (agent ? "nxia-ctl-v1 agent" : "nxia-ctl-v1 host").getBytes(StandardCharsets.US_ASCII);
        byte[] msg = new byte[label.length + a.length + b.length];
        System.arraycopy(label, 0, msg, 0, label.length);
        System.arraycopy(a, 0, msg, label.length, a.length);
        System.arraycopy(b, 0, msg, label.length + a.length, b.length);
        return hmac(secret, msg);
    }

    static boolean macEqual(byte[] a, byte[] b) {
        return MessageDigest.isEqual(a, b);
    }
}
