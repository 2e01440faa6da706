package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.control.api.SystemVms;
import org.nxia.vmm.api.LinuxProfile;

/** {@code control:*} against the real agent run as a host process. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ControlCommandsTest {

    @TempDir
    Path dir;

    /** No System VMs: control:vms is tested on KVM (the rig); here it prints only its heading. */
    private static final SystemVms NONE = new SystemVms() {
        @Override
        public SystemVm boot(LinuxProfile profile, Duration readyLimit) {
            throw new UnsupportedOperationException();
        }

        @Override
        public SystemVmSnapshot snapshot(String vmId) {
            throw new UnsupportedOperationException();
        }

        @Override
        public SystemVm restore(SystemVmSnapshot snapshot, Duration readyLimit) {
            throw new UnsupportedOperationException();
        }

        @Override
        public SystemVm clone(SystemVmSnapshot snapshot, org.nxia.vmm.spi.RamFile ram, Duration readyLimit) {
            throw new UnsupportedOperationException();
        }

        @Override
        public List<SystemVm> list() {
            return List.of();
        }

        @Override
        public Optional<SystemVm> find(String vmId) {
            return Optional.empty();
        }
    };

    private final ControlCommands commands = new ControlCommands(new SocketControlConnector(), NONE);
    private final String secret = HexFormat.of().formatHex(AgentProcess.SECRET);

    @Test
    void execPrintsOutputThenErrorsThenTheStatus() throws Exception {
        try (AgentProcess agent = new AgentProcess(dir)) {
            assertEquals("out\nerr\n[exit 3]",
                    commands.exec(agent.socket.toString(), secret, "/bin/sh", "-c", "echo out; echo err >&2; exit 3"));
            assertEquals("[killed by signal 9]", commands.exec(agent.socket.toString(), secret, "/bin/sh", "-c", "kill -9 $$"));
            assertThrows(IllegalArgumentException.class, () -> commands.exec(agent.socket.toString(), secret));
            String wrong = secret.replace('0', '1');
            ControlException e = assertThrows(ControlException.class, () -> commands.exec(agent.socket.toString(), wrong, "true"));
            assertEquals(ControlException.Code.AUTH, e.code());
        }
    }

    @Test
    void benchTimesBothSidesOverTheGivenRuns() throws Exception {
        try (AgentProcess agent = new AgentProcess(dir)) {
            IllegalArgumentException few = assertThrows(IllegalArgumentException.class,
                    () -> commands.bench(9, agent.socket.toString(), secret));
            assertEquals("at least 10 runs", few.getMessage());
            String table = commands.bench(10, agent.socket.toString(), secret);
            String[] lines = table.split("\n");
            assertEquals(3, lines.length, table);
            assertTrue(lines[0].startsWith("exec true, 10 runs"), table);
            Pattern row = Pattern.compile("  (.+?) +(\\d+) +(\\d+)");
            for (int i = 1; i < 3; i++) {
                Matcher m = row.matcher(lines[i]);
                assertTrue(m.matches(), lines[i]);
                long p50 = Long.parseLong(m.group(2)), p99 = Long.parseLong(m.group(3));
                assertTrue(p50 > 0 && p99 >= p50, lines[i]);
            }
            assertTrue(lines[1].startsWith("  through the agent"), table);
            assertTrue(lines[2].startsWith("  host ProcessBuilder (floor)"), table);
        }
    }

    @Test
    void benchPercentilesAreTheNearestRankInMicroseconds() {
        long[] ns = new long[100];
        for (int i = 0; i < 100; i++) {
            ns[i] = (100 - i) * 1000L;  // 100 µs down to 1 µs, unsorted on purpose
        }
        assertEquals(50.0, ControlCommands.micros(ns, 50), "the 50th of 100, not the 51st");
        assertEquals(99.0, ControlCommands.micros(ns, 99));
        assertEquals(1.0, ControlCommands.micros(ns, 1));
        long[] ten = {10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 90_000, 100_000};
        assertEquals(50.0, ControlCommands.micros(ten, 50), "an even count takes the lower middle");
        assertEquals(100.0, ControlCommands.micros(ten, 99), "p99 of 10 runs is the slowest");
        assertEquals(100_000, ns[0], "the caller's samples are not sorted in place");
    }

    @Test
    void vmsWithNoneBootedIsTheHeadingAlone() {
        assertEquals("VM         AGENT            READY (ms)  STATE", commands.vms());
    }

    @Test
    void exitStatusReadsAsItHappened() {
        assertEquals("exit 0", ExitStatus.exited(0).toString());
        assertEquals("killed by signal 15", ExitStatus.killed(15).toString());
        assertTrue(ExitStatus.killed(15).signaled());
        assertEquals(15, ExitStatus.killed(15).code());
    }
}
