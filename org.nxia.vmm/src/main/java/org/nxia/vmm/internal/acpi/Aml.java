package org.nxia.vmm.internal.acpi;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Encodes the subset of AML (ACPI 6.3 §20) a DSDT of fixed devices needs:
 * scopes, devices, named objects, strings, integers and buffers. Integers
 * take the shortest encoding (Zero, One, Byte/Word/DWord/QWord prefix), as
 * iasl emits them, so the bytes match a compiled ASL source exactly.
 */
final class Aml {

    static final int ZERO_OP = 0x00;
    static final int ONE_OP = 0x01;
    static final int NAME_OP = 0x08;
    static final int BYTE_PREFIX = 0x0a;
    static final int WORD_PREFIX = 0x0b;
    static final int DWORD_PREFIX = 0x0c;
    static final int STRING_PREFIX = 0x0d;
    static final int QWORD_PREFIX = 0x0e;
    static final int SCOPE_OP = 0x10;
    static final int BUFFER_OP = 0x11;
    static final int PACKAGE_OP = 0x12;
    static final int DUAL_NAME_PREFIX = 0x2e;
    static final int MULTI_NAME_PREFIX = 0x2f;
    static final int EXT_OP_PREFIX = 0x5b;
    static final int DEVICE_OP = 0x82;
    static final int ROOT_CHAR = '\\';
    /** A PkgLength of four bytes holds 28 bits. */
    static final int MAX_PACKAGE = (1 << 28) - 1;

    private Aml() {
    }

    /** {@code Scope (path) { terms }}. */
    static byte[] scope(String path, byte[]... terms) {
        return op(new int[] {SCOPE_OP}, concat(nameString(path), concat(terms)));
    }

    /** {@code Device (name) { terms }}. */
    static byte[] device(String name, byte[]... terms) {
        return op(new int[] {EXT_OP_PREFIX, DEVICE_OP}, concat(nameSeg(name), concat(terms)));
    }

    /** {@code Name (name, value)}. */
    static byte[] name(String name, byte[] value) {
        return concat(new byte[] {NAME_OP}, nameSeg(name), value);
    }

    /** A string constant: printable ASCII, NUL-terminated. */
    static byte[] string(String text) {
        if (!text.chars().allMatch(c -> c >= 0x20 && c <= 0x7e)) {
            throw new IllegalArgumentException("an AML string here holds printable ASCII only: " + text);
        }
        byte[] ascii = text.getBytes(StandardCharsets.US_ASCII);
        byte[] out = new byte[ascii.length + 2];
        out[0] = STRING_PREFIX;
        System.arraycopy(ascii, 0, out, 1, ascii.length);
        return out;
    }

    /** An integer constant in its shortest encoding. */
    static byte[] integer(long value) {
        if (value == 0) {
            return new byte[] {ZERO_OP};
        }
        if (value == 1) {
            return new byte[] {ONE_OP};
        }
        int size = Long.compareUnsigned(value, 0xff) <= 0 ? 1 : Long.compareUnsigned(value, 0xffff) <= 0 ? 2
                : Long.compareUnsigned(value, 0xffff_ffffL) <= 0 ? 4 : 8;
        byte[] out = new byte[1 + size];
        out[0] = (byte) switch (size) {
            case 1 -> BYTE_PREFIX;
            case 2 -> WORD_PREFIX;
            case 4 -> DWORD_PREFIX;
            default -> QWORD_PREFIX;
        };
        for (int i = 0; i < size; i++) {
            out[1 + i] = (byte) (value >>> (8 * i));
        }
        return out;
    }

