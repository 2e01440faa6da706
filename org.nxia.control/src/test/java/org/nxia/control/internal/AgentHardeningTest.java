package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ControlException.Code;
import org.nxia.control.api.ExitStatus;

/**
 * The real agent binary against a hostile world: no valid secret (it must
 * refuse everyone, not authenticate with an empty key), a secret file (read,
 * then erased), and clients that connect and say nothing (they must neither
 * keep a slot past the handshake deadline nor lock the host out).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AgentHardeningTest {

    private static final String GOOD = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";  // AgentProcess.SECRET

    /** Every connection gets ERROR AUTH at its first frame and is closed; the agent lives on. */
    private static void assertRefusesEveryone(AgentProcess p) throws IOException {
        for (int i = 0; i < 3; i++) {
            try (RawClient c = new RawClient(p.channel())) {
                c.hello(1, 1);
                Wire.Frame f = c.read();
                assertEquals(Wire.ERROR, f.type(), "an agent without a valid secret answered HELLO");
                assertEquals(Code.AUTH.wire(), RawClient.errorCode(f));
                assertNull(c.read());
            }
            // The proof anyone can compute: HMAC over the empty key (= 64 zero bytes).
            try (RawClient c = new RawClient(p.channel())) {
                c.send(Wire.AUTH, 0, Wire.proof(new byte[64], false, new byte[Wire.NONCE], c.hostNonce));
                Wire.Frame f = c.read();
                assertEquals(Wire.ERROR, f.type());
                assertEquals(Code.AUTH.wire(), RawClient.errorCode(f));
            }
            ControlException e = assertThrows(ControlException.class,
                    () -> new SocketControlConnector().connect(p.socket, AgentProcess.SECRET));
            assertEquals(Code.AUTH, e.code());
        }
        assertTrue(p.process.isAlive(), "the agent exited instead of refusing");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "abc", "0011223344556677", "zz0102030405060708090a0b0c0d0e0f", "0102030405060708090a0b0c0d0e0f1g",
            GOOD + GOOD + "00"})
    void aMalformedSecretRefusesEveryConnection(String hex, @TempDir Path dir) throws Exception {
        Path file = Files.writeString(dir.resolve("secret"), hex + "\n");
        try (AgentProcess p = new AgentProcess(dir, List.of(), List.of("--secret-file", file.toString()))) {
            assertRefusesEveryone(p);
            assertFalse(Files.exists(file), "the secret file was left behind");
        }
    }

    @Test
    void aMissingSecretFileRefusesEveryConnection(@TempDir Path dir) throws Exception {
        try (AgentProcess p = new AgentProcess(dir, List.of(), List.of("--secret-file", dir.resolve("none").toString()))) {
            assertRefusesEveryone(p);
        }
    }

    @Test
    void aMalformedSecretOnTheCommandLineRefusesEveryConnection(@TempDir Path dir) throws Exception {
        try (AgentProcess p = new AgentProcess(dir, List.of(), List.of("--secret", GOOD.substring(1)))) {
            assertRefusesEveryone(p);
        }
    }

    /** As PID 1 (in a user + PID namespace) with no /etc/nxia/secret: what a VM booted without one gets. */
    @Test
    void asInitWithoutASecretItRefusesEveryConnection() throws Exception {
        assumeTrue(AgentAsInitTest.namespacesWork(), "unshare --user --pid is not allowed here");
        assumeTrue(!Files.exists(Path.of("/etc/nxia/secret")), "this host has an /etc/nxia/secret");
        Path dir = AgentAsInitTest.privateDir();
        try (AgentProcess p = new AgentProcess(dir, AgentAsInitTest.UNSHARE, List.of())) {
            assertRefusesEveryone(p);
        } finally {
            AgentAsInitTest.deleteTree(dir);
        }
    }

    @Test
    void theTestSecretIsAgentProcesss() {
        assertEquals(GOOD, java.util.HexFormat.of().formatHex(AgentProcess.SECRET));
    }

    @Test
    void theSecretFileIsReadThenErased(@TempDir Path dir) throws Exception {
        Path file = Files.writeString(dir.resolve("secret"), GOOD + "\n");
        try (AgentProcess p = new AgentProcess(dir, List.of(), List.of("--secret-file", file.toString()))) {
            assertFalse(Files.exists(file), "the secret file is still there");
            try (AgentSession s = p.session()) {
                assertEquals(ExitStatus.exited(0), s.exec("true").status());
            }
            // Not in the agent's own command line either.
            String cmdline = Files.readString(Path.of("/proc/" + p.process.pid() + "/cmdline"));
            assertFalse(cmdline.contains(GOOD));
        }
    }

    @Test
    void theSecretIsBlankedInTheAgentsArguments(@TempDir Path dir) throws Exception {
        try (AgentProcess p = new AgentProcess(dir)) {
            String cmdline = Files.readString(Path.of("/proc/" + p.process.pid() + "/cmdline"));
            assertTrue(cmdline.contains("--secret"), cmdline);
            assertFalse(cmdline.contains(GOOD), "the secret is readable in /proc/PID/cmdline");
        }
    }

    private static long fds(Process p) throws IOException {
        try (var list = Files.list(Path.of("/proc/" + p.pid() + "/fd"))) {
            return list.count();
        }
    }

    @Test
    void silentClientsInEverySlotDoNotLockTheHostOut(@TempDir Path dir) throws Exception {
        try (AgentProcess p = new AgentProcess(dir)) {
            long before = fds(p.process), peak;
            List<RawClient> silent = new ArrayList<>();
            try {
                for (int i = 0; i < 2 * 16; i++)
                    silent.add(new RawClient(p.channel()));
                long start = System.nanoTime();
                try (AgentSession s = p.session()) {
                    assertEquals(ExitStatus.exited(0), s.exec("true").status());
                    // The program's pipes and a connection accepted but not yet given a slot (the
                    // oldest handshake is evicted right after) are transient: give a loaded host a moment.
                    peak = fds(p.process);
                    for (int i = 0; i < 100 && peak > before + 16; i++) {
                        Thread.sleep(20);
                        peak = fds(p.process);
                    }
                }
                assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "the host waited for a slot");
            } finally {
                for (RawClient c : silent)
                    c.close();
            }
            long after = fds(p.process);
            for (int i = 0; i < 100 && after > before; i++) {
                Thread.sleep(20);
                after = fds(p.process);
            }
            System.out.printf("agent fds with 32 silent clients: %d -> %d -> %d%n", before, peak, after);
            assertTrue(peak <= before + 16, "more than 16 connections held: " + peak);
            assertEquals(before, after, "fds left after every client went");
        }
    }

    @Test
    void aSilentClientIsClosedAtTheHandshakeDeadline(@TempDir Path dir) throws Exception {
        try (AgentProcess p = new AgentProcess(dir); RawClient c = new RawClient(p.channel())) {
            long start = System.nanoTime();
            Wire.Frame f = c.read();
            long waited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertEquals(Wire.ERROR, f.type());
            assertEquals(Code.PROTOCOL.wire(), RawClient.errorCode(f));
            assertNull(c.read(), "still open after the deadline");
            assertTrue(waited > 9_000 && waited < 20_000, "closed after " + waited + " ms, not at 10 s");
            // An authenticated session has no such deadline.
            try (AgentSession s = p.session()) {
                Thread.sleep(100);
                assertEquals(ExitStatus.exited(0), s.exec("true").status());
            }
        }
    }
}
