package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.gemini.api.CallContext;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.lsm.policy.api.AuditEntry;
import org.nxia.lsm.policy.api.GuestProcess;
import org.nxia.lsm.policy.internal.PolicyService;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.Portals;
import org.nxia.portal.internal.Structures;

/**
 * The real agent's Gemini broker, run as an ordinary process (as in the System VM, less the VM):
 * Linux processes call a host service through it with nxia-call or raw frames; the host sees
 * each caller's identity from the kernel, the policy decides by it, and a client that forges,
 * floods, garbles or dies costs only itself.
 */
class GeminiBrokerTest {

    /** The host service: upper-cases and remembers who asked; hold() waits until released or cancelled. */
    public static final class Text {
        final AtomicReference<GuestProcess> lastCaller = new AtomicReference<>();
        final CountDownLatch release = new CountDownLatch(1);
        final AtomicInteger holding = new AtomicInteger();
        final AtomicInteger cancelled = new AtomicInteger();

        public String upper(CallContext c, String s) {
            lastCaller.set(c.process().orElse(null));
            return s.toUpperCase(java.util.Locale.ROOT);
        }

        public String lower(String s) {
            return s.toLowerCase(java.util.Locale.ROOT);
        }

        public String hold(CallContext c) throws InterruptedException {
            holding.incrementAndGet();
            try {
                if (!release.await(20, TimeUnit.SECONDS)) {
                    return "not released";
                }
                return "released";
            } catch (InterruptedException e) {
                cancelled.incrementAndGet();
                throw e;
            } finally {
                holding.decrementAndGet();
            }
        }
    }

    /** The host service for large arguments: SHA-256 of the bytes, read in place; remembers whether they were in the region. */
    public final class Digest {
        final AtomicReference<Boolean> inRegion = new AtomicReference<>();

