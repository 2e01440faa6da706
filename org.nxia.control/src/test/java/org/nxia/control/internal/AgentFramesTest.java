package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ControlException.Code;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.Execution;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.GuestConfig;

/**
 * The host's session against a scripted agent, after the handshake: each frame
 * the agent may send is checked where it arrives (its id, its type for what
 * waits on that id, its length, its order), and one that breaks the protocol
 * ends the session with the reason, for every call waiting and every later one.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AgentFramesTest {

    private static final long WAIT_S = 20;

    @TempDir
    Path dir;

    private AgentConnection host;
    private RawClient agent;

    @BeforeEach
    void connect() throws Exception {
        ScriptedAgent.Pair p = ScriptedAgent.connect(dir);
        host = p.host();
        agent = p.agent();
    }

    @AfterEach
    void disconnect() throws IOException {
        host.close();
        agent.close();
    }

    private static <T> CompletableFuture<T> async(ScriptedAgent.IoCall<T> call) {
        return ScriptedAgent.async(call);
    }

    private static ControlException failure(CompletableFuture<?> call) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> call.get(WAIT_S, TimeUnit.SECONDS));
        return assertInstanceOf(ControlException.class, e.getCause());
    }

    private static byte[] u32s(int... values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : values)
            b.putInt(v);
        return b.array();
    }

    private static byte[] error(Code code, String message) {
        byte[] m = message.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(4 + m.length).order(ByteOrder.LITTLE_ENDIAN).putInt(code.wire()).put(m).array();
    }

    /** The next frame the host sent, which must be of this type. */
    private Wire.Frame expect(int type) throws IOException {
        Wire.Frame f = agent.read();
        assertEquals(type, f.type(), "frame type");
        return f;
    }

    /**
     * The agent takes the host's EXEC of an exec() and answers STARTED; the host then closes the
     * program's input (taken here, so a frame sent next is not racing that write) and waits for its exit.
     */
    private Wire.Frame started() throws IOException {
        Wire.Frame exec = expect(Wire.EXEC);
        agent.send(Wire.STARTED, exec.id(), u32s(77));
        Wire.Frame eof = expect(Wire.STDIN);
        assertEquals(exec.id(), eof.id());
        assertEquals(0, eof.payload().length);
        return exec;
    }

    /**
     * The session was ended for {@code message}: the call that waited failed with it, the host
     * hung up, and every later call fails with the same reason.
     */
    private void assertEndedFor(CompletableFuture<?> waiting, String message) throws IOException {
        ControlException e = failure(waiting);
        assertEquals(Code.PROTOCOL, e.code());
        assertEquals("agent broke the protocol: " + message, e.getMessage());
        Wire.Frame f;
        while ((f = agent.read()) != null)
            assertEquals(Wire.STDIN, f.type(), "only the end of a program's stdin may still have been on its way");
        ControlException later = assertThrows(ControlException.class, () -> host.configure(new GuestConfig("h", Map.of(), List.of())));
        assertEquals(Code.PROTOCOL, later.code(), "a later call fails for the same reason, not for the closed channel");
        assertEquals(e.getMessage(), later.getMessage());
        later = assertThrows(ControlException.class, () -> host.start(ExecRequest.of("x"), (err, d, off, len) -> { }));
        assertEquals(e.getMessage(), later.getMessage());
    }

    @Test
    void aFrameWithoutAnIdEndsTheSession() throws Exception {
        CompletableFuture<Void> configure = async(() -> {
            host.configure(new GuestConfig("h", Map.of(), List.of()));
            return null;
        });
        expect(Wire.CONFIGURE);
        agent.send(Wire.OK, 0, new byte[0]);
        assertEndedFor(configure, "frame type 0x90 without an id");
    }

    @Test
    void anErrorWithoutAnIdEndsTheSessionWithTheAgentsCode() throws Exception {
        CompletableFuture<Void> quiesce = async(() -> {
            host.quiesce();
            return null;
        });
        expect(Wire.QUIESCE);
        agent.send(Wire.ERROR, 0, error(Code.SYSTEM, "out of memory"));
        ControlException e = failure(quiesce);
        assertEquals(Code.SYSTEM, e.code());
        assertEquals("agent: out of memory", e.getMessage());
        assertNull(agent.read(), "the host hung up");
    }

    @Test
    void aFrameForAnIdNoOneWaitsForIsIgnored() throws Exception {
        CompletableFuture<Void> resume = async(() -> {
            host.resume();
            return null;
        });
        Wire.Frame f = expect(Wire.RESUME);
        agent.send(Wire.STDOUT, f.id() + 1000, "late output".getBytes(StandardCharsets.UTF_8));
        agent.send(Wire.OK, f.id() + 1000, new byte[0]);
        agent.send(Wire.OK, f.id(), new byte[0]);
        resume.get(WAIT_S, TimeUnit.SECONDS);
        CompletableFuture<Void> quiesce = async(() -> {
            host.quiesce();
            return null;
        });
        agent.send(Wire.OK, expect(Wire.QUIESCE).id(), new byte[0]);
        quiesce.get(WAIT_S, TimeUnit.SECONDS);
    }

    @Test
    void aRequestAnsweredWithoutOkOrErrorEndsTheSession() throws Exception {
        CompletableFuture<Void> quiesce = async(() -> {
            host.quiesce();
            return null;
        });
        Wire.Frame f = expect(Wire.QUIESCE);
        agent.send(Wire.STARTED, f.id(), u32s(1));
        assertEndedFor(quiesce, "answer of type 0x92 to request " + f.id());
    }

    @Test
    void anErrorAnswerFailsTheRequestAndTheSessionGoesOn() throws Exception {
        CompletableFuture<Void> quiesce = async(() -> {
            host.quiesce();
            return null;
        });
        agent.send(Wire.ERROR, expect(Wire.QUIESCE).id(), error(Code.QUIESCED, "already quiesced"));
        ControlException e = failure(quiesce);
        assertEquals(Code.QUIESCED, e.code());
        assertEquals("agent: already quiesced", e.getMessage());
        CompletableFuture<Void> resume = async(() -> {
            host.resume();
            return null;
        });
        agent.send(Wire.OK, expect(Wire.RESUME).id(), new byte[0]);
        resume.get(WAIT_S, TimeUnit.SECONDS);
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 3, 5})
    void aStartedOfAnotherLengthThanFourEndsTheSession(int length) throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        Wire.Frame f = expect(Wire.EXEC);
        agent.send(Wire.STARTED, f.id(), new byte[length]);
        assertEndedFor(exec, "bad STARTED for " + f.id());
    }

    @Test
    void aSecondStartedEndsTheSession() throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        Wire.Frame f = started();
        agent.send(Wire.STARTED, f.id(), u32s(78));
        assertEndedFor(exec, "bad STARTED for " + f.id());
    }

    @ParameterizedTest
    @ValueSource(ints = {Wire.STDOUT, Wire.STDERR})
    void outputBeforeStartedEndsTheSession(int type) throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        Wire.Frame f = expect(Wire.EXEC);
        agent.send(type, f.id(), new byte[] {'x'});
        assertEndedFor(exec, "output before STARTED for " + f.id());
    }

    @Test
    void aProgramsPidOutputStreamsAndExitCodeAreTheAgentsAndNoStreamIsCutBelowTheLimit() throws Exception {
        CompletableFuture<Execution> start = async(() -> host.start(ExecRequest.of("x"), (err, d, off, len) -> { }));
        Wire.Frame f = expect(Wire.EXEC);
        agent.send(Wire.STARTED, f.id(), u32s(4242));
        Execution x = start.get(WAIT_S, TimeUnit.SECONDS);
        assertEquals(4242, x.pid());
        agent.send(Wire.EXIT, f.id(), u32s(0, 0));
        assertEquals(ExitStatus.exited(0), x.exit().get(WAIT_S, TimeUnit.SECONDS));

        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("y")));
        f = started();
        agent.send(Wire.STDOUT, f.id(), "out".getBytes(StandardCharsets.UTF_8));
        agent.send(Wire.STDERR, f.id(), "err".getBytes(StandardCharsets.UTF_8));
        agent.send(Wire.STDOUT, f.id(), new byte[0]);
        agent.send(Wire.EXIT, f.id(), u32s(0, 3));
        ExecResult r = exec.get(WAIT_S, TimeUnit.SECONDS);
        assertEquals(ExitStatus.exited(3), r.status());
        assertEquals("out", r.stdoutText());
        assertArrayEquals("err".getBytes(StandardCharsets.UTF_8), r.stderr());
        assertFalse(r.truncated());
    }

    @Test
    void outputUpToTheLimitIsKeptWholePerStream() throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        Wire.Frame f = started();
        byte[] chunk = new byte[Wire.MAX_PAYLOAD];
        int sent = 0;
        while (sent < ExecResult.OUTPUT_LIMIT) {
            int n = Math.min(chunk.length, ExecResult.OUTPUT_LIMIT - sent);
            agent.send(Wire.STDOUT, f.id(), java.util.Arrays.copyOf(chunk, n));
            sent += n;
        }
        agent.send(Wire.STDERR, f.id(), new byte[] {'e'});
        agent.send(Wire.EXIT, f.id(), u32s(0, 0));
        ExecResult r = exec.get(WAIT_S, TimeUnit.SECONDS);
        assertEquals(ExecResult.OUTPUT_LIMIT, r.stdout().length);
        assertEquals("e", r.stderrText());
        assertFalse(r.truncated(), "exactly the limit is not cut");

        exec = async(() -> host.exec(ExecRequest.of("y")));
        f = started();
        for (sent = 0; sent < ExecResult.OUTPUT_LIMIT; sent += chunk.length)
            agent.send(Wire.STDERR, f.id(), chunk);
        agent.send(Wire.EXIT, f.id(), u32s(0, 0));
        r = exec.get(WAIT_S, TimeUnit.SECONDS);
        assertEquals(ExecResult.OUTPUT_LIMIT, r.stderr().length);
        assertTrue(r.truncated());
    }

    @Test
    void exitKindOneIsASignal() throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        agent.send(Wire.EXIT, started().id(), u32s(1, 9));
        assertEquals(ExitStatus.killed(9), exec.get(WAIT_S, TimeUnit.SECONDS).status());
    }

    @ParameterizedTest
    @ValueSource(ints = {2, -1})
    void anExitOfAnotherKindEndsTheSession(int kind) throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        Wire.Frame f = started();
        agent.send(Wire.EXIT, f.id(), u32s(kind, 0));
        assertEndedFor(exec, "EXIT kind " + Integer.toUnsignedString(kind));
    }

    @ParameterizedTest
    @ValueSource(ints = {7, 9})
    void anExitOfAnotherLengthThanEightEndsTheSession(int length) throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        Wire.Frame f = started();
        agent.send(Wire.EXIT, f.id(), new byte[length]);
        assertEndedFor(exec, "bad EXIT for " + f.id());
    }

    @Test
    void anExitBeforeStartedEndsTheSession() throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        Wire.Frame f = expect(Wire.EXEC);
        agent.send(Wire.EXIT, f.id(), u32s(0, 0));
        assertEndedFor(exec, "bad EXIT for " + f.id());
    }

    @ParameterizedTest
    @ValueSource(ints = {7, 9})
    void aDeniedOfAnotherLengthThanEightEndsTheSession(int length) throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        Wire.Frame f = started();
        agent.send(Wire.DENIED, f.id(), new byte[length]);
        assertEndedFor(exec, "bad DENIED for " + f.id());
    }

    @Test
    void anErrorForAProgramFailsItAndTheSessionGoesOn() throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        agent.send(Wire.ERROR, expect(Wire.EXEC).id(), error(Code.EXEC, "x: not found"));
        ControlException e = failure(exec);
        assertEquals(Code.EXEC, e.code());
        assertEquals("agent: x: not found", e.getMessage());

        // and after STARTED: the program's exit fails with it
        CompletableFuture<Execution> start = async(() -> host.start(ExecRequest.of("y"), (err, d, off, len) -> { }));
        Wire.Frame f = expect(Wire.EXEC);
        agent.send(Wire.STARTED, f.id(), u32s(5));
        Execution x = start.get(WAIT_S, TimeUnit.SECONDS);
        agent.send(Wire.ERROR, f.id(), error(Code.SYSTEM, "lost it"));
        e = failure(x.exit());
        assertEquals(Code.SYSTEM, e.code());
        agent.send(Wire.EXIT, f.id(), u32s(0, 0));    // for an id no longer waited for: ignored

        CompletableFuture<Void> resume = async(() -> {
            host.resume();
            return null;
        });
        agent.send(Wire.OK, expect(Wire.RESUME).id(), new byte[0]);
        resume.get(WAIT_S, TimeUnit.SECONDS);
    }

    @Test
    void anUnknownFrameTypeForAProgramEndsTheSession() throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        Wire.Frame f = started();
        agent.send(Wire.OK, f.id(), new byte[0]);
        assertEndedFor(exec, "frame type 0x90 for program " + f.id());
    }

    @Test
    void stdinIsSentInFramesOfAtMostTheLargestPayloadAndNothingForNoBytes() throws Exception {
        CompletableFuture<Execution> start = async(() -> host.start(ExecRequest.of("cat"), (err, d, off, len) -> { }));
        Wire.Frame exec = expect(Wire.EXEC);
        agent.send(Wire.STARTED, exec.id(), u32s(1));
        Execution x = start.get(WAIT_S, TimeUnit.SECONDS);
        byte[] data = new byte[2 * Wire.MAX_PAYLOAD + 1];
        for (int i = 0; i < data.length; i++)
            data[i] = (byte) i;
        x.write(new byte[0]);
        x.write(data);
        x.write(new byte[] {'z'});
        x.closeStdin();
        Wire.Frame a = expect(Wire.STDIN), b = expect(Wire.STDIN), c = expect(Wire.STDIN);
        assertEquals(List.of(Wire.MAX_PAYLOAD, Wire.MAX_PAYLOAD, 1), List.of(a.payload().length, b.payload().length, c.payload().length),
                "no empty STDIN (the end of input) for a write of no bytes");
        assertEquals(exec.id(), a.id());
        byte[] whole = new byte[data.length];
        System.arraycopy(a.payload(), 0, whole, 0, Wire.MAX_PAYLOAD);
        System.arraycopy(b.payload(), 0, whole, Wire.MAX_PAYLOAD, Wire.MAX_PAYLOAD);
        System.arraycopy(c.payload(), 0, whole, 2 * Wire.MAX_PAYLOAD, 1);
        assertArrayEquals(data, whole);
        assertArrayEquals(new byte[] {'z'}, expect(Wire.STDIN).payload());
        assertEquals(0, expect(Wire.STDIN).payload().length, "closeStdin is an empty STDIN");
    }

    @Test
    void anExecOfExactlyTheLargestPayloadIsSentAndOneByteMoreIsRefusedHere() throws Exception {
        String arg = "a".repeat(Wire.MAX_PAYLOAD - 5);    // one ARG field: tag, u32 length, value
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of(arg)));
        Wire.Frame f = expect(Wire.EXEC);
        assertEquals(Wire.MAX_PAYLOAD, f.payload().length);
        agent.send(Wire.STARTED, f.id(), u32s(1));
        expect(Wire.STDIN);
        agent.send(Wire.EXIT, f.id(), u32s(0, 0));
        assertEquals(ExitStatus.exited(0), exec.get(WAIT_S, TimeUnit.SECONDS).status());

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> host.exec(ExecRequest.of(arg + "a")));
        assertEquals("argv and env take " + (Wire.MAX_PAYLOAD + 1) + " bytes, over " + Wire.MAX_PAYLOAD, e.getMessage());
    }

    @Test
    void aClosedSessionFailsWaitingCallsAndLaterOnes() throws Exception {
        CompletableFuture<ExecResult> exec = async(() -> host.exec(ExecRequest.of("x")));
        expect(Wire.EXEC);
        host.close();
        ControlException e = failure(exec);
        assertEquals(Code.SESSION, e.code());
        assertEquals("session closed", e.getMessage());
        assertNull(agent.read());
        ControlException later = assertThrows(ControlException.class, () -> host.quiesce());
        assertEquals("session closed", later.getMessage());
        assertSame(Code.SESSION, later.code());
    }

    @Test
    void shutdownClosesTheSessionOnceTheAgentAnswers() throws Exception {
        CompletableFuture<Void> shutdown = async(() -> {
            host.shutdown();
            return null;
        });
        agent.send(Wire.OK, expect(Wire.SHUTDOWN).id(), new byte[0]);
        shutdown.get(WAIT_S, TimeUnit.SECONDS);
        assertNull(agent.read(), "the host hung up");
        ControlException e = assertThrows(ControlException.class, () -> host.quiesce());
        assertEquals("session closed", e.getMessage());
    }

    @Test
    void aFailedWriteEndsTheSessionForEveryoneWaiting() throws Exception {
        CompletableFuture<Execution> start = async(() -> host.start(ExecRequest.of("cat"), (err, d, off, len) -> { }));
        agent.send(Wire.STARTED, expect(Wire.EXEC).id(), u32s(1));
        Execution x = start.get(WAIT_S, TimeUnit.SECONDS);
        agent.ch.shutdownInput();    // the agent reads no more: the host's next write fails (EPIPE), its reads go on
        ControlException e = assertThrows(ControlException.class, () -> {
            for (int i = 0; i < 1000; i++)    // the first writes may still fit in the socket's buffer
                x.write(new byte[Wire.MAX_PAYLOAD]);
        });
        assertEquals(Code.SESSION, e.code());
        assertTrue(e.getMessage().startsWith("cannot write to the agent: "), e.getMessage());
        assertSame(e, failure(x.exit()), "the program waiting for its exit learns why");
        assertSame(e, assertThrows(ControlException.class, () -> host.quiesce()), "and so does every later call");
    }

    /** Runs {@code call} on a thread that is interrupted while it waits; returns what it threw and whether it is still interrupted. */
    private static Object[] interrupted(ScriptedAgent.IoCall<?> call) throws Exception {
        CompletableFuture<Object[]> outcome = new CompletableFuture<>();
        Thread t = Thread.ofVirtual().start(() -> {
            try {
                call.run();
                outcome.complete(new Object[] {null, Thread.currentThread().isInterrupted()});
            } catch (Throwable e) {
                outcome.complete(new Object[] {e, Thread.currentThread().isInterrupted()});
            }
        });
        return new Object[] {t, outcome};
    }

    /**
     * Interrupts the thread once it waits for the agent's answer. The agent has read the request whole, but
     * an interrupt before the write returns would close the channel (an interruptible channel's rule) instead.
     */
    @SuppressWarnings("unchecked")
    private static Object[] interrupt(Object[] running) throws Exception {
        Thread t = (Thread) running[0];
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
        while (t.getState() != Thread.State.WAITING && t.getState() != Thread.State.TIMED_WAITING && System.nanoTime() < end)
            Thread.sleep(1);
        t.interrupt();
        return ((CompletableFuture<Object[]>) running[1]).get(WAIT_S, TimeUnit.SECONDS);
    }

    @Test
    void aCallInterruptedWhileItWaitsSaysSoAndKeepsTheInterrupt() throws Exception {
        Object[] quiesce = interrupted(() -> {
            host.quiesce();
            return null;
        });
        expect(Wire.QUIESCE);
        Object[] r = interrupt(quiesce);
        assertEquals("interrupted waiting for quiesce", assertInstanceOf(java.io.InterruptedIOException.class, r[0]).getMessage());
        assertEquals(true, r[1], "the thread's interrupt is kept");

        Object[] exec = interrupted(() -> host.exec(ExecRequest.of("sleep", "1")));
        Wire.Frame f = started();    // exec has started the program and waits for its exit
        r = interrupt(exec);
        assertEquals("interrupted waiting for sleep", assertInstanceOf(java.io.InterruptedIOException.class, r[0]).getMessage());
        assertEquals(true, r[1]);
        agent.send(Wire.EXIT, f.id(), u32s(0, 0));
    }

    /** A channel that hands out its bytes with reads of nothing in between, as a non-blocking one may. */
    private static final class Stuttering implements java.nio.channels.ReadableByteChannel {
        private final ByteBuffer bytes;
        private boolean empty;

        Stuttering(byte[] bytes) {
            this.bytes = ByteBuffer.wrap(bytes);
        }

        @Override
        public int read(ByteBuffer dst) {
            if (!bytes.hasRemaining())
                return -1;
            empty = !empty;
            if (empty)
                return 0;
            dst.put(bytes.get());
            return 1;
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public void close() {
        }
    }

    @Test
    void theFrameReaderTellsAnEmptyReadFromTheEndAndSaysHowTheStreamEnded() throws Exception {
        byte[] frame = Wire.encode(Wire.STDOUT, 5, "abc".getBytes(StandardCharsets.UTF_8));
        ByteBuffer buf = ByteBuffer.allocate(4 + Wire.MAX_BODY).flip();
        java.io.ByteArrayOutputStream two = new java.io.ByteArrayOutputStream();
        two.writeBytes(frame);
        two.writeBytes(java.util.Arrays.copyOf(frame, 7));
        Stuttering in = new Stuttering(two.toByteArray());
        Wire.Frame f = AgentConnection.read(in, buf);
        assertEquals(List.of(Wire.STDOUT, 5, "abc"), List.of(f.type(), f.id(), new String(f.payload(), StandardCharsets.UTF_8)));
        ControlException e = assertThrows(ControlException.class, () -> AgentConnection.read(in, buf));
        assertEquals(Code.TRUNCATED, e.code());
        assertEquals("agent closed the connection inside a frame", e.getMessage());

        Stuttering one = new Stuttering(frame);
        ByteBuffer oneBuf = ByteBuffer.allocate(4 + Wire.MAX_BODY).flip();
        assertEquals(5, AgentConnection.read(one, oneBuf).id());
        e = assertThrows(ControlException.class, () -> AgentConnection.read(one, oneBuf));
        assertEquals(Code.SESSION, e.code());
        assertEquals("agent closed the connection", e.getMessage());

        byte[] big = Wire.encode(Wire.STDOUT, 5, new byte[0]);
        ByteBuffer.wrap(big).order(ByteOrder.LITTLE_ENDIAN).putInt(0, Wire.MAX_BODY + 1);
        e = assertThrows(ControlException.class, () -> AgentConnection.read(new Stuttering(big), ByteBuffer.allocate(4 + Wire.MAX_BODY).flip()));
        assertEquals(Code.TOO_BIG, e.code());
        assertEquals("agent sent a bad frame: TOO_BIG", e.getMessage());
    }
}
