package org.nxia.gemini.internal;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.lsm.policy.api.GuestProcess;
import org.nxia.portal.api.Ref;

/**
 * The Gemini frame codec (docs/gemini-protocol.md). Decoding treats the bytes
 * as hostile: every length is checked against what is left and the limits
 * before anything is allocated; a bad frame throws {@link GeminiException}
 * with {@link ErrorCode#BAD_FRAME}.
 */
final class Wire {
    static final int VERSION = 1;
    static final int HEADER = 16;

    static final int HELLO = 1;
    static final int WELCOME = 2;
    static final int CALL = 3;
    static final int RETURN = 4;
    static final int ERROR = 5;
    static final int CANCEL = 6;
    static final int CLOSE = 7;

    /**
     * Header flag of a CALL that a System VM's broker forwards for one of its processes: the body
     * starts with the caller's identity (u32 uid, u32 gid, u32 pid, {@code str} exe). Only a
     * broker session takes it (docs/gemini-protocol.md, "The System VM's broker").
     */
    static final int F_CALLER = 1;

    static final int T_NULL = 0;
    static final int T_BOOL = 1;
    static final int T_I32 = 2;
    static final int T_I64 = 3;
    static final int T_F64 = 4;
    static final int T_STR = 5;
    static final int T_BYTES = 6;
    static final int T_REF = 7;
    static final int T_TOKEN = 8;

    static final int MAX_NAME = 64;
    static final int MAX_PEER = 64;
    static final int MAX_AUTH = 256;
    static final int MAX_MESSAGE = 1024;
    static final int MAX_TOKENS = 8;
    static final int MAX_ARGS = 32;

    private Wire() {
    }

    sealed interface Frame permits Hello, Welcome, Call, Return, Error, Cancel, Close {
        long id();
    }

    record Hello(int minVersion, int maxVersion, String peer, byte[] auth) implements Frame {
        @Override
        public long id() {
            return 0;
        }
    }

    record Welcome(int version, int maxFrame, long session) implements Frame {
        @Override
        public long id() {
            return 0;
        }
    }

    /** {@code process}: the System VM process a broker forwards the call for, or null. */
    record Call(long id, String service, String method, List<CapabilityToken> tokens, List<Object> args, GuestProcess process)
            implements Frame {
        Call(long id, String service, String method, List<CapabilityToken> tokens, List<Object> args) {
            this(id, service, method, tokens, args, null);
        }
    }

    record Return(long id, Object value) implements Frame {
    }

    record Error(long id, ErrorCode code, String message) implements Frame {
    }

    record Cancel(long id) implements Frame {
    }

    record Close(String reason) implements Frame {
        @Override
        public long id() {
            return 0;
        }
    }

    static GeminiException bad(String why) {
        return new GeminiException(ErrorCode.BAD_FRAME, why);
    }

    // ---- encoding ----

    /** Encodes {@code frame}; throws {@link ErrorCode#BAD_ARGS} for a value the encoding cannot carry. */
    static byte[] encode(Frame frame) {
        Out out = new Out(HEADER + bodySize(frame));
        int type = switch (frame) {
            case Hello h -> HELLO;
            case Welcome w -> WELCOME;
            case Call c -> CALL;
            case Return r -> RETURN;
            case Error e -> ERROR;
            case Cancel c -> CANCEL;
            case Close c -> CLOSE;
        };
        GuestProcess process = frame instanceof Call c ? c.process() : null;
        out.u8(type).u8(VERSION).u16(process == null ? 0 : F_CALLER).u32(0).u64(frame.id());
        if (process != null) {
            out.u32((int) process.uid()).u32((int) process.gid()).u32((int) process.pid()).str(process.exe(), GuestProcess.MAX_EXE_BYTES);
        }
        switch (frame) {
            case Hello h -> out.u16(h.minVersion()).u16(h.maxVersion()).str(h.peer(), MAX_PEER).bin(h.auth(), MAX_AUTH);
            case Welcome w -> out.u16(w.version()).u16(0).u32(w.maxFrame()).u64(w.session());
            case Call c -> {
                name(c.service());
                name(c.method());
                out.str(c.service(), MAX_NAME).str(c.method(), MAX_NAME);
                if (c.tokens().size() > MAX_TOKENS) {
                    throw new GeminiException(ErrorCode.BAD_ARGS, "at most " + MAX_TOKENS + " tokens per call");
                }
                out.u8(c.tokens().size());
                for (CapabilityToken t : c.tokens()) {
                    out.raw(t.bytes());
                }
                if (c.args().size() > MAX_ARGS) {
                    throw new GeminiException(ErrorCode.BAD_ARGS, "at most " + MAX_ARGS + " arguments per call");
                }
                out.u16(c.args().size());
                for (Object a : c.args()) {
                    out.value(a);
                }
            }
            case Return r -> out.value(r.value());
            case Error e -> out.u16(e.code().wire()).str(clip(e.message()), MAX_MESSAGE);
            case Cancel c -> {
            }
            case Close c -> out.str(clip(c.reason()), MAX_MESSAGE);
        }
        return out.bytes();
    }

