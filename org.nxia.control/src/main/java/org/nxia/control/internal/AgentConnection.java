package org.nxia.control.internal;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ControlException.Code;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.Execution;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.Generation;
import org.nxia.control.api.GuestConfig;
import org.nxia.control.api.OutputSink;

/**
 * One authenticated session. Requests are written under a lock by the
 * caller's thread; one reader thread dispatches the agent's frames by id to the
 * request or program waiting for them. The agent is guest code: a frame that
 * breaks the protocol ends the session rather than being guessed at.
 */
final class AgentConnection implements AgentSession {

    /** How long a request waits for the agent's answer; a silent agent must not hang the host. */
    static final long REPLY_TIMEOUT_S = 60;
    /** How long the handshake may take; an agent that accepts and goes silent must not hang the host. */
    static final Duration HANDSHAKE_LIMIT = Duration.ofSeconds(30);
    private static final int MIN_SECRET = 16, MAX_SECRET = 64;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final SocketChannel channel;
    private final ByteBuffer in = ByteBuffer.allocate(4 + Wire.MAX_BODY).flip();
    private final Object writeLock = new Object();
    private final Map<Integer, Object> pending = new ConcurrentHashMap<>();
    private final AtomicInteger ids = new AtomicInteger();
    private final String agent;
    private final boolean init;
    private volatile ControlException broken;
    /** Why the session is about to end, when its owner knows better than a closed channel does. */
    private volatile String ending;

    private AgentConnection(SocketChannel channel, String agent, boolean init) {
        this.channel = channel;
        this.agent = agent;
        this.init = init;
    }

    /**
     * Authenticates both ways within {@code limit}, then starts the reader;
     * closes the channel on failure.
     */
    static AgentConnection open(SocketChannel channel, byte[] secret, Duration limit) throws IOException {
        if (secret.length < MIN_SECRET || secret.length > MAX_SECRET)
            throw new IllegalArgumentException("secret must be " + MIN_SECRET + ".." + MAX_SECRET + " bytes, not " + secret.length);
        channel.configureBlocking(true);
        AgentConnection c = null;
        // Blocking reads on a Unix channel have no timeout: closing the channel ends them.
        // Whoever settles first wins: the handshake (done) or the watchdog (late).
        AtomicReference<String> settled = new AtomicReference<>();
        Thread watchdog = Thread.ofVirtual().name("nxia-control-handshake").start(() -> {
            try {
                Thread.sleep(limit);
                if (settled.compareAndSet(null, "late"))
                    channel.close();
            } catch (InterruptedException | IOException e) {
                // done in time
            }
        });
        try {
            ByteBuffer hs = ByteBuffer.allocate(4 + Wire.MAX_BODY).flip();
            byte[] hostNonce = new byte[Wire.NONCE];
            RANDOM.nextBytes(hostNonce);
            ByteBuffer hello = ByteBuffer.allocate(4 + Wire.NONCE).order(ByteOrder.LITTLE_ENDIAN);
            hello.putShort((short) Wire.VERSION).putShort((short) Wire.VERSION).put(hostNonce);
            write(channel, Wire.encode(Wire.HELLO, 0, hello.array()));

            Wire.Frame reply = expect(read(channel, hs), Wire.HELLO_REPLY, 4 + Wire.NONCE + Wire.MAC);
            ByteBuffer r = reply.body();
            int version = Short.toUnsignedInt(r.getShort());
            byte[] agentNonce = new byte[Wire.NONCE], agentProof = new byte[Wire.MAC];
            r.getShort();
            r.get(agentNonce).get(agentProof);
            if (version != Wire.VERSION)
                throw new ControlException(Code.VERSION, "agent chose protocol version " + version + ", we offered " + Wire.VERSION);
            if (!Wire.macEqual(agentProof, Wire.proof(secret, true, hostNonce, agentNonce)))
                throw new ControlException(Code.AUTH, "the agent does not know this VM's secret");
            write(channel, Wire.encode(Wire.AUTH, 0, Wire.proof(secret, false, agentNonce, hostNonce)));

            Wire.Frame ready = read(channel, hs);
            if (ready.type() == Wire.ERROR)
                throw error(ready);
            if (ready.type() != Wire.READY || ready.payload().length < 4 || ready.payload().length > 256)
                throw violation("expected READY, got frame type 0x" + Integer.toHexString(ready.type()));
            ByteBuffer rb = ready.body();
            boolean init = (rb.getInt() & 1) != 0;
            String ident = new String(ready.payload(), 4, ready.payload().length - 4, StandardCharsets.UTF_8);
            if (!settled.compareAndSet(null, "done"))
                throw new ClosedChannelException();
            c = new AgentConnection(channel, ident, init);
            c.in.clear().put(hs).flip();
        } catch (ClosedChannelException e) {
            throw "late".equals(settled.get()) ? new ControlException(Code.SESSION,
                    "the agent did not complete the handshake within " + limit.toMillis() + " ms", e) : e;
        } finally {
            watchdog.interrupt();
            if (c == null)
                channel.close();
        }
        AgentConnection session = c;
        Thread.ofVirtual().name("nxia-control-reader").start(session::readLoop);
        return session;
    }

