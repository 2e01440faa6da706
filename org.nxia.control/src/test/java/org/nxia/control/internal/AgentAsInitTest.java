package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ControlException.Code;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.GuestConfig;

/**
 * The agent as PID 1 without a VM: the init of a new user + PID namespace
 * (unshare), serving on a Unix socket. Skipped where user namespaces are off.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AgentAsInitTest {

    static final List<String> UNSHARE = List.of("unshare", "--user", "--map-root-user", "--pid", "--uts", "--fork", "--kill-child",
            "--mount-proc");

    static boolean namespacesWork() {
        try {
            Process p = new ProcessBuilder(concat(UNSHARE, "true")).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    private static List<String> concat(List<String> a, String b) {
        return Stream.concat(a.stream(), Stream.of(b)).toList();
    }

    /**
     * A directory for the agent's socket, not under /tmp or /run: as PID 1 the agent mounts fresh tmpfs
     * there in its namespace, hiding the socket (a checkout may itself live under /tmp).
     */
    static Path privateDir() throws IOException {
        Path base = Path.of("target").toAbsolutePath();
        if (base.startsWith("/tmp") || base.startsWith("/run")) {
            base = Files.createDirectories(Path.of(System.getProperty("user.home"), ".cache", "nxia", "agent-test"));
        }
        return Files.createTempDirectory(base, "agent-init").toAbsolutePath();
    }

    static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path f : files.sorted(Comparator.reverseOrder()).toList())
                Files.delete(f);
        }
    }

    @Test
    void asInitItReapsOrphansConfiguresAndPowersOff() throws Exception {
        assumeTrue(namespacesWork(), "unshare --user --pid is not allowed here");
        Path dir = privateDir();
        try (AgentProcess p = new AgentProcess(dir, UNSHARE); AgentSession s = p.session()) {
            assertTrue(s.agentIsInit());
            assertEquals("1\n", s.exec("sh", "-c", "echo $PPID").stdoutText());

            // The shell exits at once; its background child is left to PID 1 to reap.
            String orphan = s.exec("sh", "-c", "sleep 0.2 & echo $!").stdoutText().strip();
            ExecResult gone = null;
            for (int i = 0; i < 100; i++) {
                gone = s.exec("test", "-e", "/proc/" + orphan);
                if (gone.status().code() != 0)
                    break;
                Thread.sleep(50);
            }
            assertEquals(ExitStatus.exited(1), gone.status(), "orphan " + orphan + " still in /proc (a zombie)");

            // configure in the namespace: its own hostname, a tmpfs under the test's directory
            Path mnt = dir.resolve("mnt/scratch");
            s.configure(new GuestConfig("nxia-test", Map.of("LANG", "C"),
                    List.of(new GuestConfig.Mount("none", mnt.toString(), "tmpfs", "size=1m,nosuid"))));
            ExecResult r = s.exec("sh", "-c", "hostname; echo $LANG; grep -c ' " + mnt + " tmpfs rw,nosuid' /proc/mounts");
            assertEquals("nxia-test\nC\n1\n", r.stdoutText(), r.stderrText());
            ControlException bad = assertThrows(ControlException.class, () -> s.configure(new GuestConfig(null, Map.of(),
                    List.of(new GuestConfig.Mount("none", dir.resolve("mnt/bad").toString(), "no-such-fs", "")))));
            assertEquals(Code.SYSTEM, bad.code());

            s.shutdown();
            // In a PID namespace, reboot(RB_POWER_OFF) ends its init with SIGINT.
            assertTrue(p.process.waitFor(10, TimeUnit.SECONDS), "the agent did not power off");
        } finally {
            deleteTree(dir);
        }
    }
}
