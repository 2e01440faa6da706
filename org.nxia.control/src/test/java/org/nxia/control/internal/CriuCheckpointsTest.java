package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.Execution;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.OutputSink;

/**
 * The host end of process checkpoints against the real agent run on the host, where there is no
 * usable CRIU: what is tested here is everything around it (the file written only when whole, the
 * errors, the upload in pieces, the bound); the rig's RootfsTest checkpoints and restores for real.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CriuCheckpointsTest {

    @TempDir
    static Path dir;
    static AgentProcess agent;
    private final CriuCheckpoints checkpoints = new CriuCheckpoints();

    @BeforeAll
    static void startAgent() throws Exception {
        agent = new AgentProcess(dir);
    }

    @AfterAll
    static void stopAgent() throws Exception {
        agent.close();
    }

    @Test
    void aProcessThatDoesNotExistIsRefusedAndAnEarlierFileStaysAsItWas() throws Exception {
        Path file = Files.writeString(dir.resolve("old.ckpt"), "an earlier checkpoint");
        try (AgentSession s = agent.session()) {
            ControlException e = assertThrows(ControlException.class,
                    () -> checkpoints.checkpoint(s, 999_999_999, file, false, Duration.ofSeconds(30)));
            assertEquals(ControlException.Code.SYSTEM, e.code());
            assertTrue(e.getMessage().contains("no process 999999999"), e.getMessage());
        }
        assertEquals("an earlier checkpoint", Files.readString(file));
        try (Stream<Path> left = Files.list(dir)) {
            assertFalse(left.anyMatch(p -> p.getFileName().toString().endsWith(".partial")), "no partial file is left behind");
        }
        assertThrows(IllegalArgumentException.class, () -> checkpoints.checkpoint(null, 1, file, false, Duration.ofSeconds(1)),
                "init is not checkpointed");
    }

    @Test
    void whereCriuFailsTheErrorSaysSoAndNoFileIsWritten() throws Exception {
        Path file = dir.resolve("never.ckpt");
        try (AgentSession s = agent.session()) {
            Execution sleeper = s.start(ExecRequest.of("sleep", "30"), (e, d, o, l) -> { });
            ControlException e = assertThrows(ControlException.class,
                    () -> checkpoints.checkpoint(s, sleeper.pid(), file, true, Duration.ofSeconds(30)));
            assertTrue(e.getMessage().contains("criu dump failed"), e.getMessage());
            sleeper.signal(9);
        }
        assertFalse(Files.exists(file));
    }

    @Test
    void aFileThatIsNoCheckpointIsRefusedByTheGuestsTar() throws Exception {
        Path garbage = Files.write(dir.resolve("garbage.ckpt"), new byte[] {1, 2, 3});
        Captured out = new Captured();
        try (AgentSession s = agent.session()) {
            ExitStatus st = checkpoints.restore(s, garbage, out).exit().get(60, TimeUnit.SECONDS);
            assertEquals(ExitStatus.exited(3), st);
        }
        assertTrue(out.stderr().contains("not a checkpoint"), out.stderr());
    }

    @Test
    void aCheckpointLargerThanOnePieceArrivesWholeBeforeCriuIsAsked() throws Exception {
        // a gzip'd tar of 1.5 MiB of noise (three upload pieces) and the stdio map: the guest's tar
        // takes it whole, so what fails is CRIU (absent here), not the upload
        Path content = Files.createDirectories(dir.resolve("images"));
        byte[] noise = new byte[3 << 19];
        new Random(14).nextBytes(noise);
        Files.write(content.resolve("pages-1.img"), noise);
        Files.writeString(content.resolve("nxia-stdio"), "0 pipe:[1]\n1 pipe:[2]\n2 /dev/null\n");
        Path file = dir.resolve("big.ckpt");
        Process tar = new ProcessBuilder("tar", "-C", content.toString(), "-czf", file.toString(), ".").inheritIO().start();
        assertEquals(0, tar.waitFor());
        assertTrue(Files.size(file) > 2L * CriuCheckpoints.UPLOAD_PIECE, "more than two pieces: " + Files.size(file));
        Captured out = new Captured();
        try (AgentSession s = agent.session()) {
            ExitStatus st = checkpoints.restore(s, file, out).exit().get(60, TimeUnit.SECONDS);
            assertNotEquals(0, st.code());
        }
        assertFalse(out.stderr().contains("not a checkpoint"), "the upload arrived whole: " + out.stderr());
        assertTrue(out.stderr().contains("criu"), "what failed is criu: " + out.stderr());
    }

    @Test
    void theDumpsOutputIsBoundedAndItsStderrKept() throws Exception {
        Path file = dir.resolve("bounded");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            CriuCheckpoints.ToFile sink = new CriuCheckpoints.ToFile(ch, 10);
            sink.output(false, "0123456789".getBytes(StandardCharsets.US_ASCII), 0, 10);
            sink.output(true, "criu says".getBytes(StandardCharsets.US_ASCII), 0, 9);
            assertEquals(null, sink.failure);
            sink.output(false, "x".getBytes(StandardCharsets.US_ASCII), 0, 1);
            assertNotNull(sink.failure);
            assertTrue(sink.failure.getMessage().contains("grew past 10 bytes"), sink.failure.getMessage());
            sink.output(false, "more".getBytes(StandardCharsets.US_ASCII), 0, 4);
            assertEquals(10, sink.bytes);
            assertEquals("criu says", sink.diagnostic());
            byte[] flood = new byte[CriuCheckpoints.MAX_DIAGNOSTIC * 2];
            sink.output(true, flood, 0, flood.length);
            assertEquals(CriuCheckpoints.MAX_DIAGNOSTIC, sink.diagnostic().getBytes(StandardCharsets.UTF_8).length,
                    "stderr is kept up to its bound");
        }
        assertArrayEquals("0123456789".getBytes(StandardCharsets.US_ASCII), Files.readAllBytes(file));
    }

    /** Output of a program, kept. */
    private static final class Captured implements OutputSink {
        private final ByteArrayOutputStream stderr = new ByteArrayOutputStream();

        @Override
        public synchronized void output(boolean isStderr, byte[] data, int offset, int length) {
            if (isStderr) {
                stderr.write(data, offset, length);
            }
        }

        synchronized String stderr() {
            return stderr.toString(StandardCharsets.UTF_8);
        }
    }
}