    private static Wire.Frame expect(Wire.Frame f, int type, int length) throws ControlException {
        if (f.type() == Wire.ERROR)
            throw error(f);
        if (f.type() != type || f.payload().length != length)
            throw violation("expected frame type 0x" + Integer.toHexString(type) + " of " + length
                    + " bytes, got type 0x" + Integer.toHexString(f.type()) + " of " + f.payload().length);
        return f;
    }

    private static ControlException error(Wire.Frame f) {
        if (f.payload().length < 4)
            return violation("ERROR frame of " + f.payload().length + " bytes");
        int code = f.body().getInt();
        String msg = new String(f.payload(), 4, f.payload().length - 4, StandardCharsets.UTF_8);
        return new ControlException(Code.of(code), "agent: " + msg);
    }

    private static ControlException violation(String what) {
        return new ControlException(Code.PROTOCOL, "agent broke the protocol: " + what);
    }

    private static void write(SocketChannel ch, byte[] frame) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(frame);
        while (b.hasRemaining())
            ch.write(b);
    }

    /** Reads the next frame into {@code buf} (kept flipped: position..limit unread). */
    static Wire.Frame read(ReadableByteChannel ch, ByteBuffer buf) throws IOException {
        for (;;) {
            int r = Wire.scan(buf, false);
            if (r > 0)
                return Wire.take(buf, r);
            if (r < 0)
                throw new ControlException(Code.of(-r), "agent sent a bad frame: " + Code.of(-r));
            buf.compact();
            int n = ch.read(buf);
            buf.flip();
            if (n < 0) {
                r = Wire.scan(buf, true);
                throw new ControlException(r < 0 ? Code.TRUNCATED : Code.SESSION,
                        r < 0 ? "agent closed the connection inside a frame" : "agent closed the connection");
            }
        }
    }

    // ---- the reader ---------------------------------------------------------

    private void readLoop() {
        ControlException why;
        try {
            for (;;)
                dispatch(read(channel, in));
        } catch (ControlException e) {
            why = e;
        } catch (IOException e) {
            why = new ControlException(Code.SESSION, "connection to the agent failed: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            why = new ControlException(Code.SESSION, "session failed: " + e, e);
        }
        fail(broken != null ? broken : why);
    }

    private void fail(ControlException why) {
        String because = ending;
        if (broken == null)
            broken = because == null ? why : new ControlException(Code.SESSION, because, why);
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing is all that is left to do
        }
        for (Object p : pending.values()) {
            if (p instanceof CompletableFuture<?> f)
                f.completeExceptionally(broken);
            else if (p instanceof Running x)
                x.fail(broken);
        }
        pending.clear();
    }

    private void dispatch(Wire.Frame f) throws ControlException {
        if (f.id() == 0) {
            if (f.type() == Wire.ERROR)
                throw error(f);
            throw violation("frame type 0x" + Integer.toHexString(f.type()) + " without an id");
        }
        Object p = pending.get(f.id());
        if (p == null)
            return;    // a request we stopped waiting for
        if (p instanceof CompletableFuture<?> raw) {
            @SuppressWarnings("unchecked")
            CompletableFuture<Wire.Frame> reply = (CompletableFuture<Wire.Frame>) raw;
            if (f.type() != Wire.OK && f.type() != Wire.ERROR)
                throw violation("answer of type 0x" + Integer.toHexString(f.type()) + " to request " + f.id());
            pending.remove(f.id());
            reply.complete(f);
            return;
        }
        Running x = (Running) p;
        switch (f.type()) {
            case Wire.STARTED -> {
                if (f.payload().length != 4 || x.started.isDone())
                    throw violation("bad STARTED for " + f.id());
                x.pid = f.body().getInt();
                x.started.complete(null);
            }
            case Wire.STDOUT, Wire.STDERR -> {
                if (!x.started.isDone())
                    throw violation("output before STARTED for " + f.id());
                x.sink.output(f.type() == Wire.STDERR, f.payload(), 0, f.payload().length);
            }
            case Wire.EXIT -> {
                if (f.payload().length != 8 || !x.started.isDone())
                    throw violation("bad EXIT for " + f.id());
                ByteBuffer b = f.body();
                int kind = b.getInt(), code = b.getInt();
                if (Integer.compareUnsigned(kind, 1) > 0)    // u32: 0 exited, 1 killed; nothing else
                    throw violation("EXIT kind " + Integer.toUnsignedString(kind));
                pending.remove(f.id());
                x.exit.complete(kind == 1 ? ExitStatus.killed(code) : ExitStatus.exited(code));
            }
            case Wire.DENIED -> {
                if (f.payload().length != 8 || !x.started.isDone())
                    throw violation("bad DENIED for " + f.id());
                ByteBuffer b = f.body();
                x.denied(Integer.toUnsignedLong(b.getInt()), Integer.toUnsignedLong(b.getInt()));
            }
            case Wire.ERROR -> {
                pending.remove(f.id());
                x.fail(error(f));
            }
            default -> throw violation("frame type 0x" + Integer.toHexString(f.type()) + " for program " + f.id());
        }
    }

    // ---- requests -----------------------------------------------------------

    private int nextId() {
        int id;
        do
            id = ids.incrementAndGet();
        while (id == 0);
        return id;
    }

    private void send(int type, int id, byte[] payload) throws IOException {
        if (broken != null)
            throw broken;
        try {
            synchronized (writeLock) {
                write(channel, Wire.encode(type, id, payload));
            }
        } catch (IOException e) {
            ControlException ce = new ControlException(Code.SESSION, "cannot write to the agent: " + e.getMessage(), e);
            fail(ce);
            throw ce;
        }
    }

    private static <T> T await(CompletableFuture<T> f, String what) throws IOException {
        try {
            return f.get(REPLY_TIMEOUT_S, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted waiting for " + what);
        } catch (TimeoutException e) {
            throw new ControlException(Code.SESSION, "agent did not answer " + what + " in " + REPLY_TIMEOUT_S + " s");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof ControlException ce)
                throw new ControlException(ce.code(), ce.getMessage(), ce);
            throw new ControlException(Code.SESSION, what + ": " + e.getCause(), e.getCause());
        }
    }

    /** Sends a request and waits for OK; ERROR becomes a ControlException. */
    private void request(int type, byte[] payload, String what) throws IOException {
        int id = nextId();
        CompletableFuture<Wire.Frame> reply = new CompletableFuture<>();
        pending.put(id, reply);
        if (broken != null)
            reply.completeExceptionally(broken);
        try {
            send(type, id, payload);
            Wire.Frame f = await(reply, what);
            if (f.type() == Wire.ERROR)
                throw error(f);
        } finally {
            pending.remove(id);
        }
    }

    /** Denials logged per program; the agent's DENIED frames past it are only counted. */
    static final int MAX_DENIALS_LOGGED = 100;

    /** Confined execs, their refusals and denials (docs/linux-vm.md, Confinement). */
    private static final System.Logger AUDIT = System.getLogger("org.nxia.control.audit");

    @Override
    public String agent() {
        return agent;
    }

    @Override
    public boolean agentIsInit() {
        return init;
    }

    @Override
    public Execution start(ExecRequest request, OutputSink sink) throws IOException {
        Wire.Fields fields = new Wire.Fields();
        request.argv().forEach(a -> fields.put(Wire.T_ARG, a));
        request.env().forEach((k, v) -> fields.put(Wire.T_ENV, k + "=" + v));
        if (request.cwd() != null)
            fields.put(Wire.T_CWD, request.cwd());
        if (request.pty() != null)
            fields.put(Wire.T_PTY, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN)
                    .putShort((short) request.pty().rows()).putShort((short) request.pty().cols()).array());
        Wire.putConfinement(fields, request.confinement());
        byte[] payload = fields.bytes();
        if (payload.length > Wire.MAX_PAYLOAD)
            throw new IllegalArgumentException("argv and env take " + payload.length + " bytes, over " + Wire.MAX_PAYLOAD);
        Running x = new Running(nextId(), sink, request.argv().toString());
        pending.put(x.id, x);
        if (broken != null)
            x.fail(broken);
        send(Wire.EXEC, x.id, payload);
        if (request.confinement().isNone()) {
            await(x.started, "exec " + request.argv().getFirst());
            return x;
        }
        // The audit trail of confined programs (issue 13 §5): what was asked, and whether the guest applied it.
        try {
            await(x.started, "exec " + request.argv().getFirst());
        } catch (IOException e) {
            AUDIT.log(System.Logger.Level.WARNING, "agent " + agent + ": confined exec " + request.argv() + " refused ("
                    + request.confinement() + "): " + e.getMessage());
            throw e;
        }
        AUDIT.log(System.Logger.Level.INFO, "agent " + agent + ": exec " + request.argv() + " confined: "
                + request.confinement());
        return x;
    }

    @Override
    public ExecResult exec(ExecRequest request) throws IOException {
        Collector out = new Collector();
        Execution x = start(request, out);
        x.closeStdin();
        ExitStatus status;
        try {
            status = x.exit().get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted waiting for " + request.argv().getFirst());
        } catch (ExecutionException e) {
            throw e.getCause() instanceof ControlException ce ? ce
                    : new ControlException(Code.SESSION, String.valueOf(e.getCause()), e.getCause());
        }
        synchronized (out) {
            return new ExecResult(status, out.stdout.toByteArray(), out.stderr.toByteArray(), out.truncated);
        }
    }

    @Override
    public void configure(GuestConfig config) throws IOException {
        Wire.Fields fields = new Wire.Fields();
        if (config.hostname() != null)
            fields.put(Wire.T_HOSTNAME, config.hostname());
        config.env().forEach((k, v) -> fields.put(Wire.T_ENV, k + "=" + v));
        for (GuestConfig.Mount m : config.mounts())
            fields.put(Wire.T_MOUNT, String.join("\0", m.source(), m.target(), m.fsType(), m.options()));
        request(Wire.CONFIGURE, fields.bytes(), "configure");
    }

    @Override
    public void quiesce() throws IOException {
        request(Wire.QUIESCE, new byte[0], "quiesce");
    }

    @Override
    public void resume() throws IOException {
        request(Wire.RESUME, new byte[0], "resume");
    }

    @Override
    public void resume(Generation generation) throws IOException {
        byte[] number = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(generation.number()).array();
        byte[] secret = generation.secret();
        byte[] seed = generation.seed();
        try {
            request(Wire.RESUME, new Wire.Fields().put(Wire.T_GENERATION, number).put(Wire.T_SEED, seed)
                    .put(Wire.T_SECRET, secret).bytes(), "resume as generation " + generation.number());
        } finally {
            Arrays.fill(secret, (byte) 0);
            Arrays.fill(seed, (byte) 0);
        }
    }

    /**
     * Says why the session is about to end (the VM reached its time limit): from now on, whatever
     * fails or closes it fails the waiting requests and programs with this message.
     */
    void endingBecause(String why) {
        ending = why;
    }

    @Override
    public void shutdown() throws IOException {
        try {
            request(Wire.SHUTDOWN, new byte[0], "shutdown");
        } finally {
            close();
        }
    }

    @Override
    public void close() {
        fail(new ControlException(Code.SESSION, "session closed"));
    }

    /** A program started by this session. */
    private final class Running implements Execution {
        final int id;
        final OutputSink sink;
        final CompletableFuture<Void> started = new CompletableFuture<>();
        final CompletableFuture<ExitStatus> exit = new CompletableFuture<>();
        final String what;
        volatile int pid;
        private int denials;    // the reader thread's

        Running(int id, OutputSink sink, String what) {
            this.id = id;
            this.sink = sink;
            this.what = what;
        }

        /** A system call the program's confinement denied (EPERM in the guest), as the agent reports it. */
        void denied(long syscall, long guestPid) {
            // the agent is untrusted: a flood of reports costs the log at most MAX_DENIALS_LOGGED lines per program
            if (++denials <= MAX_DENIALS_LOGGED)
                AUDIT.log(System.Logger.Level.WARNING, "agent " + agent + ": program " + what + " (pid " + guestPid
                        + " in the guest) was denied syscall " + syscall + " (EPERM)"
                        + (denials == MAX_DENIALS_LOGGED ? "; further denials of this program are not logged" : ""));
        }

        void fail(ControlException why) {
            started.completeExceptionally(why);
            exit.completeExceptionally(why);
        }

        @Override
        public int pid() {
            return pid;
        }

        @Override
        public void write(byte[] data) throws IOException {
            for (int off = 0; off < data.length; off += Wire.MAX_PAYLOAD)
                send(Wire.STDIN, id, Arrays.copyOfRange(data, off, Math.min(data.length, off + Wire.MAX_PAYLOAD)));
        }

        @Override
        public void closeStdin() throws IOException {
            send(Wire.STDIN, id, new byte[0]);
        }

        @Override
        public void signal(int signal) throws IOException {
            request(Wire.SIGNAL, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(id).putInt(signal).array(),
                    "signal " + signal);
        }

        @Override
        public void resize(int rows, int cols) throws IOException {
            ExecRequest.WindowSize ws = new ExecRequest.WindowSize(rows, cols);
            request(Wire.RESIZE, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(id)
                    .putShort((short) ws.rows()).putShort((short) ws.cols()).array(), "resize");
        }

        @Override
        public CompletableFuture<ExitStatus> exit() {
            return exit;
        }
    }

    /** Collects output up to ExecResult.OUTPUT_LIMIT per stream. */
    private static final class Collector implements OutputSink {
        final ByteArrayOutputStream stdout = new ByteArrayOutputStream(), stderr = new ByteArrayOutputStream();
        boolean truncated;

        @Override
        public synchronized void output(boolean err, byte[] data, int offset, int length) {
            ByteArrayOutputStream s = err ? stderr : stdout;
            int keep = Math.min(length, ExecResult.OUTPUT_LIMIT - s.size());
            s.write(data, offset, keep);
            truncated |= keep < length;
        }
    }
}
