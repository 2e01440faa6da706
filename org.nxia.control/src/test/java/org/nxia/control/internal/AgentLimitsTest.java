package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

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

/** Each bound of the agent (docs/limits.md) driven past, with a fresh agent: what happens at it, and that it serves on. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AgentLimitsTest {

    @TempDir
    Path dir;

    @Test
    void theSixtyFifthProgramIsRefusedAndTheFirstSixtyFourRun() throws Exception {
        try (AgentProcess p = new AgentProcess(dir); AgentSession s = p.session()) {
            List<Execution> running = new ArrayList<>();
            for (int i = 0; i < 64; i++)
                running.add(s.start(ExecRequest.of("sleep", "60"), (err, d, off, len) -> { }));
            ControlException e = assertThrows(ControlException.class, () -> s.exec("true"));
            assertEquals(Code.SYSTEM, e.code());
            assertTrue(e.getMessage().contains("too many running programs (64)"), e.getMessage());
            running.getFirst().signal(9);
            assertEquals(ExitStatus.killed(9), running.getFirst().exit().get(30, TimeUnit.SECONDS));
            assertEquals(ExitStatus.exited(0), s.exec("true").status(), "a freed slot is usable again");
        }
    }

    @Test
    void stdinQueuedPastOneMebibyteIsRefusedForThatProgramOnly() throws Exception {
        try (AgentProcess p = new AgentProcess(dir); AgentSession s = p.session()) {
            Execution x = s.start(ExecRequest.of("sleep", "60"), (err, d, off, len) -> { });    // never reads
            x.write(new byte[3 << 20]);
            ExecutionException e = assertThrows(ExecutionException.class, () -> x.exit().get(30, TimeUnit.SECONDS));
            assertEquals(Code.PROTOCOL, assertInstanceOf(ControlException.class, e.getCause()).code());
            assertTrue(e.getCause().getMessage().contains("more than 1048576 bytes of stdin queued"), e.getCause().getMessage());
            assertEquals(ExitStatus.exited(0), s.exec("true").status());
        }
    }

    @Test
    void argumentsAndVariablesPerProgramAreBounded() throws Exception {
        try (AgentProcess p = new AgentProcess(dir); AgentSession s = p.session()) {
            List<String> argv = new ArrayList<>(List.of("true"));
            for (int i = 1; i < 256; i++)
                argv.add("a" + i);
            assertEquals(ExitStatus.exited(0), s.exec(new ExecRequest(argv, Map.of(), null, null)).status(), "256 arguments");
            argv.add("one-too-many");
            ControlException e = assertThrows(ControlException.class, () -> s.exec(new ExecRequest(argv, Map.of(), null, null)));
            assertEquals(Code.PROTOCOL, e.code());
            Map<String, String> env = new LinkedHashMap<>();
            for (int i = 0; i < 129; i++)
                env.put("V" + i, "x");
            e = assertThrows(ControlException.class, () -> s.exec(new ExecRequest(List.of("true"), env, null, null)));
            assertEquals(Code.PROTOCOL, e.code());
        }
    }

    @Test
    void configuredVariablesAreBoundedAndNoneIsDroppedSilently() throws Exception {
        try (AgentProcess p = new AgentProcess(dir); AgentSession s = p.session()) {
            Map<String, String> env = new HashMap<>();
            for (int i = 0; i < 128; i++)
                env.put("V" + i, "x");
            s.configure(new GuestConfig(null, env, List.of()));
            s.configure(new GuestConfig(null, Map.of("V7", "replaced"), List.of()));    // an existing key still changes
            ControlException e = assertThrows(ControlException.class,
                    () -> s.configure(new GuestConfig(null, Map.of("ONE_MORE", "x"), List.of())));
            assertEquals(Code.PROTOCOL, e.code());
            assertTrue(e.getMessage().contains("more than 128 variables"), e.getMessage());
            assertEquals("replaced|\n", s.exec("sh", "-c", "echo \"$V7|$ONE_MORE\"").stdoutText());
        }
    }

    @Test
    void outputPastTheHostsLimitIsCutAndSaidSo() throws Exception {
        try (AgentProcess p = new AgentProcess(dir); AgentSession s = p.session()) {
            ExecResult r = s.exec("head", "-c", String.valueOf(ExecResult.OUTPUT_LIMIT + 100_000), "/dev/zero");
            assertEquals(ExitStatus.exited(0), r.status());
            assertEquals(ExecResult.OUTPUT_LIMIT, r.stdout().length);
            assertTrue(r.truncated());
        }
    }
}
