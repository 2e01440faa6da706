package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nxia.control.api.Confinement;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ControlException.Code;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.internal.ScriptedAgent.Seen;

/**
 * The host's side of the handshake against a scripted agent: it must refuse an
 * agent that cannot prove the secret or picks another version, and prove
 * itself over fresh nonces each time.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ImpostorAgentTest {

    @TempDir
    Path dir;

    /** How the scripted agent answers HELLO: with this version and a proof made with this secret. */
    private record Script(int version, byte[] secret, boolean ready) {
    }

    private static Seen agent(RawClient ch, Script script) throws IOException {
        return ScriptedAgent.handshake(ch, script.version, script.secret, script.ready ? ScriptedAgent.ready(1, "scripted") : null);
    }

    /** The agent's end of one connection, scripted. */
    private interface Peer {
        Object run(RawClient ch) throws IOException;
    }

    /** The host opens a session with this secret against {@code peer}: the host's outcome, what the peer returned, the host's channel. */
    private Object[] openAgainst(byte[] secret, boolean blocking, Peer peer) throws Exception {
        Path sock = dir.resolve("agent-" + System.nanoTime());
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(sock))) {
            CompletableFuture<Object> seen = CompletableFuture.supplyAsync(() -> {
                try (RawClient ch = new RawClient(server.accept())) {
                    return peer.run(ch);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(sock));
            ch.configureBlocking(blocking);
            Object outcome;
            try {
                outcome = AgentConnection.open(ch, secret, Duration.ofSeconds(20));
            } catch (ControlException e) {
                outcome = e;
            }
            return new Object[] {outcome, seen.get(20, TimeUnit.SECONDS), ch};
        }
    }

    /** One handshake of the host against the scripted agent: the host's outcome and what the agent saw. */
    private Object[] handshake(Script script) throws Exception {
        return openAgainst(AgentProcess.SECRET, true, ch -> agent(ch, script));
    }

    /** The host's failure against a peer that answers HELLO with {@code frame} (a whole frame's bytes). */
    private ControlException refusal(byte[] frame) throws Exception {
        Object[] r = openAgainst(AgentProcess.SECRET, true, ch -> {
            ScriptedAgent.readHello(ch);
            ch.send(frame);
            return ch.read();
        });
        assertNull(r[1], "the host sent nothing after the bad frame");
        assertFalse(((SocketChannel) r[2]).isOpen());
        return assertInstanceOf(ControlException.class, r[0]);
    }

    /** The host's failure against a peer that answers AUTH with {@code frame}. */
    private ControlException readyRefusal(byte[] frame) throws Exception {
        Object[] r = openAgainst(AgentProcess.SECRET, true, ch -> {
            ScriptedAgent.handshake(ch, Wire.VERSION, AgentProcess.SECRET, null);
            ch.send(frame);
            return ch.read();
        });
        assertNull(r[1]);
        assertFalse(((SocketChannel) r[2]).isOpen());
        return assertInstanceOf(ControlException.class, r[0]);
    }

    private static byte[] error(int code, String message) {
        byte[] m = message.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(4 + m.length).order(ByteOrder.LITTLE_ENDIAN).putInt(code).put(m).array();
    }

    @Test
    void aSecretOf16To64BytesIsTakenAndOneOutsideIsRefusedBeforeAnythingIsSent() throws Exception {
        for (int n : new int[] {16, 64}) {
            byte[] secret = new byte[n];
            Arrays.fill(secret, (byte) n);
            Object[] r = openAgainst(secret, true, ch -> ScriptedAgent.handshake(ch, Wire.VERSION, secret, ScriptedAgent.ready(0, "n" + n)));
            try (AgentConnection c = assertInstanceOf(AgentConnection.class, r[0], n + " bytes")) {
                assertEquals("n" + n, c.agent());
            }
        }
        for (int n : new int[] {0, 15, 65}) {
            try (SocketChannel unconnected = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> AgentConnection.open(unconnected, new byte[n], Duration.ofSeconds(20)));
                assertEquals("secret must be 16..64 bytes, not " + n, e.getMessage());
                assertTrue(unconnected.isOpen(), "the caller's channel is left as it was");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 252})
    void aReadyOf4To256BytesNamesTheAgentAndSaysWhetherItIsInit(int nameLength) throws Exception {
        String name = "a".repeat(nameLength);
        int flags = nameLength == 1 ? 3 : 2;    // bit 0 (init) set only for the 1-character name
        Object[] r = openAgainst(AgentProcess.SECRET, true,
                ch -> ScriptedAgent.handshake(ch, Wire.VERSION, AgentProcess.SECRET, ScriptedAgent.ready(flags, name)));
        try (AgentConnection c = assertInstanceOf(AgentConnection.class, r[0])) {
            assertEquals(name, c.agent());
            assertEquals(nameLength == 1, c.agentIsInit());
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 3, 257})
    void aReadyOutside4To256BytesIsRefused(int length) throws Exception {
        ControlException e = readyRefusal(Wire.encode(Wire.READY, 0, new byte[length]));
        assertEquals(Code.PROTOCOL, e.code());
        assertEquals("agent broke the protocol: expected READY, got frame type 0x82", e.getMessage());
    }

    @Test
    void anAnswerToAuthThatIsNeitherReadyNorErrorIsRefused() throws Exception {
        ControlException e = readyRefusal(Wire.encode(Wire.OK, 0, ScriptedAgent.ready(0, "ok")));
        assertEquals(Code.PROTOCOL, e.code());
        assertEquals("agent broke the protocol: expected READY, got frame type 0x90", e.getMessage());
        e = readyRefusal(Wire.encode(Wire.ERROR, 0, error(Code.AUTH.wire(), "no")));
        assertEquals(Code.AUTH, e.code());
        assertEquals("agent: no", e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 67, 69})
    void aHelloReplyOfAnotherLengthIsRefused(int length) throws Exception {
        ControlException e = refusal(Wire.encode(Wire.HELLO_REPLY, 0, new byte[length]));
        assertEquals(Code.PROTOCOL, e.code());
        assertEquals("agent broke the protocol: expected frame type 0x81 of 68 bytes, got type 0x81 of " + length, e.getMessage());
    }

    @Test
    void anotherFrameInPlaceOfTheHelloReplyIsRefused() throws Exception {
        ControlException e = refusal(Wire.encode(Wire.READY, 0, new byte[4 + Wire.NONCE + Wire.MAC]));
        assertEquals(Code.PROTOCOL, e.code());
        assertEquals("agent broke the protocol: expected frame type 0x81 of 68 bytes, got type 0x82 of 68", e.getMessage());
    }

    @Test
    void anErrorInPlaceOfTheHelloReplyCarriesTheAgentsCodeAndMessage() throws Exception {
        ControlException e = refusal(Wire.encode(Wire.ERROR, 0, error(Code.VERSION.wire(), "no common version")));
        assertEquals(Code.VERSION, e.code());
        assertEquals("agent: no common version", e.getMessage());
        e = refusal(Wire.encode(Wire.ERROR, 0, error(Code.QUIESCED.wire(), "")));
        assertEquals(Code.QUIESCED, e.code(), "a 4-byte ERROR is a code with an empty message");
        assertEquals("agent: ", e.getMessage());
        e = refusal(Wire.encode(Wire.ERROR, 0, new byte[] {3, 0, 0}));
        assertEquals(Code.PROTOCOL, e.code());
        assertEquals("agent broke the protocol: ERROR frame of 3 bytes", e.getMessage());
    }

    @Test
    void aNonBlockingChannelIsMadeBlockingSoTheReaderWaitsInsteadOfSpinning() throws Exception {
        Object[] r = openAgainst(AgentProcess.SECRET, false,
                ch -> ScriptedAgent.handshake(ch, Wire.VERSION, AgentProcess.SECRET, ScriptedAgent.ready(0, "x")));
        try (AgentConnection c = assertInstanceOf(AgentConnection.class, r[0])) {
            assertTrue(((SocketChannel) r[2]).isBlocking());
        }
    }

    @Test
    void anAgentWithoutTheSecretIsRefusedBeforeTheHostProvesItself() throws Exception {
        byte[] other = AgentProcess.SECRET.clone();
        other[0] ^= 1;
        Object[] r = handshake(new Script(Wire.VERSION, other, true));
        ControlException e = (ControlException) r[0];
        assertEquals(Code.AUTH, e.code());
        assertEquals("the agent does not know this VM's secret", e.getMessage());
        assertEquals(null, ((Seen) r[1]).hostProof(), "the host sent no proof an impostor could use");
        assertFalse(((SocketChannel) r[2]).isOpen());
    }

    @Test
    void anAgentThatPicksAnotherVersionIsRefused() throws Exception {
        Object[] r = handshake(new Script(2, AgentProcess.SECRET, true));
        ControlException e = (ControlException) r[0];
        assertEquals(Code.VERSION, e.code());
        assertTrue(e.getMessage().contains("version 2"), e.getMessage());
        assertFalse(((SocketChannel) r[2]).isOpen());
    }

    @Test
    void theHostProvesItselfOverBothNoncesAndNeverReusesOne() throws Exception {
        Object[] first = handshake(new Script(Wire.VERSION, AgentProcess.SECRET, true));
        Object[] second = handshake(new Script(Wire.VERSION, AgentProcess.SECRET, true));
        for (Object[] r : new Object[][] {first, second}) {
            try (AgentConnection c = (AgentConnection) r[0]) {
                Seen s = (Seen) r[1];
                assertArrayEquals(Wire.proof(AgentProcess.SECRET, false, s.agentNonce(), s.hostNonce()), s.hostProof());
            }
        }
        byte[] a = ((Seen) first[1]).hostNonce(), b = ((Seen) second[1]).hostNonce();
        assertFalse(Arrays.equals(a, b), "a fresh host nonce per handshake");
        assertFalse(Arrays.equals(a, new byte[Wire.NONCE]), "a random nonce, not zeros");
    }

    /** DENIED reports come from the untrusted agent: a flood is logged up to a bound, a misplaced one ends the session. */
    @Test
    void denialReportsAreBoundedAndCheckedLikeEveryFrame() throws Exception {
        Path sock = dir.resolve("agent-denied");
        java.util.logging.Logger audit = java.util.logging.Logger.getLogger("org.nxia.control.audit");
        List<String> logged = new CopyOnWriteArrayList<>();
        java.util.logging.Handler h = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                logged.add(r.getMessage());
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        audit.addHandler(h);
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(sock))) {
            CompletableFuture<Void> peer = CompletableFuture.runAsync(() -> {
                try (RawClient ch = new RawClient(server.accept())) {
                    agent(ch, new Script(Wire.VERSION, AgentProcess.SECRET, true));
                    ByteBuffer denied = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(41).putInt(77);
                    // first program: started, 150 denials, exit 1
                    Wire.Frame exec = ch.read();
                    ch.send(Wire.encode(Wire.STARTED, exec.id(), new byte[] {77, 0, 0, 0}));
                    for (int i = 0; i < 150; i++)
                        ch.send(Wire.encode(Wire.DENIED, exec.id(), denied.array()));
                    ch.send(Wire.encode(Wire.EXIT, exec.id(), new byte[] {0, 0, 0, 0, 1, 0, 0, 0}));
                    // second program: a DENIED before STARTED (after the first one's end of stdin)
                    do
                        exec = ch.read();
                    while (exec.type() != Wire.EXEC);
                    ch.send(Wire.encode(Wire.DENIED, exec.id(), denied.array()));
                    ch.read();
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            try (AgentConnection c = AgentConnection.open(SocketChannel.open(UnixDomainSocketAddress.of(sock)),
                    AgentProcess.SECRET, Duration.ofSeconds(20))) {
                ExecRequest confined = ExecRequest.of("x").withConfinement(Confinement.NONE.denying(41));
                assertEquals(ExitStatus.exited(1), c.exec(confined).status());
                List<String> denials = logged.stream().filter(l -> l.contains("was denied syscall 41")).toList();
                assertEquals(AgentConnection.MAX_DENIALS_LOGGED, denials.size());
                assertTrue(denials.getLast().endsWith("further denials of this program are not logged"), denials.getLast());
                ControlException e = assertThrows(ControlException.class, () -> c.exec(confined));
                String why = "";
                for (Throwable t = e; t != null; t = t.getCause())
                    why += t.getMessage() + " / ";
                assertTrue(why.contains("agent broke the protocol: bad DENIED for"), why);
            }
            peer.get(20, TimeUnit.SECONDS);
        } finally {
            audit.removeHandler(h);
        }
    }
}
