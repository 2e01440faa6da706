package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

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

    /** A host session opened against a scripted agent, and the agent's end of it after the handshake. */
    record Pair(AgentConnection host, RawClient agent) implements AutoCloseable {
        @Override
        public void close() throws IOException {
            host.close();
            agent.close();
        }
    }

    /** Opens a host session against a scripted agent listening in {@code dir} that completes the handshake. */
    static Pair connect(Path dir) throws Exception {
        Path sock = dir.resolve("scripted-" + System.nanoTime() + ".sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(sock))) {
            CompletableFuture<RawClient> peer = CompletableFuture.supplyAsync(() -> {
                try {
                    RawClient ch = new RawClient(server.accept());
                    handshake(ch, Wire.VERSION, AgentProcess.SECRET, ready(0, "scripted"));
                    return ch;
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            AgentConnection host = AgentConnection.open(SocketChannel.open(UnixDomainSocketAddress.of(sock)), AgentProcess.SECRET,
                    Duration.ofSeconds(20));
            return new Pair(host, peer.get(20, TimeUnit.SECONDS));
        }
    }

    interface IoCall<T> {
        T run() throws Exception;
    }

    /** Runs a host call that waits for the scripted agent on another thread. */
    static <T> CompletableFuture<T> async(IoCall<T> call) {
        CompletableFuture<T> f = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try {
                f.complete(call.run());
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        return f;
    }
}
