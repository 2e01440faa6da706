package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import org.nxia.control.api.Confinement;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ControlException.Code;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExitStatus;

/**
 * The host's side of the handshake against a scripted agent: it must refuse an
 * agent that cannot prove the secret or picks another version, and prove
 * itself over fresh nonces each time.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ImpostorAgentTest {

    @TempDir
    Path dir;

    /** What the scripted agent saw of one handshake. */
    record Seen(byte[] hostNonce, byte[] hostProof, byte[] agentNonce) {
    }

    /** How the scripted agent answers HELLO: with this version and a proof made with this secret. */
    private record Script(int version, byte[] secret, boolean ready) {
    }

    private static Wire.Frame readFrame(SocketChannel ch) throws IOException {
        ByteBuffer in = ByteBuffer.allocate(4 + Wire.MAX_BODY);
        in.flip();
        while (true) {
            int size = Wire.scan(in, false);
            if (size > 0) {
                return Wire.take(in, size);
            }
            in.compact();
            if (ch.read(in) < 0) {
                return null;
            }
            in.flip();
        }
    }

    private static Seen agent(SocketChannel ch, Script script) throws IOException {
        Wire.Frame hello = readFrame(ch);
        assertEquals(Wire.HELLO, hello.type());
        ByteBuffer hb = hello.body();
        assertEquals(Wire.VERSION, hb.getShort());
        assertEquals(Wire.VERSION, hb.getShort());
        byte[] hostNonce = new byte[Wire.NONCE];
        hb.get(hostNonce);
        byte[] agentNonce = new byte[Wire.NONCE];
        Arrays.fill(agentNonce, (byte) 0x5a);
        ByteBuffer reply = ByteBuffer.allocate(4 + Wire.NONCE + Wire.MAC).order(ByteOrder.LITTLE_ENDIAN);
        reply.putShort((short) script.version).putShort((short) 0).put(agentNonce)
                .put(Wire.proof(script.secret, true, hostNonce, agentNonce));
        ch.write(ByteBuffer.wrap(Wire.encode(Wire.HELLO_REPLY, 0, reply.array())));
        Wire.Frame auth = readFrame(ch);
        if (auth == null) {
            return new Seen(hostNonce, null, agentNonce);
        }
        assertEquals(Wire.AUTH, auth.type());
        if (script.ready) {
            byte[] ident = "scripted".getBytes(StandardCharsets.UTF_8);
            ByteBuffer ready = ByteBuffer.allocate(4 + ident.length).order(ByteOrder.LITTLE_ENDIAN).putInt(1).put(ident);
            ch.write(ByteBuffer.wrap(Wire.encode(Wire.READY, 0, ready.array())));
        }
        return new Seen(hostNonce, auth.payload(), agentNonce);
    }

    /** One handshake of the host against the scripted agent: the host's outcome and what the agent saw. */
    private Object[] handshake(Script script) throws Exception {
        Path sock = dir.resolve("agent-" + System.nanoTime());
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(sock))) {
            CompletableFuture<Seen> seen = CompletableFuture.supplyAsync(() -> {
                try (SocketChannel peer = server.accept()) {
                    return agent(peer, script);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(sock));
            Object outcome;
            try {
                outcome = AgentConnection.open(ch, AgentProcess.SECRET, Duration.ofSeconds(20));
            } catch (ControlException e) {
                outcome = e;
            }
            return new Object[] {outcome, seen.get(20, TimeUnit.SECONDS), ch};
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
                try (SocketChannel ch = server.accept()) {
                    agent(ch, new Script(Wire.VERSION, AgentProcess.SECRET, true));
                    ByteBuffer denied = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(41).putInt(77);
                    // first program: started, 150 denials, exit 1
                    Wire.Frame exec = readFrame(ch);
                    ch.write(ByteBuffer.wrap(Wire.encode(Wire.STARTED, exec.id(), new byte[] {77, 0, 0, 0})));
                    for (int i = 0; i < 150; i++)
                        ch.write(ByteBuffer.wrap(Wire.encode(Wire.DENIED, exec.id(), denied.array())));
                    ch.write(ByteBuffer.wrap(Wire.encode(Wire.EXIT, exec.id(), new byte[] {0, 0, 0, 0, 1, 0, 0, 0})));
                    // second program: a DENIED before STARTED (after the first one's end of stdin)
                    do
                        exec = readFrame(ch);
                    while (exec.type() != Wire.EXEC);
                    ch.write(ByteBuffer.wrap(Wire.encode(Wire.DENIED, exec.id(), denied.array())));
                    readFrame(ch);
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