        public String sha256(MemorySegment data) throws Exception {
            inRegion.set(data.address() >= region.address() && data.address() + data.byteSize() <= region.address() + region.byteSize());
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data.toArray(ValueLayout.JAVA_BYTE)));
        }
    }

    /** A service with a capability: open hands out a READ token, read needs one. */
    public static final class Vault {
        public org.nxia.gemini.api.CapabilityToken open(CallContext c) {
            return c.session().grant("vault", GeminiSession.READ, Duration.ofMinutes(1));
        }

        public String read(CallContext c) {
            c.require(GeminiSession.READ);
            return "the contents";
        }
    }

    static final long BLOCK = 1L << 20;
    static final long REGION_BYTES = Portals.LINUX_DAX_OFFSET + 2 * BLOCK + 4096;

    @TempDir
    Path dir;

    private final Digest digest = new Digest();
    private Path regionFile;
    private final Arena regionArena = Arena.ofShared();
    private MemorySegment region;
    private Path regions;
    private final Text text = new Text();
    private final PolicyService policy = new PolicyService();
    private GeminiImpl gemini;
    private SystemVmRings rings;
    /** The regions the VM maps, as the ring sessions see them. */
    private final Map<String, MemorySegment> mappedRegions = new java.util.concurrent.ConcurrentHashMap<>();
    private SystemVmBrokers.Listener listener;
    private Process agent;
    private Path broker;
    private Path nxiaCall;

    private static Path built(String name) {
        Path p = Path.of(System.getProperty("nxia.agent.dir", "../guest/agent/target")).resolve(name);
        assertTrue(Files.isExecutable(p), p + " is not built (make -C guest/agent)");
        return p;
    }

    @BeforeEach
    void start() throws Exception {
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile sys\n"
                + "allow out digest.*\n"
                + "allow out gemini.ring\n"
                + "allow out vault.*\n"
                + "allow in sum.*\n"
                + "allow out text.upper caller=uid:" + uid() + "\n"
                + "allow out text.lower caller=exe:/usr/libexec/*\n"
                + "allow out text.hold\n"
                + "allow in shout.* caller=host\n"
                + "allow in slow.*\n");
        policy.updated("m", config);
        gemini = new GeminiImpl(policy, Map.of("text", text, "digest", digest, "vault", new Vault()), Map.of());
        rings = new SystemVmRings(gemini, new Structures(), new SystemVmRings.Regions() {
            @Override
            public MemorySegment mapped(String vmId, String name) {
                return vmId.equals("vm-linux") ? mappedRegions.get(name) : null;
            }

            @Override
            public void ring(String vmId, String name) {
                // a file-backed region has no doorbell: the process polls
            }
        });
        Path hostSocket = dir.resolve("host.sock");
        // as for a running System VM, whose region "gemini" (a file here, as a file-backed region) holds its reference arena
        regionFile = dir.resolve("gemini.img");
        try (FileChannel ch = FileChannel.open(regionFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            region = ch.map(FileChannel.MapMode.READ_WRITE, 0, REGION_BYTES, regionArena);
        }
        PortalArena arena = new Structures().formatArena(region.asSlice(Portals.LINUX_DAX_OFFSET), (int) BLOCK);
        regions = Files.createDirectory(dir.resolve("regions"));
        listener = new SystemVmBrokers(gemini, vm -> vm.equals("vm-linux") ? arena : null).listen("vm-linux", "sys", hostSocket);
        broker = dir.resolve("gemini.sock");
        nxiaCall = built("nxia-call").toRealPath();
        agent = new ProcessBuilder(built("nxia-agent").toString(), "--unix", dir.resolve("ctl.sock").toString(),
                "--secret", "00112233445566778899aabbccddeeff", "--broker", broker.toString(), "--gemini-unix", hostSocket.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("agent.log").toFile()).start();
        long end = System.nanoTime() + 10_000_000_000L;
        while (!Files.exists(broker) && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertTrue(Files.exists(broker), "the agent made no broker socket: " + log());
    }

    @AfterEach
    void stop() throws Exception {
        text.release.countDown();
        agent.destroy();
        agent.waitFor(5, TimeUnit.SECONDS);
        listener.close();
        gemini.deactivate();
        regionArena.close();
    }

    private String log() throws IOException {
        Path l = dir.resolve("agent.log");
        return Files.exists(l) ? Files.readString(l) : "";
    }

    private static long uid() throws IOException {
        return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
    }

    record Run(int status, String out, String err, long pid) {
    }

    private Run nxiaCall(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(nxiaCall.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("NXIA_GEMINI_SOCKET", broker.toString());
        pb.environment().put("NXIA_REGION_DIR", regions.toString());
        Process p = pb.start();
        p.getOutputStream().close();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "nxia-call did not end");
        return new Run(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8),
                new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8), p.pid());
    }

    @Test
    void aProcessCallsTheHostWithNxiaCallAndTheHostKnowsWhichProcess() throws Exception {
        Run r = nxiaCall("text", "upper", "hello from linux");
        assertEquals(0, r.status(), r.err() + log());
        assertEquals("HELLO FROM LINUX\n", r.out());
        GuestProcess who = text.lastCaller.get();
        assertEquals(new GuestProcess(uid(), who.gid(), r.pid(), nxiaCall.toString()), who, "the kernel's word, not the client's");

        Run denied = nxiaCall("text", "lower", "X");
        assertEquals(64 + ErrorCode.DENIED.wire(), denied.status(), denied.err());
        assertTrue(denied.err().startsWith("nxia-call: DENIED: "), denied.err());
        AuditEntry e = policy.audit(10).getLast();
        assertEquals("lower", e.request().method());
        assertEquals(new GuestProcess(uid(), who.gid(), denied.pid(), nxiaCall.toString()), e.request().process(),
                "the audit log says which process was denied");

        Run noService = nxiaCall("nope", "x");
        assertEquals(64 + ErrorCode.DENIED.wire(), noService.status(), "the policy answers before the lookup: " + noService.err());
        Run usage = nxiaCall("only-one-word");
        assertEquals(2, usage.status());
        assertTrue(usage.err().startsWith("usage: nxia-call"), usage.err());
        Run badArg = nxiaCall("text", "upper", "i32:x");
        assertEquals(2, badArg.status());
        assertTrue(badArg.err().contains("not a 32-bit integer"), badArg.err());
        assertEquals(1, gemini.sessions().size(), "one Gemini session for all the VM's processes");
    }

    @Test
    void aCProgramOnLibnxiaCallsTheHostAndServesAFunction() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(built("libnxia-demo").toString(), "text", "upper", "from c");
        pb.environment().put("NXIA_GEMINI_SOCKET", broker.toString());
        Process demo = pb.redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            java.io.BufferedReader out = new java.io.BufferedReader(new java.io.InputStreamReader(demo.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("FROM C", out.readLine());
            assertEquals(demo.pid(), text.lastCaller.get().pid(), "the kernel names the C program as the caller");
            assertEquals("serving demo.echo", out.readLine());
            GeminiSession s = gemini.sessionOfVm("vm-linux").orElseThrow();
            Hashtable<String, Object> config = new Hashtable<>();
            config.put("manifest", "profile sys\nallow out text.upper caller=uid:" + uid() + "\nallow in demo.echo\n");
            policy.updated("m", config);
            assertEquals("echoed by C", s.call("demo", "echo", Duration.ofSeconds(10), "echoed by C"));
            assertTrue(demo.waitFor(10, TimeUnit.SECONDS));
            assertEquals(0, demo.exitValue());
        } finally {
            demo.destroyForcibly();
        }
    }

    @Test
    void aProcessCallsOverPortalRingsOfItsOwnUnderItsIdentityAndTheSessionEndsWithIt() throws Exception {
        // region "rings": a file, as the host maps a file-backed region; libnxia maps it from 2 MiB on, as Linux shows device DAX
        Path ringsFile = dir.resolve("rings.img");
        try (FileChannel ch = FileChannel.open(ringsFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            mappedRegions.put("rings", ch.map(FileChannel.MapMode.READ_WRITE, 0, Portals.LINUX_DAX_OFFSET + (1 << 20), regionArena));
        }
        mappedRegions.put("gemini", region);
        Files.createSymbolicLink(regions.resolve("rings"), ringsFile);
        Files.createSymbolicLink(regions.resolve("gemini"), regionFile);

        Run r = nxiaCall("--ring", "rings", "text", "upper", "over the ring");
        assertEquals(0, r.status(), r.err() + log());
        assertEquals("OVER THE RING\n", r.out());
        GuestProcess who = text.lastCaller.get();
        assertEquals(new GuestProcess(uid(), who.gid(), r.pid(), nxiaCall.toString()), who,
                "a call on the rings carries the identity the broker took from the kernel when the process asked");
        waitUntil(() -> rings.sessionsOf("vm-linux") == 0);
        assertEquals(1, gemini.sessions().size(), "the ring session ended with its process; the broker's stays");

        Run timed = nxiaCall("-n", "50", "--ring", "rings@0x240000", "text", "upper", "x");
        assertEquals(0, timed.status(), timed.err());
        assertEquals(50, timed.out().lines().count(), timed.out());

        byte[] big = new byte[(int) BLOCK - 7];
        new java.util.Random(6).nextBytes(big);
        Path file = Files.write(dir.resolve("big"), big);
        Run ref = nxiaCall("--ring", "rings", "digest", "sha256", "@" + file);
        assertEquals(0, ref.status(), ref.err() + log());
        assertEquals(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(big)) + "\n", ref.out());
        assertTrue(digest.inRegion.get(), "1 MiB crossed the ring session as a reference into region gemini");

        Run misplaced = nxiaCall("--ring", "rings@1M", "text", "upper", "x");
        assertEquals(3, misplaced.status(), misplaced.err());
        assertTrue(misplaced.err().contains("do not fit the region"), misplaced.err());
        mappedRegions.remove("rings");
        Run unmapped = nxiaCall("--ring", "rings", "text", "upper", "x");
        assertEquals(64 + ErrorCode.BAD_ARGS.wire(), unmapped.status(), unmapped.err());
        assertTrue(unmapped.err().contains("does not map region rings"), unmapped.err());
        Run tokens = nxiaCall("--ring", "rings", "-T", "00112233445566778899aabbccddeeff", "vault", "read");
        assertEquals(2, tokens.status(), tokens.err());
        waitUntil(() -> rings.sessionsOf("vm-linux") == 0 && gemini.sessions().size() == 1);
    }

    private static void waitUntil(java.util.function.BooleanSupplier done) throws InterruptedException {
        long end = System.nanoTime() + 5_000_000_000L;
        while (!done.getAsBoolean()) {
            assertTrue(System.nanoTime() < end, "not within 5 s");
            Thread.sleep(5);
        }
    }

    @Test
    void theBenchmarkModesTimeRepeatedCallsAndEchoInProcess() throws Exception {
        Run timed = nxiaCall("-n", "20", "text", "upper", "x");
        assertEquals(0, timed.status(), timed.err());
        List<String> lines = timed.out().lines().toList();
        assertEquals(20, lines.size(), timed.out());
        assertTrue(lines.stream().allMatch(l -> Long.parseLong(l) > 0), timed.out());

        ProcessBuilder pb = new ProcessBuilder(built("nxia-serve").toString(), "-e", "shout", "it");
        pb.environment().put("NXIA_GEMINI_SOCKET", broker.toString());
        Process echo = pb.start();
        try {
            assertEquals("serving shout.it",
                    new java.io.BufferedReader(new java.io.InputStreamReader(echo.getInputStream(), StandardCharsets.UTF_8)).readLine());
            GeminiSession s = gemini.sessionOfVm("vm-linux").orElseThrow();
            assertEquals("same", s.call("shout", "it", Duration.ofSeconds(10), "same"));
            assertEquals(null, s.call("shout", "it", Duration.ofSeconds(10)));
            assertTrue(echo.descendants().findAny().isEmpty(), "-e runs no program");
        } finally {
            echo.destroyForcibly();
        }
    }

    /** The agent's control session, as the host's snapshot code holds it. */
    private org.nxia.control.api.AgentSession control() throws IOException {
        return new org.nxia.control.internal.SocketControlConnector().connect(dir.resolve("ctl.sock"),
                HexFormat.of().parseHex("00112233445566778899aabbccddeeff"));
    }

    private static <T> java.util.concurrent.CompletableFuture<T> async(java.util.concurrent.Callable<T> what) {
        java.util.concurrent.CompletableFuture<T> f = new java.util.concurrent.CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try {
                f.complete(what.call());
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        return f;
    }

    /** Call 1 of {@code holder} is text.hold, in flight at the host until {@code text.release}. */
    private void holdOneCall(Client holder) throws Exception {
        holder.send(Wire.encode(new Wire.Call(1, "text", "hold", List.of(), List.of())));
        long end = System.nanoTime() + 10_000_000_000L;
        while (text.holding.get() < 1 && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertEquals(1, text.holding.get(), "the call is held at the host");
    }

    /**
     * Issue 15's drain: a QUIESCE waits for the call in flight (it may hold Portal references a
     * process writes or the host reads), a call a process starts meanwhile waits unread until
     * RESUME, and the host's calls into the VM are refused BUSY until then.
     */
    @Test
    void aQuiesceWaitsForTheCallsInFlightAndHoldsNewOnesUntilTheResume() throws Exception {
        try (Client holder = new Client().hello(); Client late = new Client().hello(); org.nxia.control.api.AgentSession s = control()) {
            holdOneCall(holder);
            var quiesced = async(() -> {
                s.quiesce();
                return System.nanoTime();
            });
            Thread.sleep(500);
            assertFalse(quiesced.isDone(), "no QUIESCE answer while a call is in flight");
            late.send(upper(7, "after the quiesce"));
            var lateAnswer = async(late::next);
            GeminiSession host = gemini.sessionOfVm("vm-linux").orElseThrow();
            GeminiException busy = assertThrows(GeminiException.class, () -> host.call("slow", "x", Duration.ofSeconds(5)));
            assertEquals(ErrorCode.BUSY, busy.code(), busy.getMessage());
            assertTrue(busy.getMessage().contains("quiescing for a snapshot"), busy.getMessage());

            long released = System.nanoTime();
            text.release.countDown();
            assertEquals("RETURN id=1 value=str:\"released\"", holder.next());
            assertTrue(quiesced.get(10, TimeUnit.SECONDS) >= released, "quiesced only after the call ended");
            Thread.sleep(300);
            assertFalse(lateAnswer.isDone(), "a call started during the quiesce waits for the resume: " + lateAnswer);

            s.resume();
            assertEquals("RETURN id=7 value=str:\"AFTER THE QUIESCE\"", lateAnswer.get(10, TimeUnit.SECONDS));
        }
    }

    /** A call that outlasts the drain's wait: the QUIESCE is refused, saying so, and nothing stays held. */
    @Test
    void aQuiesceThatCannotDrainIsRefusedAndTheVmRunsOn() throws Exception {
        try (Client holder = new Client().hello(); Client other = new Client().hello(); org.nxia.control.api.AgentSession s = control()) {
            holdOneCall(holder);
            org.nxia.control.api.ControlException e = assertThrows(org.nxia.control.api.ControlException.class, s::quiesce);
            assertTrue(e.getMessage().contains("1 Gemini call of this System VM's processes still in flight after 5000 ms"), e.getMessage());
            other.send(upper(2, "not held"));
            assertEquals("RETURN id=2 value=str:\"NOT HELD\"", other.next(), "the broker lets calls through again");
            assertEquals("hi\n", s.exec("/bin/echo", "hi").stdoutText(), "and the agent takes work again");
            text.release.countDown();
            assertEquals("RETURN id=1 value=str:\"released\"", holder.next());
        }
    }

    /** A raw client of the broker: frames in the stream framing. */
    private final class Client implements AutoCloseable {
        final SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(broker));

        Client() throws IOException {
        }

        void send(byte[] frame) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(4 + frame.length).order(ByteOrder.LITTLE_ENDIAN).putInt(frame.length).put(frame).flip();
            while (b.hasRemaining()) {
                ch.write(b);
            }
        }

        Client hello() throws IOException {
            send(Wire.encode(new Wire.Hello(1, 1, "raw", new byte[0])));
            String w = next();
            assertTrue(w.startsWith("WELCOME id=0 version=1 max_frame=24576 session="), w);
            return this;
        }

        String next() throws IOException {
            ByteBuffer len = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            if (!read(len)) {
                return "EOF";
            }
            ByteBuffer f = ByteBuffer.allocate(len.flip().getInt());
            if (!read(f)) {
                return "EOF";
            }
            return Wire.text(Wire.decode(f.array(), f.capacity()));
        }

        private boolean read(ByteBuffer b) throws IOException {
            while (b.hasRemaining()) {
                if (ch.read(b) < 0) {
                    return false;
                }
            }
            return true;
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }

    private static byte[] upper(long id, String s) {
        return Wire.encode(new Wire.Call(id, "text", "upper", List.of(), List.of(s)));
    }

    @Test
    void aClientCannotNameAnotherCallerOrSkipHelloAndGarbageCostsOnlyItsConnection() throws Exception {
        try (Client forger = new Client()) {
            forger.send(upper(1, "x"));
            assertEquals("ERROR id=1 code=3 message=\"say HELLO first\"", forger.next());
            forger.hello();
            byte[] forged = Wire.encode(new Wire.Call(2, "text", "upper", List.of(), List.of("x"), new GuestProcess(0, 0, 1, "/sbin/init")));
            forger.send(forged);
            String refused = forger.next();
            assertTrue(refused.startsWith("ERROR id=2 code=1 message=\"bad version, flags or reserved bytes"), refused);
            forger.send(upper(3, "still here"));
            assertEquals("RETURN id=3 value=str:\"STILL HERE\"", forger.next(), "the connection survives a refused frame");
            assertEquals(ProcessHandle.current().pid(), text.lastCaller.get().pid(), "the host saw this process, not the forged one");
        }
        try (Client garbage = new Client(); Client bystander = new Client().hello()) {
            garbage.send(new byte[0]); // a frame shorter than a header: the stream is out of step
            assertEquals("ERROR id=0 code=1 message=\"a frame must be 16 to 24576 bytes: the stream is out of step\"", garbage.next());
            assertEquals("EOF", garbage.next());
            bystander.send(upper(7, "unharmed"));
            assertEquals("RETURN id=7 value=str:\"UNHARMED\"", bystander.next());
        }
    }

    @Test
    void aFloodingProcessIsBoundedAndAProcessThatDiesHasItsCallsCancelled() throws Exception {
        try (Client flooder = new Client().hello(); Client other = new Client().hello()) {
            for (int i = 1; i <= 17; i++) {
                flooder.send(Wire.encode(new Wire.Call(i, "text", "hold", List.of(), List.of())));
            }
            assertEquals("ERROR id=17 code=14 message=\"16 calls of this process are in flight\"", flooder.next());
            flooder.send(Wire.encode(new Wire.Call(3, "text", "hold", List.of(), List.of())));
            assertTrue(flooder.next().startsWith("ERROR id=3 code=1"), "a client's ids are unique in flight");
            long end = System.nanoTime() + 10_000_000_000L;
            while (text.holding.get() < 16 && System.nanoTime() < end) {
                Thread.sleep(10);
            }
            assertEquals(16, text.holding.get());
            other.send(upper(1, "other process"));
            assertEquals("RETURN id=1 value=str:\"OTHER PROCESS\"", other.next(), "another process still gets through");
            flooder.close(); // the process died: the broker cancels its calls at the host
            while (text.holding.get() > 0 && System.nanoTime() < end) {
                Thread.sleep(10);
            }
            assertEquals(0, text.holding.get(), "no call of the dead process is left running");
            assertEquals(16, text.cancelled.get());
        }
        GeminiSession first = gemini.sessionOfVm("vm-linux").orElseThrow();
        first.close("the host ends the session");
        Run again = nxiaCall("text", "upper", "after");
        assertEquals(0, again.status(), "the broker connects again for the next call: " + again.err() + log());
        assertEquals("AFTER\n", again.out());
        GeminiSession second = gemini.sessionOfVm("vm-linux").orElseThrow();
        assertTrue(second.id() != first.id() && second.isOpen());
    }

    @Test
    void theVmsListenerTakesOneSessionAtATimeAndItsEndEndsTheSession() throws Exception {
        assertEquals(0, nxiaCall("text", "upper", "x").status());
        GeminiSession s = gemini.sessionOfVm("vm-linux").orElseThrow();
        try (SocketChannel second = SocketChannel.open(UnixDomainSocketAddress.of(dir.resolve("host.sock")))) {
            second.configureBlocking(true);
            assertEquals(-1, second.read(ByteBuffer.allocate(1)), "a second connection of the VM is closed: one session per VM");
        }
        assertTrue(s.isOpen(), "the open session is kept");
        listener.close(); // the System VM stopped
        assertFalse(s.isOpen());
        assertFalse(listener.listening());
        assertFalse(Files.exists(dir.resolve("host.sock")), "the socket goes with the VM");
        Run after = nxiaCall("text", "upper", "x");
        assertEquals(64 + ErrorCode.CLOSED.wire(), after.status(), after.err());
        assertTrue(after.err().contains("cannot reach the host's Gemini listener"), after.err());
    }

    private Process serve(String service, String method, String... program) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(built("nxia-serve").toString(), service, method));
        cmd.addAll(List.of(program));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT);
        pb.environment().put("NXIA_GEMINI_SOCKET", broker.toString());
        pb.environment().put("NXIA_REGION_DIR", regions.toString());
        Process p = pb.start();
        String line = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)).readLine();
        assertEquals("serving " + service + "." + method, line);
        return p;
    }

    @Test
    void aTokenOneProcessGotIsPresentedByAnotherAndAForgedOneIsRefused() throws Exception {
        Run open = nxiaCall("vault", "open");
        assertEquals(0, open.status(), open.err());
        assertTrue(open.out().matches("token:[0-9a-f]{32}\n"), open.out());
        Run without = nxiaCall("vault", "read");
        assertEquals(64 + ErrorCode.TOKEN.wire(), without.status(), without.err());
        Run with = nxiaCall("-T", open.out().strip(), "vault", "read");
        assertEquals(0, with.status(), with.err());
        assertEquals("the contents\n", with.out());
        Run forged = nxiaCall("-T", "00112233445566778899aabbccddeeff", "vault", "read");
        assertEquals(64 + ErrorCode.TOKEN.wire(), forged.status(), forged.err());
        Run bad = nxiaCall("-T", "xyz", "vault", "read");
        assertEquals(2, bad.status());
        assertTrue(bad.err().contains("a token is 32 hex digits"), bad.err());
    }

    @Test
    void largeArgumentsCrossAsReferencesIntoTheRegionBothWaysAndWithoutItAreRefused() throws Exception {
        byte[] big = new byte[(int) BLOCK - 7];   // past a frame: only a reference can carry it
        new java.util.Random(5).nextBytes(big);
        Path file = Files.write(dir.resolve("big"), big);
        String expected = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(big));

        Run noRegion = nxiaCall("digest", "sha256", "@" + file);
        assertEquals(64 + ErrorCode.BAD_REF.wire(), noRegion.status(), noRegion.err());
        assertTrue(noRegion.err().contains("no region gemini to pass it by reference"), noRegion.err());

        Files.createSymbolicLink(regions.resolve("gemini"), regionFile);
        Run l2h = nxiaCall("digest", "sha256", "@" + file);
        assertEquals(0, l2h.status(), l2h.err() + log());
        assertEquals(expected + "\n", l2h.out());
        assertTrue(digest.inRegion.get(), "the host read the bytes in the region, in place");
        PortalArena host = new Structures().attachArena(region.asSlice(Portals.LINUX_DAX_OFFSET));
        assertEquals(host.capacity() / BLOCK, freeBlocks(host), "the process freed its block when the answer came");

        Process sum = serve("sum", "it", "sha256sum");
        try {
            GeminiSession s = gemini.sessionOfVm("vm-linux").orElseThrow();
            byte[] answer = (byte[]) s.call("sum", "it", Duration.ofSeconds(20), big);
            assertEquals(expected + "  -\n", new String(answer, StandardCharsets.US_ASCII), "the program read the host's bytes from the region");
            assertEquals(host.capacity() / BLOCK, freeBlocks(host), "the host freed its block when the answer came");
        } finally {
            sum.destroyForcibly();
        }
    }

    /** Blocks a fresh allocation loop can take, freed again. */
    private static long freeBlocks(PortalArena a) {
        List<org.nxia.portal.api.Ref> taken = new ArrayList<>();
        try {
            while (true) {
                taken.add(a.allocate(1));
            }
        } catch (RuntimeException full) {
            taken.forEach(a::free);
            return taken.size();
        }
    }

    @Test
    void theHostCallsAProgramServedByALinuxProcessWithTimeoutsAndTheProcessesEnd() throws Exception {
        Process shout = serve("shout", "it", "tr", "a-z", "A-Z");
        Process slow = serve("slow", "it", "sleep", "30");
        Process failing = serve("slow", "fails", "sh", "-c", "echo oops >&2; exit 3");
        try {
            GeminiSession s = gemini.sessionOfVm("vm-linux").orElseThrow();
            Duration t = Duration.ofSeconds(10);
            assertArrayEquals("HELLO".getBytes(StandardCharsets.UTF_8), (byte[]) s.call("shout", "it", t, "hello".getBytes(StandardCharsets.UTF_8)));
            assertArrayEquals("ABC".getBytes(StandardCharsets.UTF_8), (byte[]) s.call("shout", "it", t, "abc"), "a string argument is its UTF-8");
            assertArrayEquals(new byte[0], (byte[]) s.call("shout", "it", t));
            GeminiException failed = assertThrows(GeminiException.class, () -> s.call("slow", "fails", t));
            assertEquals(ErrorCode.FAILED, failed.code());
            assertEquals("sh exited with 3: oops\n", failed.reason());
            assertEquals(ErrorCode.BAD_ARGS, assertThrows(GeminiException.class, () -> s.call("shout", "it", t, 1L)).code());
            assertEquals(ErrorCode.NO_SERVICE, assertThrows(GeminiException.class, () -> s.call("shout", "other", t)).code());
            assertEquals(ErrorCode.DENIED, assertThrows(GeminiException.class, () -> s.call("text", "upper", t, "x")).code(),
                    "the manifest decides which functions the host may call");

            ProcessBuilder twinBuilder = new ProcessBuilder(built("nxia-serve").toString(), "shout", "it", "cat");
            twinBuilder.environment().put("NXIA_GEMINI_SOCKET", broker.toString());
            Process twin = twinBuilder.start();
            assertTrue(twin.waitFor(10, TimeUnit.SECONDS));
            assertEquals(64 + ErrorCode.BUSY.wire(), twin.exitValue(), "one process serves a function");

            GeminiException timedOut = assertThrows(GeminiException.class, () -> s.call("slow", "it", Duration.ofMillis(300)));
            assertEquals(ErrorCode.TIMEOUT, timedOut.code());
            long end = System.nanoTime() + 10_000_000_000L;
            while (slow.descendants().findAny().isPresent() && System.nanoTime() < end) {
                Thread.sleep(10);
            }
            assertFalse(slow.descendants().findAny().isPresent(), "the cancelled call's program was killed");

            java.util.concurrent.CompletableFuture<Object> pending = s.callAsync("slow", "it", List.of(), Duration.ofSeconds(30));
            Thread.sleep(300);
            long killed = System.nanoTime();
            slow.destroyForcibly(); // the serving process dies mid-call
            java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> pending.get(10, TimeUnit.SECONDS));
            GeminiException closed = (GeminiException) e.getCause();
            assertEquals(ErrorCode.CLOSED, closed.code());
            assertTrue(closed.reason().startsWith("the serving process (pid " + slow.pid() + ") ended"), closed.reason());
            assertTrue(System.nanoTime() - killed < 5_000_000_000L, "failed promptly");
            assertEquals(ErrorCode.NO_SERVICE, assertThrows(GeminiException.class, () -> s.call("slow", "it", t)).code(),
                    "its functions went with it");
        } finally {
            shout.destroyForcibly();
            slow.destroyForcibly();
            failing.destroyForcibly();
        }
    }

    /**
     * Random and half-right frames from several clients at once, against the agent built with
     * ASan and UBSan (any memory error or undefined behaviour kills it): the agent lives, each
     * garbling client costs only itself, and a well-behaved process is served after every round.
     */
    @Test
    void randomFramesFromManyClientsNeverHurtTheBrokerOrTheOtherProcesses() throws Exception {
        Path asan = built("nxia-agent-asan");
        agent.destroy();
        agent.waitFor(5, TimeUnit.SECONDS);
        Files.delete(broker);
        agent = new ProcessBuilder(asan.toString(), "--unix", dir.resolve("ctl2.sock").toString(),
                "--secret", "00112233445566778899aabbccddeeff", "--broker", broker.toString(), "--gemini-unix", dir.resolve("host.sock").toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("agent.log").toFile()).start();
        long end = System.nanoTime() + 10_000_000_000L;
        while (!Files.exists(broker) && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        long seed = Long.getLong("nxia.fuzz.seed", System.nanoTime());
        java.util.Random r = new java.util.Random(seed);
        int rounds = 40;
        for (int round = 0; round < rounds; round++) {
            List<Client> garblers = new ArrayList<>();
            for (int k = 0; k < 3; k++) {
                Client c = new Client();
                garblers.add(c);
                if (r.nextBoolean()) {
                    c.hello();
                }
            }
            for (int i = 0; i < 25; i++) {
                Client c = garblers.get(r.nextInt(garblers.size()));
                try {
                    c.ch.write(ByteBuffer.wrap(garbage(r)));
                } catch (IOException e) {
                    // the broker dropped this client: as it should for a broken stream
                }
            }
            for (Client c : garblers) {
                c.close();
            }
            assertTrue(agent.isAlive(), "seed " + seed + ", round " + round + ": the agent died: " + log());
            try (Client good = new Client().hello()) {
                good.send(upper(1, "round " + round));
                String answer;
                do {
                    answer = good.next();
                } while (answer.startsWith("ERROR id=0"));
                assertEquals("RETURN id=1 value=str:\"ROUND " + round + "\"", answer, "seed " + seed);
            }
        }
        System.out.println("GeminiBrokerTest: " + rounds * 75 + " random frames (seed " + seed + "), agent alive under ASan/UBSan");
    }

    /** One length-prefixed frame, random in every way a hostile process might choose. */
    private static byte[] garbage(java.util.Random r) {
        int kind = r.nextInt(6);
        byte[] body;
        switch (kind) {
            case 0 -> body = Wire.encode(new Wire.Call(r.nextLong(), "broker", r.nextBoolean() ? "export" : "x",
                    List.of(), r.nextBoolean() ? List.of("svc" + r.nextInt(3), "m" + r.nextInt(3)) : List.of(r.nextLong())));
            case 1 -> body = Wire.encode(new Wire.Call(r.nextInt(4), "text", r.nextBoolean() ? "upper" : "hold", List.of(), List.of("x")));
            case 2 -> body = Wire.encode(r.nextBoolean() ? new Wire.Return(r.nextInt(4), "late") : new Wire.Cancel(r.nextInt(20)));
            default -> {
                body = new byte[r.nextInt(3) == 0 ? r.nextInt(16) : 16 + r.nextInt(200)];
                r.nextBytes(body);
                if (body.length >= 16 && r.nextBoolean()) {
                    body[0] = (byte) (1 + r.nextInt(8));
                    body[1] = 1;
                    body[2] = (byte) (r.nextBoolean() ? 0 : r.nextInt(3));
                    body[3] = 0;
                    java.util.Arrays.fill(body, 4, 8, (byte) 0);
                }
            }
        }
        if (body.length >= 16 && r.nextInt(4) == 0) { // cut short, or a field's length made wrong
            body = java.util.Arrays.copyOf(body, 16 + r.nextInt(body.length - 15));
        }
        int len = r.nextInt(20) == 0 ? r.nextInt() : body.length; // a lying length now and then
        ByteBuffer b = ByteBuffer.allocate(4 + body.length).order(ByteOrder.LITTLE_ENDIAN).putInt(len).put(body);
        return b.array();
    }
}