    /**
     * {@code EisaId ("PNP0501")}: three letters in five bits each, then four
     * hex digits, stored big-endian in a DWord as ACPI 6.3 §6.1.5 packs it.
     */
    static byte[] eisaId(String id) {
        if (!id.matches("[A-Z]{3}[0-9A-F]{4}")) {
            throw new IllegalArgumentException("an EISA id is three capital letters and four hex digits: " + id);
        }
        int vendor = (id.charAt(0) - 0x40) << 10 | (id.charAt(1) - 0x40) << 5 | (id.charAt(2) - 0x40);
        int product = Integer.parseInt(id.substring(3), 16);
        long packed = (vendor >> 8) | (vendor & 0xff) << 8 | (long) (product >> 8) << 16 | (long) (product & 0xff) << 24;
        byte[] out = new byte[5];
        out[0] = DWORD_PREFIX;
        for (int i = 0; i < 4; i++) {
            out[1 + i] = (byte) (packed >>> (8 * i));
        }
        return out;
    }

    /** {@code Package (n) { elements }}: at most 255 elements, each a data object. */
    static byte[] pack(byte[]... elements) {
        if (elements.length > 255) {
            throw new IllegalArgumentException("a Package holds at most 255 elements, not " + elements.length);
        }
        return op(new int[] {PACKAGE_OP}, concat(new byte[] {(byte) elements.length}, concat(elements)));
    }

    /** {@code Buffer (length) { data }}. */
    static byte[] buffer(byte[] data) {
        return op(new int[] {BUFFER_OP}, concat(integer(data.length), data));
    }

    /**
     * The PkgLength that precedes {@code contentLength} bytes: it counts
     * itself, so its own size (1 to 4 bytes) is part of the value.
     */
    static byte[] pkgLength(int contentLength) {
        if (contentLength < 0 || contentLength > MAX_PACKAGE - 4) {
            throw new IllegalArgumentException("an AML package of " + contentLength + " bytes does not fit a PkgLength");
        }
        if (contentLength + 1 < 0x40) {
            return new byte[] {(byte) (contentLength + 1)};
        }
        int extra = contentLength + 2 < 1 << 12 ? 1 : contentLength + 3 < 1 << 20 ? 2 : 3;
        int total = contentLength + 1 + extra;
        byte[] out = new byte[1 + extra];
        out[0] = (byte) (extra << 6 | (total & 0xf));
        for (int i = 0; i < extra; i++) {
            out[1 + i] = (byte) (total >>> (4 + 8 * i));
        }
        return out;
    }

    /**
     * A name path: an optional root {@code \}, then segments joined by dots,
     * each 1 to 4 characters ({@code [A-Z_][A-Z0-9_]*}) padded with {@code _}.
     */
    static byte[] nameString(String path) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        String rest = path;
        if (rest.startsWith("\\")) {
            out.write(ROOT_CHAR);
            rest = rest.substring(1);
        }
        String[] segments = rest.split("\\.", -1);
        if (segments.length == 2) {
            out.write(DUAL_NAME_PREFIX);
        } else if (segments.length > 2) {
            if (segments.length > 255) {
                throw new IllegalArgumentException("an AML name path holds at most 255 segments: " + path);
            }
            out.write(MULTI_NAME_PREFIX);
            out.write(segments.length);
        }
        for (String segment : segments) {
            out.writeBytes(nameSeg(segment));
        }
        return out.toByteArray();
    }

    /** One name segment, padded to four characters with {@code _}. */
    static byte[] nameSeg(String name) {
        if (name.isEmpty() || name.length() > 4 || !name.matches("[A-Z_][A-Z0-9_]*")) {
            throw new IllegalArgumentException("an AML name segment is 1 to 4 characters, [A-Z_][A-Z0-9_]*: '" + name + "'");
        }
        return (name + "___".substring(0, 4 - name.length())).getBytes(StandardCharsets.US_ASCII);
    }

    /** An opcode followed by the PkgLength of {@code content} and the content. */
    private static byte[] op(int[] opcode, byte[] content) {
        byte[] code = new byte[opcode.length];
        for (int i = 0; i < opcode.length; i++) {
            code[i] = (byte) opcode[i];
        }
        return concat(code, pkgLength(content.length), content);
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }
}
