package org.nxia.gemini.internal;

import java.lang.foreign.MemorySegment;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

import org.nxia.gemini.api.CallContext;
import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.Marshalling;
import org.nxia.gemini.api.TokenInfo;
import org.nxia.gemini.api.Transport;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.PortalException;
import org.nxia.lsm.policy.api.GuestProcess;
import org.nxia.portal.api.Ref;

/**
 * One end of a Gemini session (docs/gemini-protocol.md). A poller thread
 * receives frames; incoming calls run on the session's own virtual threads,
 * at most {@value #MAX_INCOMING} at a time; senders share one lock because a
 * ring has one producer, and every send has a deadline. The server side waits
 * for HELLO and answers WELCOME; the client side (a guest, or a test peer)
 * says HELLO.
 */
final class Session implements GeminiSession {
    /** Incoming calls whose worker has not finished, cancelled ones included: the peer cannot have more. */
    static final int MAX_INCOMING = 64;
    /** Distinct calling processes a broker session remembers for gemini:sessions; the least recent go first. */
    static final int MAX_CALLERS_SHOWN = 8;

    private final Map<String, Long> callers = new java.util.LinkedHashMap<>(16, 0.75f, true) {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Long> eldest) {
            return size() > MAX_CALLERS_SHOWN;
        }
    };
    /** Spin this long on an empty transport (or a full one, sending) before sleeping on it (the fast path). */
    static final long SPIN_NANOS = 50_000;
    static final long SLEEP_NANOS = 1_000_000;
    /** How long a send waits for the peer to make room before it fails BUSY. */
    static final long SEND_GIVE_UP_NANOS = 1_000_000_000L;
    /** How long close() and the timeout timer wait for the send lock: they never wait on the peer. */
    static final long SEND_NOW_NANOS = 20_000_000L;

    private final long id;
    private final Transport transport;
    private final String profile;
    private final String vmId;
    private final Handler handler;
    private final Tokens tokens;
    private final boolean server;
    private final ExecutorService workers;
    private final ScheduledExecutorService timer;
    private final AtomicLong nextCall = new AtomicLong(1);
    private final Map<Long, Pending> outgoing = new ConcurrentHashMap<>();
    private final Map<Long, Context> incoming = new ConcurrentHashMap<>();
    private final ReentrantLock sendLock = new ReentrantLock();
    private final CompletableFuture<Void> welcomed = new CompletableFuture<>();
    private final Thread poller;
    private final long referenceThreshold;

    private volatile String peer = "";
    /** The block arena by-reference arguments live in, and its region's name; set once. */
    private volatile PortalArena references;
    private volatile String referenceRegion;
    private volatile String closeReason;
    /** Set when close() has done everything, its CLOSE frame and the transport's release included. */
    private final CountDownLatch closed = new CountDownLatch(1);

    Session(long id, Transport transport, String profile, String vmId, Handler handler, Tokens tokens, boolean server,
            ScheduledExecutorService timer, long referenceThreshold) {
        this.id = id;
        this.referenceThreshold = referenceThreshold;
        this.transport = transport;
        this.profile = profile;
        this.vmId = vmId;
        this.handler = handler;
        this.tokens = tokens;
        this.server = server;
        this.workers = Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("gemini-" + id + "-call-", 0).factory());
        this.timer = timer;
        this.poller = Thread.ofPlatform().daemon().name("gemini-session-" + id).unstarted(this::pollLoop);
    }

    /** Starts receiving; a client sends HELLO as {@code peerName} and waits up to {@code timeout} for WELCOME. */
    Session start(String peerName, Duration timeout) {
        poller.start();
        if (!server) {
            peer = "server";
            send(new Wire.Hello(Wire.VERSION, Wire.VERSION, peerName, new byte[0]), System.nanoTime() + timeout.toNanos());
            try {
                welcomed.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
            } catch (ExecutionException e) {
                throw unwrap(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new GeminiException(ErrorCode.CANCELLED, "interrupted while waiting for WELCOME");
            } catch (java.util.concurrent.TimeoutException e) {
                close("no WELCOME within " + timeout.toMillis() + " ms");
                throw new GeminiException(ErrorCode.TIMEOUT, "no WELCOME within " + timeout.toMillis() + " ms");
            }
        }
        return this;
    }

    /** Wakes the poller if it sleeps (the doorbell). */
    void wake() {
        java.util.concurrent.locks.LockSupport.unpark(poller);
    }

    // ---- receiving ----

    private void pollLoop() {
        byte[] buf = new byte[transport.maxFrame()];
        long idleSince = 0;
        try {
            while (closeReason == null) {
                int n = transport.receive(buf);
                if (n >= 0) {
                    idleSince = 0;
                    frame(buf, n);
                    continue;
                }
                String gone = transport.peerGone();
                if (gone != null) {
                    close(gone);
                    break;
                }
                long now = System.nanoTime();
                if (idleSince == 0) {
                    idleSince = now;
                } else if (now - idleSince > SPIN_NANOS) {
                    transport.await(SLEEP_NANOS);
                } else {
                    Thread.onSpinWait();
                }
            }
        } catch (GeminiException e) {
            close("transport failed: " + e.reason());
        } catch (RuntimeException e) {
            close("transport failed: " + e);
        }
        // close() closes the transport, after its CLOSE frame went out
    }

    private void frame(byte[] buf, int n) {
        Wire.Frame f;
        try {
            f = Wire.decode(buf, n);
        } catch (GeminiException e) {
            trySend(new Wire.Error(Wire.idOf(buf, n), ErrorCode.BAD_FRAME, e.reason()));
            return;
        }
        if (server && peer.isEmpty() && !(f instanceof Wire.Hello)) {
            trySend(new Wire.Error(f.id(), ErrorCode.AUTH, "say HELLO first"));
            return;
        }
        switch (f) {
            case Wire.Hello h -> hello(h);
            case Wire.Welcome w -> {
                if (w.version() != Wire.VERSION) {
                    welcomed.completeExceptionally(new GeminiException(ErrorCode.VERSION, "server chose version " + w.version()));
                } else {
                    welcomed.complete(null);
                }
            }
            case Wire.Call c -> call(c);
            case Wire.Return r -> {
                Pending p = outgoing.remove(r.id());
                if (p != null) {
                    p.complete(r.value());
                }
            }
            case Wire.Error e -> {
                Pending p = outgoing.remove(e.id());
                if (p != null) {
                    p.completeExceptionally(new GeminiException(e.code(), e.message()));
                } else if (e.id() == 0 && !welcomed.isDone()) {
                    welcomed.completeExceptionally(new GeminiException(e.code(), e.message()));
                }
            }
            case Wire.Cancel c -> {
                Context ctx = incoming.get(c.id());
                if (ctx != null && ctx.answered.compareAndSet(false, true)) {
                    ctx.cancelled = true; // the worker keeps its slot until it has really finished
                    Thread t = ctx.thread;
                    if (t != null) {
                        t.interrupt();
                    }
                    trySend(new Wire.Error(c.id(), ErrorCode.CANCELLED, "cancelled by the caller"));
                }
            }
            case Wire.Close c -> close("the peer closed the session: " + c.reason());
        }
    }

    private void hello(Wire.Hello h) {
        if (!server || !peer.isEmpty()) {
            trySend(new Wire.Error(0, ErrorCode.BAD_FRAME, "unexpected HELLO"));
            return;
        }
        if (h.minVersion() > Wire.VERSION || h.maxVersion() < Wire.VERSION) {
            trySend(new Wire.Error(0, ErrorCode.VERSION, "this host speaks version " + Wire.VERSION + " only"));
            return;
        }
        try {
            handler.authenticate(this, h);
        } catch (GeminiException e) {
            trySend(new Wire.Error(0, e.code(), e.reason()));
            return;
        }
        peer = h.peer().isEmpty() ? "anonymous" : h.peer();
        trySend(new Wire.Welcome(Wire.VERSION, transport.maxFrame(), id));
    }

    private void call(Wire.Call c) {
        if (c.process() != null && !handler.takesCallerIdentities()) {
            trySend(new Wire.Error(c.id(), ErrorCode.BAD_FRAME, "this session is no System VM broker's: a CALL may not name a caller process"));
            return;
        }
        GuestProcess caller = c.process() != null ? c.process() : handler.owner();
        if (caller != null) {
            String who = "uid " + caller.uid() + " " + (caller.exe().isEmpty() ? "?" : caller.exe());
            synchronized (callers) {
                callers.merge(who, 1L, Long::sum);
            }
        }
        if (incoming.size() >= MAX_INCOMING) {
            trySend(new Wire.Error(c.id(), ErrorCode.BUSY, MAX_INCOMING + " calls already in flight"));
            return;
        }
        Context ctx = new Context(c);
        if (incoming.putIfAbsent(c.id(), ctx) != null) {
            trySend(new Wire.Error(c.id(), ErrorCode.BAD_FRAME, "call id " + Long.toUnsignedString(c.id()) + " is already in flight"));
            return;
        }
        try {
            workers.execute(() -> serve(c, ctx));
        } catch (RejectedExecutionException e) {
            incoming.remove(c.id(), ctx); // the session closed meanwhile
        }
    }

    private void serve(Wire.Call c, Context ctx) {
        ctx.thread = Thread.currentThread();
        try {
            Wire.Frame reply = ctx.cancelled() ? null : reply(c, ctx); // cancelled before it started: never invoked
            if (reply != null && ctx.answered.compareAndSet(false, true)) {
                trySend(reply, System.nanoTime() + SEND_GIVE_UP_NANOS);
            }
        } finally {
            ctx.thread = null;
            incoming.remove(c.id(), ctx); // the call counts against MAX_INCOMING until here
        }
    }

    private Wire.Frame reply(Wire.Call c, Context ctx) {
        Wire.Frame reply;
        try {
            for (int i = 0; i < c.args().size(); i++) {
                if (c.args().get(i) instanceof Ref r) {
                    deref(r, c.service() + "." + c.method() + " argument " + (i + 1)); // refused before the callee runs
                }
            }
            Object result = handler.serve(this, c, ctx);
            reply = new Wire.Return(c.id(), result);
            Wire.encode(reply); // a result the encoding cannot carry becomes an error reply
        } catch (GeminiException e) {
            reply = new Wire.Error(c.id(), e.code(), e.reason());
        } catch (InterruptedException e) {
            reply = new Wire.Error(c.id(), ErrorCode.CANCELLED, "interrupted");
        } catch (Exception | LinkageError e) {
            reply = new Wire.Error(c.id(), ErrorCode.FAILED, c.service() + "." + c.method() + " failed: " + e);
        }
        Thread.interrupted(); // a CANCEL that came too late to stop the call must not fail its reply's send
        return reply;
    }

    // ---- sending ----

    /**
     * Sends {@code f} by {@code deadline} ({@link System#nanoTime}): a peer that does not make room
     * by then fails it BUSY. A full transport is retried after a short spin with growing pauses
     * (up to {@value #SLEEP_NANOS} ns), so a stalled peer costs no host core.
     */
    private void send(Wire.Frame f, long deadline) {
        byte[] bytes = Wire.encode(f);
        if (bytes.length > transport.maxFrame()) {
            throw new GeminiException(ErrorCode.BAD_ARGS, "a frame of " + bytes.length + " bytes exceeds the transport's "
                    + transport.maxFrame() + "-byte limit");
        }
        long start = System.nanoTime();
        try {
            if (!sendLock.tryLock(deadline - start, TimeUnit.NANOSECONDS)) {
                throw stalled(start);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new GeminiException(ErrorCode.CANCELLED, "interrupted while waiting to send");
        }
        try {
            long pause = 0;
            while (!transport.send(bytes, bytes.length)) {
                if (closeReason != null) {
                    throw new GeminiException(ErrorCode.CLOSED, closeReason);
                }
                long now = System.nanoTime();
                if (now - deadline >= 0) {
                    throw stalled(start);
                }
                if (Thread.currentThread().isInterrupted()) {
                    throw new GeminiException(ErrorCode.CANCELLED, "interrupted while waiting to send");
                }
                if (now - start < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    pause = Math.min(Math.max(2 * pause, SPIN_NANOS), SLEEP_NANOS);
                    LockSupport.parkNanos(Math.min(pause, deadline - now));
                }
            }
        } finally {
            sendLock.unlock();
        }
    }

    private GeminiException stalled(long since) {
        return new GeminiException(ErrorCode.BUSY, "session " + id + ": the peer took no frame for "
                + (System.nanoTime() - since) / 1_000_000 + " ms (it stopped reading)");
    }

    /** Sends a reply or notice; a failure here only means the peer is gone or stuck, which its calls' deadlines cover. */
    private void trySend(Wire.Frame f) {
        trySend(f, System.nanoTime() + SEND_GIVE_UP_NANOS);
    }

    private void trySend(Wire.Frame f, long deadline) {
        try {
            send(f, deadline);
        } catch (GeminiException e) {
            // the session is closing or the peer stopped draining
        }
    }

    // ---- GeminiSession ----

    @Override
    public long id() {
        return id;
    }

    @Override
    public String peer() {
        return peer;
    }

    @Override
    public String profile() {
        return profile;
    }

    @Override
    public String vmId() {
        return vmId;
    }

    @Override
    public boolean isOpen() {
        return closeReason == null;
    }

    @Override
    public String closeReason() {
        return closeReason;
    }

    @Override
    public int outstanding() {
        return outgoing.size() + incoming.size();
    }

    @Override
    public Object call(String service, String method, Duration timeout, Object... args) {
        return call(service, method, Marshalling.AUTO, timeout, args);
    }

    @Override
    public Object call(String service, String method, Marshalling marshalling, Duration timeout, Object... args) {
        return await(callAsync(service, method, List.of(), marshalling, timeout, args));
    }

    /** Waits for a call's answer; an interrupt cancels the call. */
    static Object await(CompletableFuture<Object> f) {
        try {
            return f.get();
        } catch (ExecutionException e) {
            throw unwrap(e);
        } catch (InterruptedException e) {
            f.cancel(true);
            Thread.currentThread().interrupt();
            throw new GeminiException(ErrorCode.CANCELLED, "interrupted");
        }
    }

    private static GeminiException unwrap(ExecutionException e) {
        return e.getCause() instanceof GeminiException g ? g : new GeminiException(ErrorCode.FAILED, String.valueOf(e.getCause()));
    }

    @Override
    public CompletableFuture<Object> callAsync(String service, String method, List<CapabilityToken> presented, Duration timeout,
                                               Object... args) {
        return callAsync(service, method, presented, Marshalling.AUTO, timeout, args);
    }

    @Override
    public CompletableFuture<Object> callAsync(String service, String method, List<CapabilityToken> presented,
                                               Marshalling marshalling, Duration timeout, Object... args) {
        return callAsync(null, service, method, presented, marshalling, timeout, args);
    }

    /** A call by the host bundle named {@code bundle} (null: no bundle known), which the policy is told. */
    CompletableFuture<Object> callAsync(String bundle, String service, String method, List<CapabilityToken> presented,
                                        Marshalling marshalling, Duration timeout, Object... args) {
        Wire.name(service);
        Wire.name(method);
        if (closeReason != null) {
            return CompletableFuture.failedFuture(new GeminiException(ErrorCode.CLOSED, closeReason));
        }
        try {
            handler.checkOutgoing(this, bundle, service, method);
        } catch (GeminiException e) {
            return CompletableFuture.failedFuture(e);
        }
        List<Ref> lent = new ArrayList<>(0);
        Object[] marshalled;
        try {
            marshalled = marshal(args, marshalling, lent);
        } catch (GeminiException e) {
            release(lent);
            return CompletableFuture.failedFuture(e);
        }
        long callId = nextCall.getAndIncrement();
        Pending p = new Pending(callId, lent);
        outgoing.put(callId, p);
        if (closeReason != null) { // closed while registering: close() may have missed this call
            outgoing.remove(callId);
            p.completeExceptionally(new GeminiException(ErrorCode.CLOSED, closeReason));
            return p;
        }
        // armed before the send, so the timeout covers a send the peer holds up
        long deadline = System.nanoTime() + timeout.toNanos();
        ScheduledFuture<?> expiry = timer.schedule(() -> {
            if (outgoing.remove(callId) == p
                    && p.completeExceptionally(new GeminiException(ErrorCode.TIMEOUT, service + "." + method
                    + " did not answer within " + timeout.toMillis() + " ms"))) {
                trySend(new Wire.Cancel(callId), System.nanoTime() + SEND_NOW_NANOS); // the timer never waits long
            }
        }, timeout.toNanos(), TimeUnit.NANOSECONDS);
        p.whenComplete((r, e) -> expiry.cancel(false)); // the timer drops it: no task lingers per call
        try {
            send(new Wire.Call(callId, service, method, List.copyOf(presented), Arrays.asList(marshalled)),
                    Math.min(deadline, System.nanoTime() + SEND_GIVE_UP_NANOS));
        } catch (GeminiException e) {
            if (outgoing.remove(callId) == p) {
                p.completeExceptionally(e.code() == ErrorCode.BUSY && deadline - System.nanoTime() <= 0
                        ? new GeminiException(ErrorCode.TIMEOUT, service + "." + method + " could not be sent within "
                        + timeout.toMillis() + " ms: " + e.reason())
                        : e);
            }
        }
        return p;
    }

    /**
     * Replaces each {@code byte[]} argument that goes by reference with a {@link Ref} to a block
     * of the reference region holding a copy of it; the blocks are added to {@code lent}.
     */
    private Object[] marshal(Object[] args, Marshalling marshalling, List<Ref> lent) {
        Object[] out = args;
        PortalArena arena = references;
        // a copy must leave room in the frame for the rest of the call
        long copyLimit = transport.maxFrame() - 1024L;
        for (int i = 0; i < args.length; i++) {
            if (!(args[i] instanceof byte[] a) || marshalling == Marshalling.COPY) {
                continue;
            }
            boolean wanted = marshalling == Marshalling.REFERENCE || a.length >= referenceThreshold || a.length > copyLimit;
            if (!wanted || a.length == 0) {
                continue;
            }
            Ref r = null;
            if (arena != null) {
                try {
                    r = arena.allocate(a.length);
                } catch (PortalException e) {
                    if (marshalling == Marshalling.REFERENCE) {
                        throw new GeminiException(ErrorCode.BAD_REF, "argument " + (i + 1) + " (" + a.length
                                + " bytes) cannot go by reference: " + e.getMessage());
                    }
                }
            } else if (marshalling == Marshalling.REFERENCE) {
                throw new GeminiException(ErrorCode.BAD_REF, "session " + id + " has no reference region for argument "
                        + (i + 1) + " (bind one: GeminiSession.bindReferenceRegion, or the guest's nxia_gemini_region)");
            }
            if (r == null) {
                continue; // AUTO without a usable block: copy
            }
            lent.add(r);
            MemorySegment.copy(a, 0, arena.deref(r), java.lang.foreign.ValueLayout.JAVA_BYTE, 0, a.length);
            if (out == args) {
                out = args.clone();
            }
            out[i] = r;
        }
        return out;
    }

    private void release(List<Ref> lent) {
        PortalArena arena = references;
        for (Ref r : lent) {
            try {
                arena.free(r);
            } catch (PortalException | IllegalStateException e) {
                // the peer freed it (a hostile or confused peer) or the region is gone: nothing left to release
            }
        }
    }

    /**
     * The bytes {@code ref} names in the reference region, checked now (bounds, block, generation);
     * {@link ErrorCode#BAD_REF} if it names none.
     */
    MemorySegment deref(Ref ref, String what) {
        PortalArena arena = references;
        if (arena == null) {
            throw new GeminiException(ErrorCode.BAD_REF, what + " is a reference, but session " + id
                    + " has no reference region");
        }
        return deref(arena, referenceRegion, ref, what);
    }

    /** The checks of docs/gemini-protocol.md, "Large arguments" (the {@code deref} vectors). */
    static MemorySegment deref(PortalArena arena, String referenceRegion, Ref ref, String what) {
        try {
            return arena.deref(ref).asReadOnly();
        } catch (PortalException | IllegalStateException e) {
            throw new GeminiException(ErrorCode.BAD_REF, what + ": reference " + Wire.text(ref) + " is not a live block of region "
                    + referenceRegion + ": " + e.getMessage());
        }
    }

    @Override
    public synchronized void bindReferenceRegion(String name, PortalArena arena) {
        if (references != null) {
            throw new IllegalStateException("session " + id + " already uses region " + referenceRegion + " for references");
        }
        referenceRegion = name;
        references = arena;
    }

    /** The block arena references live in, or null: a process's ring session shares its broker session's. */
    PortalArena referenceArena() {
        return references;
    }

    @Override
    public Optional<String> referenceRegion() {
        return Optional.ofNullable(referenceRegion);
    }

    @Override
    public long referenceThreshold() {
        return referenceThreshold;
    }

    /** An outgoing call; cancelling it tells the peer. */
    private final class Pending extends CompletableFuture<Object> {
        private final long callId;
        /** Blocks lent to the callee: freed before the caller sees the outcome, once. */
        private List<Ref> lent;

        Pending(long callId, List<Ref> lent) {
            this.callId = callId;
            this.lent = lent.isEmpty() ? null : lent;
        }

        private void releaseLent() {
            List<Ref> l;
            synchronized (this) {
                l = lent;
                lent = null;
            }
            if (l != null) {
                release(l);
            }
        }

        @Override
        public boolean complete(Object value) {
            releaseLent();
            return super.complete(value);
        }

        @Override
        public boolean completeExceptionally(Throwable failure) {
            releaseLent();
            return super.completeExceptionally(failure);
        }

        @Override
        public boolean cancel(boolean mayInterrupt) {
            if (outgoing.remove(callId) == this
                    && completeExceptionally(new GeminiException(ErrorCode.CANCELLED, "cancelled by this side"))) {
                trySend(new Wire.Cancel(callId));
                return true;
            }
            return false;
        }
    }

    @Override
    public <T> T proxy(Class<T> type, String service, Duration timeout) {
        return proxy(this, type, service, timeout);
    }

    /** A typed proxy whose calls go through {@code session} (a session, or a bundle's view of one). */
    static <T> T proxy(GeminiSession session, Class<T> type, String service, Duration timeout) {
        if (!type.isInterface()) {
            throw new IllegalArgumentException(type.getName() + " is not an interface");
        }
        InvocationHandler h = (proxy, m, args) -> {
            if (m.getDeclaringClass() == Object.class) {
                return switch (m.getName()) {
                    case "toString" -> "gemini proxy " + type.getSimpleName() + " for " + service + " in session " + session.id();
                    case "hashCode" -> System.identityHashCode(proxy);
                    case "equals" -> proxy == args[0];
                    default -> throw new UnsupportedOperationException(m.getName());
                };
            }
            Object[] a = args == null ? new Object[0] : args;
            if (m.getReturnType() == CompletableFuture.class) {
                return session.callAsync(service, m.getName(), List.of(), timeout, a);
            }
            return Values.convert(session.call(service, m.getName(), timeout, a), m.getReturnType(),
                    service + "." + m.getName() + " result", null);
        };
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, h));
    }

    @Override
    public CapabilityToken grant(String service, int rights, Duration ttl) {
        if (closeReason != null) {
            throw new GeminiException(ErrorCode.CLOSED, closeReason);
        }
        return tokens.mint(id, Wire.name(service), rights, ttl);
    }

    @Override
    public boolean revoke(CapabilityToken token) {
        return tokens.revoke(id, token);
    }

    @Override
    public List<TokenInfo> tokens() {
        return tokens.of(id);
    }

    @Override
    public void close(String reason) {
        synchronized (this) {
            if (closeReason != null) {
                return;
            }
            closeReason = reason;
        }
        handler.closed(this); // tokens are revoked before any caller learns that the session closed
        String gone = transport.peerGone();
        if (gone == null) {
            try {
                byte[] bytes = Wire.encode(new Wire.Close(reason));
                // a sender waiting for room sees closeReason and lets go; one that does not, or a full
                // transport, only costs the CLOSE frame: close never waits on the peer
                if (sendLock.tryLock(SEND_NOW_NANOS, TimeUnit.NANOSECONDS)) {
                    try {
                        transport.send(bytes, bytes.length);
                    } finally {
                        sendLock.unlock();
                    }
                }
            } catch (RuntimeException e) {
                // the transport is already broken
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        transport.close();
        for (Long k : List.copyOf(outgoing.keySet())) {
            Pending p = outgoing.remove(k);
            if (p != null) {
                p.completeExceptionally(new GeminiException(ErrorCode.CLOSED, "session " + id + " closed: " + reason));
            }
        }
        for (Context ctx : new ArrayList<>(incoming.values())) {
            ctx.cancelled = true; // each leaves incoming when its worker ends
        }
        workers.shutdownNow(); // interrupts the running calls; waits for none
        welcomed.completeExceptionally(new GeminiException(ErrorCode.CLOSED, reason));
        wake();
        closed.countDown();
    }

    /**
     * Waits until close() has finished: its CLOSE frame is out and the transport let go of its
     * memory (isOpen() turns false first). Memory that a new session reuses, a ring re-formatted
     * for the next ATTACH, can take no late frame of this one after this returns.
     */
    boolean awaitClosed(Duration limit) throws InterruptedException {
        return closed.await(limit.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** The processes that called through this (broker) session, most recent last, with their call counts. */
    List<String> callers() {
        synchronized (callers) {
            List<String> out = new java.util.ArrayList<>();
            callers.forEach((who, n) -> out.add(who + " (" + n + ")"));
            return out;
        }
    }

    // ---- incoming call context ----

    /** What a served call knows about itself. */
    final class Context implements CallContext {
        private final Wire.Call call;
        final AtomicBoolean answered = new AtomicBoolean();
        volatile boolean cancelled;
        volatile Thread thread;
        private volatile List<TokenInfo> checked = List.of();

        Context(Wire.Call call) {
            this.call = call;
        }

        void checked(List<TokenInfo> tokens) {
            checked = List.copyOf(tokens);
        }

        @Override
        public GeminiSession session() {
            return Session.this;
        }

        @Override
        public String service() {
            return call.service();
        }

        @Override
        public String method() {
            return call.method();
        }

        @Override
        public List<TokenInfo> tokens() {
            return checked;
        }

        @Override
        public TokenInfo require(int rights) {
            for (TokenInfo t : checked) {
                if (t.service().equals(call.service()) && (t.rights() & rights) == rights) {
                    return tokens.check(id, t.token()); // still valid now, not only when the call arrived
                }
            }
            throw new GeminiException(ErrorCode.TOKEN, call.service() + "." + call.method() + " needs a token for "
                    + call.service() + " with rights 0x" + Integer.toHexString(rights));
        }

        @Override
        public Optional<GuestProcess> process() {
            return Optional.ofNullable(call.process() != null ? call.process() : handler.owner());
        }

        @Override
        public MemorySegment read(Ref ref) {
            return deref(ref, call.service() + "." + call.method() + " reference");
        }

        @Override
        public boolean cancelled() {
            return cancelled || closeReason != null;
        }
    }
}
