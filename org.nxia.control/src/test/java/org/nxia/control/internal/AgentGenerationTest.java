package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ControlException.Code;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.Generation;

/**
 * RESUME as a new generation, against the real agent (a host process, its own per test: each
 * changes its secret): a clone of a snapshot gets a secret and a seed of its own, and the agent
 * refuses a generation it has seen, or half an identity.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AgentGenerationTest {

    static final SecureRandom RANDOM = new SecureRandom();

    @TempDir
    Path dir;

    @Test
    void aNewGenerationTakesANewSecretAndKeepsTheSessionThatGaveIt() throws Exception {
        try (AgentProcess agent = new AgentProcess(dir); AgentSession s = agent.session()) {
            Generation g = Generation.fresh(1, RANDOM);
            s.quiesce();
            s.resume(g);
            assertEquals(ExitStatus.exited(0), s.exec("true").status(), "resumed: new work is taken, on this session");
            ControlException old = assertThrows(ControlException.class,
                    () -> new SocketControlConnector().connect(agent.socket, AgentProcess.SECRET));
            assertEquals(Code.AUTH, old.code(), "the old secret no longer opens a session");
            try (AgentSession again = new SocketControlConnector().connect(agent.socket, g.secret())) {
                assertEquals("ok\n", again.exec("echo", "ok").stdoutText());
            }
        }
    }

    @Test
    void aGenerationThatIsNotLaterIsRefusedAndChangesNothing() throws Exception {
        try (AgentProcess agent = new AgentProcess(dir); AgentSession s = agent.session()) {
            Generation two = Generation.fresh(2, RANDOM);
            s.resume(two);
            for (long n : new long[] {2, 1}) {
                Generation replay = Generation.fresh(n, RANDOM);
                ControlException e = assertThrows(ControlException.class, () -> s.resume(replay));
                assertEquals(Code.PROTOCOL, e.code());
                assertTrue(e.getMessage().contains("generation " + n + " is not after this agent's 2"), e.getMessage());
                assertThrows(ControlException.class, () -> new SocketControlConnector().connect(agent.socket, replay.secret()),
                        "a refused generation's secret opens nothing");
            }
            try (AgentSession again = new SocketControlConnector().connect(agent.socket, two.secret())) {
                assertEquals(ExitStatus.exited(0), again.exec("true").status(), "generation 2's secret still holds");
            }
            s.resume(Generation.fresh(3, RANDOM));   // a later one is taken
        }
    }

    @Test
    void halfAnIdentityOrABadFieldIsRefusedAndTheAgentStaysQuiesced() throws Exception {
        byte[] gen = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(5).array();
        byte[] seed = new byte[64];
        byte[] secret = new byte[32];
        byte[][] bad = {
            new Wire.Fields().put(Wire.T_GENERATION, gen).bytes(),
            new Wire.Fields().put(Wire.T_GENERATION, gen).put(Wire.T_SEED, seed).bytes(),
            new Wire.Fields().put(Wire.T_SEED, seed).put(Wire.T_SECRET, secret).bytes(),
            new Wire.Fields().put(Wire.T_GENERATION, gen).put(Wire.T_SEED, new byte[31]).put(Wire.T_SECRET, secret).bytes(),
            new Wire.Fields().put(Wire.T_GENERATION, gen).put(Wire.T_SEED, new byte[257]).put(Wire.T_SECRET, secret).bytes(),
            new Wire.Fields().put(Wire.T_GENERATION, gen).put(Wire.T_SEED, seed).put(Wire.T_SECRET, new byte[15]).bytes(),
            new Wire.Fields().put(Wire.T_GENERATION, gen).put(Wire.T_SEED, seed).put(Wire.T_SECRET, new byte[65]).bytes(),
            new Wire.Fields().put(Wire.T_GENERATION, new byte[4]).put(Wire.T_SEED, seed).put(Wire.T_SECRET, secret).bytes(),
            new Wire.Fields().put(Wire.T_GENERATION, gen).put(Wire.T_GENERATION, gen).put(Wire.T_SEED, seed)
                    .put(Wire.T_SECRET, secret).bytes(),
            new Wire.Fields().put(Wire.T_ARG, "x").bytes(),
            {Wire.T_SEED, 64, 0, 0, 0, 1, 2, 3},   // a field longer than the payload
        };
        try (AgentProcess agent = new AgentProcess(dir)) {
            try (RawClient c = new RawClient(agent.channel())) {
                c.handshake(AgentProcess.SECRET);
                c.send(Wire.QUIESCE, 1, new byte[0]);
                assertEquals(Wire.OK, c.read().type());
                int id = 2;
                for (byte[] payload : bad) {
                    c.send(Wire.RESUME, id, payload);
                    Wire.Frame f = c.read();
                    assertEquals(Wire.ERROR, f.type(), "refused: payload of " + payload.length + " bytes");
                    assertEquals(Code.PROTOCOL.wire(), RawClient.errorCode(f));
                    assertEquals(id++, f.id());
                }
                c.send(Wire.EXEC, id, new Wire.Fields().put(Wire.T_ARG, "true").bytes());
                Wire.Frame f = c.read();
                assertEquals(Code.QUIESCED.wire(), RawClient.errorCode(f), "no refused RESUME resumed the agent");
            }
            try (AgentSession s = agent.session()) {
                assertFalse(s.agent().isEmpty(), "the first secret still holds after every refusal");
            }
        }
    }

    @Test
    void aGenerationChecksItsPartsAndNeverShowsThem() {
        assertThrows(IllegalArgumentException.class, () -> new Generation(0, new byte[64], new byte[32]));
        assertThrows(IllegalArgumentException.class, () -> new Generation(1, new byte[31], new byte[32]));
        assertThrows(IllegalArgumentException.class, () -> new Generation(1, new byte[257], new byte[32]));
        assertThrows(IllegalArgumentException.class, () -> new Generation(1, new byte[64], new byte[15]));
        assertThrows(IllegalArgumentException.class, () -> new Generation(1, new byte[64], new byte[65]));
        byte[] secret = new byte[32];
        Generation g = new Generation(7, new byte[32], secret);
        secret[0] = 9;
        assertEquals(0, g.secret()[0], "the record keeps its own copy");
        g.secret()[1] = 9;
        assertArrayEquals(new byte[32], g.secret(), "and hands out copies");
        assertEquals("Generation[7]", g.toString());
        Generation a = Generation.fresh(1, RANDOM);
        Generation b = Generation.fresh(1, RANDOM);
        assertFalse(java.util.Arrays.equals(a.secret(), b.secret()), "fresh generations differ");
        assertFalse(java.util.Arrays.equals(a.seed(), b.seed()));
        assertEquals(64, a.seed().length);
        assertEquals(32, a.secret().length);
    }
}
