package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The agent's side of the handshake by hand (RawClient frames the bytes), to
 * send the host what a correct agent never would.
 */
final class ScriptedAgent {

    /** What the scripted agent saw of one handshake; hostProof is null when the host hung up instead of AUTH. */
    record Seen(byte[] hostNonce, byte[] hostProof, byte[] agentNonce) {
    }

    private ScriptedAgent() {
    }

    /** READY's payload: u32 flags (bit 0: the agent is PID 1), then the agent's name. */
    static byte[] ready(int flags, String ident) {
        byte[] name = ident.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(4 + name.length).order(ByteOrder.LITTLE_ENDIAN).putInt(flags).put(name).array();
    }

    /** HELLO_REPLY's payload: this version, the agent's nonce and its proof made with this secret. */
    static byte[] helloReply(int version, byte[] secret, byte[] hostNonce, byte[] agentNonce) {
        return ByteBuffer.allocate(4 + Wire.NONCE + Wire.MAC).order(ByteOrder.LITTLE_ENDIAN)
                .putShort((short) version).putShort((short) 0).put(agentNonce)
                .put(Wire.proof(secret, true, hostNonce, agentNonce)).array();
    }

    /** Reads the host's HELLO and returns its nonce. */
    static byte[] readHello(RawClient ch) throws IOException {
        Wire.Frame hello = ch.read();
        assertEquals(Wire.HELLO, hello.type());
        ByteBuffer hb = hello.body();
        assertEquals(Wire.VERSION, hb.getShort());
        assertEquals(Wire.VERSION, hb.getShort());
        byte[] hostNonce = new byte[Wire.NONCE];
        hb.get(hostNonce);
        return hostNonce;
    }

    /**
     * Answers HELLO with this version and a proof made with this secret, then
     * AUTH with READY carrying {@code ready} (null: no READY).
     */
    static Seen handshake(RawClient ch, int version, byte[] secret, byte[] ready) throws IOException {
        byte[] hostNonce = readHello(ch);
        byte[] agentNonce = new byte[Wire.NONCE];
        Arrays.fill(agentNonce, (byte) 0x5a);
        ch.send(Wire.HELLO_REPLY, 0, helloReply(version, secret, hostNonce, agentNonce));
        Wire.Frame auth = ch.read();
        if (auth == null)
            return new Seen(hostNonce, null, agentNonce);
        assertEquals(Wire.AUTH, auth.type());
        if (ready != null)
            ch.send(Wire.READY, 0, ready);
        return new Seen(hostNonce, auth.payload(), agentNonce);
    }
}
