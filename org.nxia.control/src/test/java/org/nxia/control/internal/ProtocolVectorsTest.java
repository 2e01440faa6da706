package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.control.api.Confinement;

/**
 * The host's side of docs/control-protocol-vectors.txt (the agent runs the same
 * file in make -C guest/agent check): every line must encode, decode and be
 * judged exactly as written.
 */
class ProtocolVectorsTest {

    private static final HexFormat HEX = HexFormat.of();

    @Test
    void everyVectorEncodesDecodesAndIsJudgedAsWritten() throws IOException {
        Path file = Path.of(System.getProperty("nxia.control.vectors", "../docs/control-protocol-vectors.txt"));
        byte[] secret = null, hostNonce = null, agentNonce = null;
        int checked = 0;
        List<String> kinds = new ArrayList<>();
        for (String raw : Files.readAllLines(file)) {
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#"))
                continue;
            String[] t = line.split("\\s+");
            String where = file.getFileName() + ": " + line;
            kinds.add(t[0]);
            switch (t[0]) {
                case "secret" -> secret = HEX.parseHex(t[1]);
                case "host-nonce" -> hostNonce = HEX.parseHex(t[1]);
                case "agent-nonce" -> agentNonce = HEX.parseHex(t[1]);
                case "hmac" -> assertEquals(t[3], HEX.formatHex(Wire.hmac(HEX.parseHex(t[1]), HEX.parseHex(t[2]))), where);
                case "proof" -> {
                    boolean agent = t[1].equals("agent");
                    byte[] mac = agent ? Wire.proof(secret, true, hostNonce, agentNonce)
                            : Wire.proof(secret, false, agentNonce, hostNonce);
                    assertEquals(t[2], HEX.formatHex(mac), where);
                }
                case "frame" -> {
                    int type = Integer.decode(t[2]), id = Integer.parseInt(t[3]);
                    byte[] payload = t[4].equals("-") ? new byte[0] : HEX.parseHex(t[4]);
                    assertEquals(t[5], HEX.formatHex(Wire.encode(type, id, payload)), where);
                    ByteBuffer b = ByteBuffer.wrap(HEX.parseHex(t[5]));
                    Wire.Frame f = Wire.take(b, Wire.scan(b, true));
                    assertEquals(type, f.type(), where);
                    assertEquals(id, f.id(), where);
                    assertArrayEquals(payload, f.payload(), where);
                }
                case "exec", "configure" -> {
                    int id = Integer.parseInt(t[2]);
                    Wire.Fields fields = new Wire.Fields();
                    List<String> want = Arrays.asList(t).subList(4, t.length);
                    for (String field : want)
                        put(fields, field);
                    int type = t[0].equals("exec") ? Wire.EXEC : Wire.CONFIGURE;
                    assertEquals(t[3], HEX.formatHex(Wire.encode(type, id, fields.bytes())), where);
                    ByteBuffer b = ByteBuffer.wrap(HEX.parseHex(t[3]));
                    Wire.Frame f = Wire.take(b, Wire.scan(b, true));
                    List<Wire.Field> got = Wire.fields(f.payload());
                    assertNotNull(got, where);
                    assertEquals(want, got.stream().map(ProtocolVectorsTest::describe).toList(), where);
                }
                case "reject" -> assertEquals(-Integer.parseInt(t[3]), Wire.scan(ByteBuffer.wrap(HEX.parseHex(t[2])), true), where);
                default -> throw new AssertionError("cannot read " + where);
            }
            checked++;
        }
        assertTrue(checked > 30 && kinds.containsAll(List.of("hmac", "proof", "frame", "exec", "configure", "reject")),
                "the vectors file looks incomplete: " + checked + " lines");
    }

    private static void put(Wire.Fields fields, String field) {
        int eq = field.indexOf('=');
        String key = field.substring(0, eq), value = unescape(field.substring(eq + 1));
        switch (key) {
            case "arg" -> fields.put(Wire.T_ARG, value);
            case "env" -> fields.put(Wire.T_ENV, value);
            case "cwd" -> fields.put(Wire.T_CWD, value);
            case "hostname" -> fields.put(Wire.T_HOSTNAME, value);
            case "mount" -> fields.put(Wire.T_MOUNT, value.replace('|', '\0'));
            case "fs" -> {
                int colon = value.indexOf(':');
                Confinement.PathRule r = Confinement.PathRule.of(value.substring(colon + 1), bitsToRwx(Integer.parseInt(value.substring(0, colon))));
                Wire.putConfinement(fields, Confinement.paths(r));
            }
            case "unshare" -> fields.put(Wire.T_UNSHARE, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN)
                    .putInt(Integer.parseInt(value)).array());
            case "deny" -> Wire.putConfinement(fields, new Confinement(List.of(),
                    java.util.Arrays.stream(value.split(",")).map(Integer::valueOf).collect(java.util.stream.Collectors.toSet())));
            case "pty" -> {
                String[] rc = value.split("x");
                fields.put(Wire.T_PTY, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN)
                        .putShort(Short.parseShort(rc[0])).putShort(Short.parseShort(rc[1])).array());
            }
            default -> throw new AssertionError("unknown field " + field);
        }
    }

    /** The inverse of put: a decoded field written as the vectors file writes it. */
    private static String describe(Wire.Field f) {
        String s = new String(f.value(), StandardCharsets.UTF_8);
        return switch (f.tag()) {
            case Wire.T_ARG -> "arg=" + escape(s);
            case Wire.T_ENV -> "env=" + escape(s);
            case Wire.T_CWD -> "cwd=" + escape(s);
            case Wire.T_HOSTNAME -> "hostname=" + escape(s);
            case Wire.T_MOUNT -> "mount=" + escape(s).replace('\0', '|');
            case Wire.T_PTY -> {
                ByteBuffer b = ByteBuffer.wrap(f.value()).order(ByteOrder.LITTLE_ENDIAN);
                yield "pty=" + b.getShort() + "x" + b.getShort();
            }
            case Wire.T_FS_RULE -> {
                ByteBuffer b = ByteBuffer.wrap(f.value()).order(ByteOrder.LITTLE_ENDIAN);
                yield "fs=" + b.getInt() + ":" + escape(new String(f.value(), 4, f.value().length - 4, StandardCharsets.UTF_8));
            }
            case Wire.T_UNSHARE -> "unshare=" + ByteBuffer.wrap(f.value()).order(ByteOrder.LITTLE_ENDIAN).getInt();
            case Wire.T_DENY_SYSCALLS -> {
                ByteBuffer b = ByteBuffer.wrap(f.value()).order(ByteOrder.LITTLE_ENDIAN);
                StringBuilder d = new StringBuilder("deny=");
                while (b.hasRemaining())
                    d.append(d.length() > 5 ? "," : "").append(b.getInt());
                yield d.toString();
            }
            default -> "tag" + f.tag();
        };
    }

    private static String bitsToRwx(int bits) {
        return ((bits & 1) != 0 ? "r" : "") + ((bits & 2) != 0 ? "w" : "") + ((bits & 4) != 0 ? "x" : "");
    }

    private static String escape(String s) {
        return s.replace("%", "%25").replace(" ", "%20").replace("|", "%7c");
    }

    private static String unescape(String s) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) == '%' && i + 2 < s.length()) {
                out.append((char) Integer.parseInt(s.substring(i + 1, i + 3), 16));
                i += 2;
            } else {
                out.append(s.charAt(i));
            }
        }
        return out.toString();
    }
}
