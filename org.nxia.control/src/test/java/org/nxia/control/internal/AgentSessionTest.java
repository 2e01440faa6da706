package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ControlException.Code;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.Execution;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.GuestConfig;

/** The host end against the real nxia-agent binary, run as a host process over a Unix socket. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AgentSessionTest {

    @TempDir
    static Path dir;
    static AgentProcess agent;

    @BeforeAll
    static void startAgent() throws Exception {
        agent = new AgentProcess(dir);
    }

    @AfterAll
    static void stopAgent() throws Exception {
        agent.close();
    }

    /** The agent still serves a fresh, correct connection. */
    private static void assertAgentServes() throws IOException {
        try (AgentSession s = agent.session()) {
            assertEquals(ExitStatus.exited(0), s.exec("true").status());
        }
    }

    @Test
    void handshakeNamesTheAgent() throws IOException {
        try (AgentSession s = agent.session()) {
            assertEquals("nxia-agent 0.1", s.agent());
            assertFalse(s.agentIsInit());
        }
    }

    @Test
    void execTrueExitsZeroWithNoOutput() throws IOException {
        try (AgentSession s = agent.session()) {
            ExecResult r = s.exec("true");
            assertEquals(ExitStatus.exited(0), r.status());
            assertEquals(0, r.stdout().length + r.stderr().length);
        }
    }

    @Test
    void shellOutputAndExitStatus() throws IOException {
        try (AgentSession s = agent.session()) {
            ExecResult r = s.exec("sh", "-c", "echo hi; echo oops >&2; exit 3");
            assertEquals(ExitStatus.exited(3), r.status());
            assertEquals("hi\n", r.stdoutText());
            assertEquals("oops\n", r.stderrText());
            assertFalse(r.truncated());
        }
    }

    @Test
    void stdinIsPipedThrough() throws Exception {
        try (AgentSession s = agent.session()) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            Execution x = s.start(ExecRequest.of("cat"), (err, d, off, len) -> {
                synchronized (out) {
                    out.write(d, off, len);
                }
            });
            assertTrue(x.pid() > 0);
            byte[] big = new byte[200_000];    // over one frame and over a pipe's buffer
            Arrays.fill(big, (byte) 'x');
            x.write("hello\n".getBytes(StandardCharsets.UTF_8));
            x.write(big);
            x.closeStdin();
            assertEquals(ExitStatus.exited(0), x.exit().get(30, TimeUnit.SECONDS));
            synchronized (out) {
                byte[] got = out.toByteArray();
                assertEquals(6 + big.length, got.length);
                assertEquals("hello\n", new String(got, 0, 6, StandardCharsets.UTF_8));
            }
        }
    }

    @Test
    void missingProgramIsAClearErrorAndTheSessionGoesOn() throws IOException {
        try (AgentSession s = agent.session()) {
            ControlException e = assertThrows(ControlException.class, () -> s.exec("/no/such/program"));
            assertEquals(Code.EXEC, e.code());
            assertTrue(e.getMessage().contains("/no/such/program") && e.getMessage().contains("No such file"), e.getMessage());
            ControlException cwd = assertThrows(ControlException.class, () -> s.exec(ExecRequest.of("true").withCwd("/no/such/dir")));
            assertEquals(Code.EXEC, cwd.code());
            assertEquals(ExitStatus.exited(0), s.exec("true").status());
        }
    }

    @Test
    void envAndCwdReachTheProgram() throws IOException {
        try (AgentSession s = agent.session()) {
            s.configure(new GuestConfig(null, Map.of("FROM_CONFIG", "c"), List.of()));
            ExecResult r = s.exec(ExecRequest.of("sh", "-c", "echo $A $FROM_CONFIG; pwd").withEnv("A", "x y").withCwd("/"));
            assertEquals("x y c\n/\n", r.stdoutText());
        }
    }

    @Test
    void signalKillsTheProgramsGroup() throws Exception {
        try (AgentSession s = agent.session()) {
            Execution x = s.start(ExecRequest.of("sh", "-c", "sleep 30; echo not reached"), (err, d, o, l) -> { });
            x.signal(15);
            assertEquals(ExitStatus.killed(15), x.exit().get(10, TimeUnit.SECONDS));
            ControlException e = assertThrows(ControlException.class, () -> x.signal(15));
            assertEquals(Code.NO_SUCH_ID, e.code());
        }
    }

    @Test
    void ptyGivesATerminalOfTheAskedSize() throws IOException {
        try (AgentSession s = agent.session()) {
            ExecResult r = s.exec(ExecRequest.of("sh", "-c", "tty; stty size").withPty(33, 111));
            assertEquals(ExitStatus.exited(0), r.status());
            assertTrue(r.stdoutText().startsWith("/dev/pts/"), r.stdoutText());
            assertTrue(r.stdoutText().contains("33 111"), r.stdoutText());
        }
    }

    @Test
    void ptyResizesAndEndsInputWithControlD() throws Exception {
        try (AgentSession s = agent.session()) {
            StringBuilder out = new StringBuilder();
            Execution x = s.start(ExecRequest.of("sh", "-c", "read line; stty size; cat").withPty(24, 80), (err, d, o, l) -> {
                synchronized (out) {
                    out.append(new String(d, o, l, StandardCharsets.UTF_8));
                }
            });
            x.resize(40, 100);
            x.write("go\n".getBytes(StandardCharsets.UTF_8));
            x.closeStdin();    // ^D: cat sees the end of its input
            assertEquals(ExitStatus.exited(0), x.exit().get(10, TimeUnit.SECONDS));
            synchronized (out) {
                assertTrue(out.toString().contains("40 100"), out.toString());
            }
        }
    }

    @Test
    void quiesceRefusesNewWorkUntilResume() throws IOException {
        try (AgentSession s = agent.session()) {
            s.quiesce();
            try {
                ControlException e = assertThrows(ControlException.class, () -> s.exec("true"));
                assertEquals(Code.QUIESCED, e.code());
            } finally {
                s.resume();
            }
            assertEquals(ExitStatus.exited(0), s.exec("true").status());
        }
    }

    @Test
    void programsRunConcurrentlyOnOneSessionAndAcrossSessions() throws Exception {
        try (AgentSession a = agent.session(); AgentSession b = agent.session()) {
            Execution slow = a.start(ExecRequest.of("sh", "-c", "read line; echo got $line"), (err, d, o, l) -> { });
            assertEquals("fast\n", a.exec("echo", "fast").stdoutText());
            assertEquals("other\n", b.exec("echo", "other").stdoutText());
            slow.write("go\n".getBytes(StandardCharsets.UTF_8));
            assertEquals(ExitStatus.exited(0), slow.exit().get(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void wrongSecretFailsBothWays() throws IOException {
        byte[] wrong = AgentProcess.SECRET.clone();
        wrong[0] ^= 1;
        // The host notices first: the agent's proof does not match.
        ControlException e = assertThrows(ControlException.class,
                () -> new SocketControlConnector().connect(agent.socket, wrong));
        assertEquals(Code.AUTH, e.code());
        // A host that ignores that and answers with its own wrong proof is refused by the agent.
        try (RawClient c = new RawClient(agent.channel())) {
            Wire.Frame f = c.handshake(wrong);
            assertEquals(Wire.ERROR, f.type());
            assertEquals(Code.AUTH.wire(), RawClient.errorCode(f));
            assertNull(c.read(), "connection closed after a failed authentication");
        }
        assertAgentServes();
    }

    @Test
    void nothingButHelloAndAuthBeforeAuthentication() throws IOException {
        try (RawClient c = new RawClient(agent.channel())) {
            c.send(Wire.EXEC, 1, new Wire.Fields().put(Wire.T_ARG, "true").bytes());
            Wire.Frame f = c.read();
            assertEquals(Wire.ERROR, f.type());
            assertEquals(Code.PROTOCOL.wire(), RawClient.errorCode(f));
            assertNull(c.read());
        }
        assertAgentServes();
    }

    @Test
    void unknownVersionIsRefused() throws IOException {
        try (RawClient c = new RawClient(agent.channel())) {
            c.hello(2, 7);
            Wire.Frame f = c.read();
            assertEquals(Wire.ERROR, f.type());
            assertEquals(Code.VERSION.wire(), RawClient.errorCode(f));
            assertNull(c.read());
        }
        assertAgentServes();
    }

    @Test
    void truncatedFrameIsReported() throws IOException {
        try (RawClient c = new RawClient(agent.channel())) {
            byte[] hello = Wire.encode(Wire.HELLO, 0, new byte[4 + Wire.NONCE]);
            c.send(Arrays.copyOf(hello, 20));
            c.ch.shutdownOutput();
            Wire.Frame f = c.read();
            assertEquals(Wire.ERROR, f.type());
            assertEquals(Code.TRUNCATED.wire(), RawClient.errorCode(f));
            assertNull(c.read());
        }
        assertAgentServes();
    }

    @Test
    void oversizedFrameIsRefusedBeforeItsBodyArrives() throws IOException {
        try (RawClient c = new RawClient(agent.channel())) {
            assertEquals(Wire.READY, c.handshake(AgentProcess.SECRET).type());
            c.send(ByteBuffer.allocate(Wire.HEADER).order(ByteOrder.LITTLE_ENDIAN)
                    .putInt(Wire.MAX_BODY + 1).putShort((short) Wire.EXEC).putShort((short) 0).putInt(5).array());
            Wire.Frame f = c.read();
            assertEquals(Wire.ERROR, f.type());
            assertEquals(5, f.id());
            assertEquals(Code.TOO_BIG.wire(), RawClient.errorCode(f));
            assertNull(c.read());
        }
        assertAgentServes();
    }

    @Test
    void malformedRequestsGetErrorsAndTheConnectionGoesOn() throws IOException {
        try (RawClient c = new RawClient(agent.channel())) {
            assertEquals(Wire.READY, c.handshake(AgentProcess.SECRET).type());
            c.send(0x7f, 3, new byte[0]);
            assertEquals(Code.UNKNOWN_TYPE.wire(), RawClient.errorCode(c.read()));
            c.send(Wire.EXEC, 4, new byte[] {Wire.T_ARG, (byte) 0xff, (byte) 0xff, 0, 0, 'x'});
            assertEquals(Code.PROTOCOL.wire(), RawClient.errorCode(c.read()));
            c.send(Wire.EXEC, 5, new byte[0]);
            assertEquals(Code.PROTOCOL.wire(), RawClient.errorCode(c.read()));
            c.send(Wire.SIGNAL, 6, new byte[3]);
            assertEquals(Code.PROTOCOL.wire(), RawClient.errorCode(c.read()));
            c.send(Wire.EXEC, 7, new Wire.Fields().put(Wire.T_ARG, "true").bytes());
            assertEquals(Wire.STARTED, c.read().type());
            assertEquals(Wire.EXIT, c.read().type());
        }
    }

    @Test
    void shutdownEndsTheAgentProcess(@TempDir Path own) throws Exception {
        try (AgentProcess p = new AgentProcess(own); AgentSession s = p.session()) {
            s.shutdown();
            assertTrue(p.process.waitFor(10, TimeUnit.SECONDS));
            assertEquals(0, p.process.exitValue());
        }
    }

    @Test
    void closingASessionEndsItsPrograms() throws Exception {
        Execution x;
        try (AgentSession s = agent.session()) {
            x = s.start(ExecRequest.of("sleep", "30"), (err, d, o, l) -> { });
        }
        Throwable e = assertThrows(ExecutionException.class, () -> x.exit().get()).getCause();
        assertEquals(Code.SESSION, assertInstanceOf(ControlException.class, e).code());
        // The agent killed it: no sleep 30 of that pid is left.
        try (AgentSession s = agent.session()) {
            for (int i = 0; i < 50 && s.exec("kill", "-0", Integer.toString(x.pid())).status().code() == 0; i++)
                Thread.sleep(20);
            assertEquals(1, s.exec("kill", "-0", Integer.toString(x.pid())).status().code());
        }
    }

    @Test
    void hostRefusesAnAgentThatBreaksTheProtocol(@TempDir Path own) throws Exception {
        // A fake agent that answers HELLO with an oversized frame: guest input is hostile.
        Path sock = own.resolve("fake.sock");
        try (var server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(sock));
            Thread fake = Thread.ofVirtual().start(() -> {
                try (var ch = server.accept()) {
                    ch.read(ByteBuffer.allocate(64));
                    ch.write(ByteBuffer.wrap(ByteBuffer.allocate(Wire.HEADER).order(ByteOrder.LITTLE_ENDIAN)
                            .putInt(Integer.MAX_VALUE).putShort((short) Wire.HELLO_REPLY).putShort((short) 0).putInt(0).array()));
                    ch.read(ByteBuffer.allocate(64));
                } catch (IOException ignored) {
                    // the host hung up, as it should
                }
            });
            ControlException e = assertThrows(ControlException.class,
                    () -> new SocketControlConnector().connect(sock, AgentProcess.SECRET));
            assertEquals(Code.TOO_BIG, e.code());
            fake.join(5000);
        }
    }

    @Test
    void randomBytesNeverBringTheAgentDown() throws IOException {
        Random random = new Random(42);
        for (int round = 0; round < 300; round++) {
            try (RawClient c = new RawClient(agent.channel())) {
                if (round % 2 == 1)
                    assertEquals(Wire.READY, c.handshake(AgentProcess.SECRET).type());
                // Mostly well-framed garbage (so payload parsers see it), sometimes raw noise.
                for (int i = 0; i < 8; i++) {
                    byte[] payload = new byte[random.nextInt(64)];
                    random.nextBytes(payload);
                    if (random.nextInt(4) == 0) {
                        c.send(payload);
                    } else {
                        int type = round % 3 == 0 ? 0x10 + random.nextInt(8) : random.nextInt(0x100);
                        // No valid EXEC (random programs are not run), no CONFIGURE (the
                        // agent runs on the test host, maybe as root), and no SHUTDOWN or
                        // QUIESCE (the agent is shared with the other tests).
                        if (type == Wire.EXEC)
                            payload = new byte[] {Wire.T_ARG, 1, 0, 0, 0, 0};
                        if (type == Wire.CONFIGURE || type == Wire.SHUTDOWN || type == Wire.QUIESCE)
                            type = 0x7f;
                        c.send(type, random.nextInt(4), payload);
                    }
                }
                c.ch.shutdownOutput();
                while (c.read() != null) {
                    // drain whatever it answers until it closes
                }
            } catch (IOException expected) {
                // the agent may refuse a frame by closing; only its survival counts here
            }
        }
        assertAgentServes();
    }
}
