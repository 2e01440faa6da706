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

    // ---- against a scripted agent: what the host asks and does with each answer -------------

    private static byte[] u32s(int... values) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * values.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int v : values)
            b.putInt(v);
        return b.array();
    }

    /** The next frame the host sent, which must be of this type. */
    private static Wire.Frame expect(RawClient agent, int type) throws java.io.IOException {
        Wire.Frame f = agent.read();
        assertNotNull(f, "the host hung up");
        assertEquals(type, f.type(), "frame type");
        return f;
    }

    /** An EXEC's arguments. */
    private static java.util.List<String> argv(Wire.Frame exec) {
        return Wire.fields(exec.payload()).stream().filter(f -> f.tag() == Wire.T_ARG)
                .map(f -> new String(f.value(), StandardCharsets.UTF_8)).toList();
    }

    @Test
    void aCheckpointIsTheDumpsStdoutWrittenWholeAndSaysWhatItTook(@TempDir Path own) throws Exception {
        for (boolean leaveRunning : new boolean[] {true, false}) {
            Path file = own.resolve("c-" + leaveRunning + ".ckpt");
            try (ScriptedAgent.Pair p = ScriptedAgent.connect(own)) {
                long before = System.nanoTime();
                var call = ScriptedAgent.async(() -> checkpoints.checkpoint(p.host(), 2, file, leaveRunning, Duration.ofSeconds(60)));
                Wire.Frame exec = expect(p.agent(), Wire.EXEC);
                java.util.List<String> argv = argv(exec);
                assertEquals(java.util.List.of("sh", "-c", CriuCheckpoints.DUMP, "nxia-checkpoint", "2", leaveRunning ? "--leave-running" : ""), argv);
                p.agent().send(Wire.STARTED, exec.id(), u32s(100));
                p.agent().send(Wire.STDOUT, exec.id(), "tar ".getBytes(StandardCharsets.US_ASCII));
                p.agent().send(Wire.STDERR, exec.id(), "a warning".getBytes(StandardCharsets.US_ASCII));
                Thread.sleep(500);    // past a poll of the exit: nothing abandons a dump that is well
                p.agent().send(Wire.STDOUT, exec.id(), "bytes".getBytes(StandardCharsets.US_ASCII));
                p.agent().send(Wire.EXIT, exec.id(), u32s(0, 0));
                var made = call.get(30, TimeUnit.SECONDS);
                long took = System.nanoTime() - before;
                assertEquals("tar bytes", Files.readString(file));
                assertEquals(file.toAbsolutePath(), made.file());
                assertEquals(9, made.bytes());
                assertEquals(2, made.pid());
                assertTrue(!made.took().isNegative() && made.took().toNanos() <= took, made.took() + " of " + took + " ns");
                var quiesce = ScriptedAgent.async(() -> {
                    p.host().quiesce();
                    return null;
                });
                p.agent().send(Wire.OK, expect(p.agent(), Wire.QUIESCE).id(), new byte[0]);    // no SIGNAL came first
                quiesce.get(30, TimeUnit.SECONDS);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> checkpoints.checkpoint(null, 1, own.resolve("x"), false, Duration.ofSeconds(1)));
    }

    @Test
    void aDumpThatFailsOrIsKilledOrLostLeavesNoFile(@TempDir Path own) throws Exception {
        Path file = own.resolve("failed.ckpt");
        int[][] exits = {{0, 3}, {1, 9}, {-1, -1}};    // exited 3, killed by 9, an ERROR from the agent
        for (int[] exit : exits) {
            try (ScriptedAgent.Pair p = ScriptedAgent.connect(own)) {
                var call = ScriptedAgent.async(() -> checkpoints.checkpoint(p.host(), 42, file, false, Duration.ofSeconds(60)));
                Wire.Frame exec = expect(p.agent(), Wire.EXEC);
                p.agent().send(Wire.STARTED, exec.id(), u32s(100));
                p.agent().send(Wire.STDOUT, exec.id(), "part".getBytes(StandardCharsets.US_ASCII));
                p.agent().send(Wire.STDERR, exec.id(), "criu dump failed: no\n".getBytes(StandardCharsets.US_ASCII));
                java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class, () -> {
                    if (exit[0] < 0)
                        p.agent().send(Wire.ERROR, exec.id(), u32s(ControlException.Code.SYSTEM.wire()));
                    else
                        p.agent().send(Wire.EXIT, exec.id(), u32s(exit[0], exit[1]));
                    call.get(30, TimeUnit.SECONDS);
                });
                ControlException ce = org.junit.jupiter.api.Assertions.assertInstanceOf(ControlException.class, e.getCause());
                assertEquals(ControlException.Code.SYSTEM, ce.code());
                if (exit[0] >= 0)
                    assertEquals("checkpoint of pid 42 failed (" + (exit[0] == 1 ? ExitStatus.killed(9) : ExitStatus.exited(3))
                            + "): criu dump failed: no", ce.getMessage());
            }
            assertFalse(Files.exists(file));
            try (Stream<Path> left = Files.list(own)) {
                assertFalse(left.anyMatch(f -> f.getFileName().toString().endsWith(".partial")), "no partial file is left behind");
            }
        }
    }

    @Test
    void aDumpPastItsLimitIsKilledAndAbandoned(@TempDir Path own) throws Exception {
        Path file = own.resolve("late.ckpt");
        try (ScriptedAgent.Pair p = ScriptedAgent.connect(own)) {
            var call = ScriptedAgent.async(() -> checkpoints.checkpoint(p.host(), 42, file, false, Duration.ofMillis(300)));
            Wire.Frame exec = expect(p.agent(), Wire.EXEC);
            p.agent().send(Wire.STARTED, exec.id(), u32s(100));
            Wire.Frame signal = expect(p.agent(), Wire.SIGNAL);    // the agent says nothing more: the host gives up
            assertArrayEquals(u32s(exec.id(), 9), signal.payload());
            p.agent().send(Wire.OK, signal.id(), new byte[0]);
            java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> call.get(30, TimeUnit.SECONDS));
            assertEquals("checkpoint of pid 42 took longer than 0 s: abandoned", e.getCause().getMessage());
            assertFalse(e.getCause() instanceof ControlException);
        }
        assertFalse(Files.exists(file));
        try (Stream<Path> left = Files.list(own)) {
            assertFalse(left.anyMatch(f -> f.getFileName().toString().endsWith(".partial")));
        }
    }

    @Test
    void aFileOfAtMostTheLargestCheckpointIsUploadedAndALargerOneRefused(@TempDir Path own) throws Exception {
        Path largest = own.resolve("largest.ckpt");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(largest.toFile(), "rw")) {
            f.setLength(CriuCheckpoints.MAX_CHECKPOINT);    // sparse: no disk for it
        }
        try (ScriptedAgent.Pair p = ScriptedAgent.connect(own)) {
            var call = ScriptedAgent.async(() -> checkpoints.restore(p.host(), largest, (err, d, o, l) -> { }));
            Wire.Frame mktemp = expect(p.agent(), Wire.EXEC);
            assertEquals(java.util.List.of("mktemp", "/tmp/nxia-upload.XXXXXX"), argv(mktemp));
            p.agent().send(Wire.STARTED, mktemp.id(), u32s(100));
            p.agent().send(Wire.STDERR, mktemp.id(), "no space\n".getBytes(StandardCharsets.US_ASCII));
            p.agent().send(Wire.EXIT, mktemp.id(), u32s(0, 1));
            java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> call.get(30, TimeUnit.SECONDS));
            assertEquals("cannot make a file in the guest for the checkpoint: no space", e.getCause().getMessage());
        }
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(largest.toFile(), "rw")) {
            f.setLength(CriuCheckpoints.MAX_CHECKPOINT + 1);
        }
        java.io.IOException e = assertThrows(java.io.IOException.class, () -> checkpoints.restore(null, largest, (err, d, o, l) -> { }));
        assertTrue(e.getMessage().endsWith("is " + (CriuCheckpoints.MAX_CHECKPOINT + 1)
                + " bytes: larger than a checkpoint can be (" + CriuCheckpoints.MAX_CHECKPOINT + ")"), e.getMessage());
    }

    @Test
    void aRestoreUploadsThePiecesThenRunsCriuWithItsInputClosed(@TempDir Path own) throws Exception {
        Path file = Files.write(own.resolve("small.ckpt"), "ckpt!".getBytes(StandardCharsets.US_ASCII));
        try (ScriptedAgent.Pair p = ScriptedAgent.connect(own)) {
            RawClient agent = p.agent();
            var call = ScriptedAgent.async(() -> checkpoints.restore(p.host(), file, (err, d, o, l) -> { }));
            Wire.Frame mktemp = expect(agent, Wire.EXEC);
            agent.send(Wire.STARTED, mktemp.id(), u32s(100));
            expect(agent, Wire.STDIN);
            agent.send(Wire.STDOUT, mktemp.id(), "/tmp/nxia-upload.abc\n".getBytes(StandardCharsets.US_ASCII));
            agent.send(Wire.EXIT, mktemp.id(), u32s(0, 0));
            Wire.Frame upload = expect(agent, Wire.EXEC);
            assertEquals(java.util.List.of("sh", "-c", "cat >> \"$1\"", "nxia-upload", "/tmp/nxia-upload.abc"), argv(upload));
            agent.send(Wire.STARTED, upload.id(), u32s(101));
            assertArrayEquals("ckpt!".getBytes(StandardCharsets.US_ASCII), expect(agent, Wire.STDIN).payload());
            assertEquals(0, expect(agent, Wire.STDIN).payload().length);
            Thread.sleep(500);    // past a poll of the exit: an upload is not abandoned while it runs
            agent.send(Wire.EXIT, upload.id(), u32s(0, 0));
            Wire.Frame restore = expect(agent, Wire.EXEC);
            assertEquals(java.util.List.of("sh", "-c", CriuCheckpoints.RESTORE, "nxia-restore", "/tmp/nxia-upload.abc"), argv(restore));
            agent.send(Wire.STARTED, restore.id(), u32s(102));
            Execution restored = call.get(30, TimeUnit.SECONDS);
            assertEquals(102, restored.pid());
            Wire.Frame eof = expect(agent, Wire.STDIN);
            assertEquals(restore.id(), eof.id());
            assertEquals(0, eof.payload().length, "CRIU's input is closed");
            agent.send(Wire.EXIT, restore.id(), u32s(0, 0));
            assertEquals(ExitStatus.exited(0), restored.exit().get(30, TimeUnit.SECONDS));
        }
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