    /**
     * The body's size, exact for what {@link #encode} accepts, so a frame with a large argument is
     * written once into an array of the right size instead of grown and copied.
     */
    private static int bodySize(Frame frame) {
        long n = switch (frame) {
            case Call c -> {
                long t = (c.process() == null ? 0 : 16 + utf8(c.process().exe())) + 8 + utf8(c.service()) + utf8(c.method()) + 1 + 16L * c.tokens().size() + 2;
                for (Object a : c.args()) {
                    t += valueSize(a);
                }
                yield t;
            }
            case Return r -> valueSize(r.value());
            default -> 256;
        };
        return (int) Math.min(n, Integer.MAX_VALUE - HEADER - 8);
    }

    private static long valueSize(Object v) {
        return switch (v) {
            case null -> 1;
            case Boolean z -> 2;
            case Integer i -> 5;
            case Short i -> 5;
            case Byte i -> 5;
            case String s -> 5 + utf8(s);
            case byte[] a -> 5L + a.length;
            case Ref r -> 21;
            case CapabilityToken t -> 17;
            default -> 9;
        };
    }

    /** UTF-8 length of {@code s} without encoding it. */
    private static long utf8(String s) {
        long n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                n++;
            } else if (c < 0x800) {
                n += 2;
            } else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                n += 4;
                i++;
            } else {
                n += 3;
            }
        }
        return n;
    }

    /** Messages are for people: cut one that is too long rather than fail the reply. */
    private static String clip(String s) {
        String t = s == null ? "" : s;
        while (t.getBytes(StandardCharsets.UTF_8).length > MAX_MESSAGE) {
            t = t.substring(0, t.length() - Math.max(1, t.length() / 8));
        }
        return t;
    }

    /** Service and method names: 1 to 64 of [A-Za-z0-9_.-]. */
    static String name(String s) {
        if (s == null || s.isEmpty() || s.length() > MAX_NAME) {
            throw new GeminiException(ErrorCode.BAD_ARGS, "a service or method name is 1 to " + MAX_NAME + " characters");
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (!(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-')) {
                throw new GeminiException(ErrorCode.BAD_ARGS, "name '" + s + "' may hold only A-Z a-z 0-9 _ . -");
            }
        }
        return s;
    }

    private static final class Out {
        private ByteBuffer b;

        Out(int capacity) {
            b = ByteBuffer.allocate(capacity).order(ByteOrder.LITTLE_ENDIAN);
        }

        private ByteBuffer room(int n) {
            if (b.remaining() < n) {
                ByteBuffer bigger = ByteBuffer.allocate(Math.max(b.capacity() * 2, b.position() + n)).order(ByteOrder.LITTLE_ENDIAN);
                b.flip();
                bigger.put(b);
                b = bigger;
            }
            return b;
        }

        Out u8(int v) {
            room(1).put((byte) v);
            return this;
        }

        Out u16(int v) {
            room(2).putShort((short) v);
            return this;
        }

        Out u32(int v) {
            room(4).putInt(v);
            return this;
        }

        Out u64(long v) {
            room(8).putLong(v);
            return this;
        }

        Out raw(byte[] v) {
            room(v.length).put(v);
            return this;
        }

        Out str(String s, int max) {
            return bin(s.getBytes(StandardCharsets.UTF_8), max);
        }

        Out bin(byte[] v, int max) {
            if (v.length > max) {
                throw new GeminiException(ErrorCode.BAD_ARGS, "a field of " + v.length + " bytes exceeds its limit of " + max);
            }
            return u32(v.length).raw(v);
        }

        Out value(Object v) {
            switch (v) {
                case null -> u8(T_NULL);
                case Boolean z -> u8(T_BOOL).u8(z ? 1 : 0);
                case Integer i -> u8(T_I32).u32(i);
                case Short s -> u8(T_I32).u32(s);
                case Byte s -> u8(T_I32).u32(s);
                case Long l -> u8(T_I64).u64(l);
                case Double d -> u8(T_F64).u64(Double.doubleToRawLongBits(d));
                case Float f -> u8(T_F64).u64(Double.doubleToRawLongBits(f));
                case String s -> u8(T_STR).str(s, Integer.MAX_VALUE);
                case byte[] a -> u8(T_BYTES).bin(a, Integer.MAX_VALUE);
                case Ref r -> u8(T_REF).u64(r.offset()).u64(r.length()).u32(r.generation());
                case CapabilityToken t -> u8(T_TOKEN).raw(t.bytes());
                default -> throw new GeminiException(ErrorCode.BAD_ARGS, "a " + v.getClass().getName()
                        + " cannot cross the boundary (scalars, String, byte[], Ref and CapabilityToken can)");
            }
            return this;
        }

        byte[] bytes() {
            if (b.position() == b.capacity()) {
                return b.array();
            }
            byte[] r = new byte[b.position()];
            b.flip().get(r);
            return r;
        }
    }

    // ---- decoding ----

    /** The call id of a frame whose header is readable, else 0: where to send the BAD_FRAME reply. */
    static long idOf(byte[] frame, int length) {
        return length >= HEADER ? ByteBuffer.wrap(frame, 8, 8).order(ByteOrder.LITTLE_ENDIAN).getLong() : 0;
    }

    static Frame decode(byte[] frame, int length) {
        if (length < HEADER) {
            throw bad("frame of " + length + " bytes is shorter than the " + HEADER + "-byte header");
        }
        ByteBuffer b = ByteBuffer.wrap(frame, 0, length).order(ByteOrder.LITTLE_ENDIAN);
        int type = b.get() & 0xff;
        int version = b.get() & 0xff;
        int flags = b.getShort() & 0xffff;
        int reserved = b.getInt();
        long id = b.getLong();
        if (version != VERSION) {
            throw bad("frame version " + version + " (this side speaks " + VERSION + ")");
        }
        if ((flags != 0 && (type != CALL || flags != F_CALLER)) || reserved != 0) {
            throw bad("reserved header bytes are not zero");
        }
        try {
            Frame f = switch (type) {
                case HELLO -> new Hello(b.getShort() & 0xffff, b.getShort() & 0xffff, str(b, MAX_PEER), bin(b, MAX_AUTH));
                case WELCOME -> {
                    int v = b.getShort() & 0xffff;
                    if (b.getShort() != 0) {
                        throw bad("WELCOME reserved field is not zero");
                    }
                    yield new Welcome(v, b.getInt(), b.getLong());
                }
                case CALL -> call(b, id, flags == F_CALLER ? process(b) : null);
                case RETURN -> new Return(id, value(b));
                case ERROR -> {
                    int code = b.getShort() & 0xffff;
                    ErrorCode c = ErrorCode.of(code);
                    if (c == null) {
                        throw bad("unknown error code " + code);
                    }
                    yield new Error(id, c, str(b, MAX_MESSAGE));
                }
                case CANCEL -> new Cancel(id);
                case CLOSE -> new Close(str(b, MAX_MESSAGE));
                default -> throw bad("unknown frame type " + type);
            };
            if ((type == HELLO || type == WELCOME || type == CLOSE) && id != 0) {
                throw bad("frame type " + type + " must have id 0");
            }
            if (b.hasRemaining()) {
                throw bad(b.remaining() + " trailing bytes after the frame body");
            }
            return f;
        } catch (BufferUnderflowException e) {
            throw bad("frame of type " + type + " ends early (" + length + " bytes)");
        }
    }

    private static GuestProcess process(ByteBuffer b) {
        long uid = b.getInt() & 0xffffffffL;
        long gid = b.getInt() & 0xffffffffL;
        long pid = b.getInt() & 0xffffffffL;
        String exe = str(b, GuestProcess.MAX_EXE_BYTES);
        if ((!exe.isEmpty() && !exe.startsWith("/")) || exe.indexOf('\0') >= 0) {
            throw bad("a caller's exe must be an absolute path without NUL, or empty");
        }
        return new GuestProcess(uid, gid, pid, exe);
    }

    private static Call call(ByteBuffer b, long id, GuestProcess process) {
        String service = checkName(str(b, MAX_NAME));
        String method = checkName(str(b, MAX_NAME));
        int nt = b.get() & 0xff;
        if (nt > MAX_TOKENS) {
            throw bad(nt + " tokens (at most " + MAX_TOKENS + ")");
        }
        List<CapabilityToken> tokens = new ArrayList<>(nt);
        byte[] t = new byte[16];
        for (int i = 0; i < nt; i++) {
            b.get(t);
            tokens.add(CapabilityToken.of(t, 0));
        }
        int na = b.getShort() & 0xffff;
        if (na > MAX_ARGS) {
            throw bad(na + " arguments (at most " + MAX_ARGS + ")");
        }
        List<Object> args = new ArrayList<>(na);
        for (int i = 0; i < na; i++) {
            args.add(value(b));
        }
        return new Call(id, service, method, List.copyOf(tokens), java.util.Collections.unmodifiableList(args), process);
    }

    private static String checkName(String s) {
        try {
            return name(s);
        } catch (GeminiException e) {
            throw bad(e.reason());
        }
    }

    private static Object value(ByteBuffer b) {
        int tag = b.get() & 0xff;
        return switch (tag) {
            case T_NULL -> null;
            case T_BOOL -> {
                int z = b.get();
                if (z != 0 && z != 1) {
                    throw bad("bool value " + z + " (must be 0 or 1)");
                }
                yield z == 1;
            }
            case T_I32 -> b.getInt();
            case T_I64 -> b.getLong();
            case T_F64 -> Double.longBitsToDouble(b.getLong());
            case T_STR -> str(b, Integer.MAX_VALUE);
            case T_BYTES -> bin(b, Integer.MAX_VALUE);
            case T_REF -> {
                long off = b.getLong();
                long len = b.getLong();
                int gen = b.getInt();
                if (off < 0 || len < 1) {
                    throw bad("reference (" + Long.toUnsignedString(off) + ", " + Long.toUnsignedString(len)
                            + ") needs offset >= 0 and length >= 1");
                }
                yield new Ref(off, len, gen);
            }
            case T_TOKEN -> {
                byte[] t = new byte[16];
                b.get(t);
                yield CapabilityToken.of(t, 0);
            }
            default -> throw bad("unknown value tag " + tag);
        };
    }

    private static byte[] bin(ByteBuffer b, int max) {
        int n = b.getInt();
        if (n < 0 || n > max || n > b.remaining()) {
            throw bad("length " + Integer.toUnsignedString(n) + " exceeds " + (n > max ? "the limit " + max : "the frame"));
        }
        byte[] r = new byte[n];
        b.get(r);
        return r;
    }

    private static String str(ByteBuffer b, int max) {
        byte[] raw = bin(b, max);
        try {
            CharBuffer c = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(raw));
            return c.toString();
        } catch (CharacterCodingException e) {
            throw bad("a string is not valid UTF-8");
        }
    }

    // ---- canonical text (test vectors, gemini:call output) ----

    static String text(Frame f) {
        return switch (f) {
            case Hello h -> "HELLO id=0 version=" + h.minVersion() + ".." + h.maxVersion() + " peer=\"" + h.peer()
                    + "\" auth=" + HexFormat.of().formatHex(h.auth());
            case Welcome w -> "WELCOME id=0 version=" + w.version() + " max_frame=" + Integer.toUnsignedString(w.maxFrame())
                    + " session=" + Long.toUnsignedString(w.session());
            case Call c -> {
                StringBuilder s = new StringBuilder("CALL id=" + Long.toUnsignedString(c.id()) + " service=" + c.service()
                        + " method=" + c.method() + " tokens=[");
                for (int i = 0; i < c.tokens().size(); i++) {
                    s.append(i == 0 ? "" : " ").append(c.tokens().get(i));
                }
                s.append("] args=[");
                for (int i = 0; i < c.args().size(); i++) {
                    s.append(i == 0 ? "" : " ").append(text(c.args().get(i)));
                }
                s.append(']');
                if (c.process() != null) {
                    GuestProcess p = c.process();
                    s.append(" caller=uid:").append(p.uid()).append(",gid:").append(p.gid()).append(",pid:").append(p.pid())
                            .append(",exe:\"").append(p.exe()).append('"');
                }
                yield s.toString();
            }
            case Return r -> "RETURN id=" + Long.toUnsignedString(r.id()) + " value=" + text(r.value());
            case Error e -> "ERROR id=" + Long.toUnsignedString(e.id()) + " code=" + e.code().wire() + " message=\"" + e.message() + "\"";
            case Cancel c -> "CANCEL id=" + Long.toUnsignedString(c.id());
            case Close c -> "CLOSE id=0 reason=\"" + c.reason() + "\"";
        };
    }

    static String text(Object v) {
        return switch (v) {
            case null -> "null";
            case Boolean z -> "bool:" + z;
            case Integer i -> "i32:" + i;
            case Long l -> "i64:" + l;
            case Double d -> "f64:0x" + Long.toHexString(Double.doubleToRawLongBits(d));
            case String s -> "str:\"" + s + "\"";
            case byte[] a -> "bytes:" + HexFormat.of().formatHex(a);
            case Ref r -> "ref:" + r.offset() + "," + r.length() + "," + Integer.toUnsignedString(r.generation());
            case CapabilityToken t -> "token:" + t;
            default -> v.toString();
        };
    }
}
