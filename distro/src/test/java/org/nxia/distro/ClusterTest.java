package org.nxia.distro;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * NXIA nodes as separate processes on loopback, found through a real ZooKeeper server (a
 * process of its own, from ZooKeeper's Maven jars): nodes b and c serve, node a is an operator's
 * {@code ./nxia --assembly cluster} running one Gogo script against them (a new process each time). Only the remote run
 * needs KVM; without {@code /dev/kvm} it says so and the rest still runs.
 */
class ClusterTest {

    @TempDir
    Path tmp;

    private final List<Process> processes = new ArrayList<>();

    @AfterEach
    void stopAll() throws InterruptedException {
        for (Process p : processes) {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aNodeFindsAnotherThroughZooKeeperRunsAGuestThereAndSeesItGoWhenItDies() throws Exception {
        int zk = freePort();
        Process zookeeper = start("zookeeper", zookeeperArgs(zk));
        awaitListening(zookeeper, zk, "ZooKeeper");

        int bPort = freePort();
        int cPort = freePort();
        Process b = node("b", zk, bPort, null);
        node("c", zk, cPort, null);
        awaitListening(b, bPort, "node b's endpoint");
        awaitListening(processes.getLast(), cPort, "node c's endpoint");

        // discovery is asynchronous: node a asks until b and c are there, within the test's deadline
        String listed = untilContains(() -> script("a", zk, "echo (node:list)"), 60, "| b ", "| c ");
        assertTrue(Pattern.compile("\\| a +\\| this node +\\| cluster .*\\| ok +\\|").matcher(listed).find(), listed);
        assertTrue(Pattern.compile("\\| b +\\| remote +\\| cluster .*\\| ok +\\|").matcher(listed).find(), listed);
        assertTrue(Pattern.compile("\\| c +\\| remote +\\| cluster .*\\| ok +\\|").matcher(listed).find(), listed);

        String refused = script("a", zk, "echo (node:create b ../../bin/sh)");
        assertTrue(refused.contains("not a guest kit name"), "a path is refused before it leaves node a:\n" + refused);

        if (Files.exists(Path.of("/dev/kvm"))) {
            String ran = script("a", zk, "echo (node:run b hello); echo (node:vms)");
            assertTrue(ran.contains("hello from an NXIA micro-VM"), "node b ran the guest and node a printed its console:\n" + ran);
            assertTrue(Pattern.compile("b/vm-\\d+ exited with status 0").matcher(ran).find(), ran);
            assertTrue(ran.contains("no VMs on any node"), "node:run destroyed the VM on node b:\n" + ran);
            migrateACounterFromBToC(zk);
        } else {
            System.out.println("ClusterTest: the remote run and the migration NOT RUN: no /dev/kvm on this host (no node could run a guest)");
        }

        // ZooKeeper restarted on its data: node b's endpoint is announced again and node a finds it
        zookeeper.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        zookeeper = start("zookeeper", zookeeperArgs(zk));
        awaitListening(zookeeper, zk, "ZooKeeper, restarted");
        // b's endpoint of before the restart stays in ZooKeeper until its old session expires: node a uses the newer
        untilMatches(() -> script("a", zk, "echo (node:list)"), Pattern.compile("\\| b +\\| remote +\\| cluster .*\\| ok +\\|"), 60);

        long t0;
        if (Files.exists(Path.of("/dev/kvm"))) {
            // a run on b in flight when b is killed: node a's next call fails, within fastbin's timeout
            Process running = node("a", zk, freePort(), "echo (node:run -t 5m b spin)");
            try {
                untilContains(() -> script("watch", zk, "echo (node:vms)"), "| spin ", 60);
            } catch (AssertionError e) {
                throw new AssertionError(e.getMessage() + "\nnode a, running spin on b:\n" + output("node-a"), e);
            }
            b.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            t0 = System.nanoTime();
            assertTrue(running.waitFor(30, TimeUnit.SECONDS), "node a's run still waits 30 s after b died:\n" + output("node-a"));
            double failedAfter = (System.nanoTime() - t0) / 1e9;
            String out = output("node-a");
            assertTrue(running.exitValue() != 0 && out.contains("nxia: "), "the run on b failed with an error:\n" + out);
            System.out.printf("ClusterTest: a run in flight on b failed %.1f s after b was killed: %s%n", failedAfter,
                    out.lines().filter(l -> l.startsWith("nxia: ")).findFirst().orElse(""));
        } else {
            b.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        // b's endpoint is gone from ZooKeeper once its session expires (Aries's 3 s timeout)
        t0 = System.nanoTime();
        String after = untilAbsent(() -> script("a", zk, "echo (node:list)"), "| b ", 60);
        assertTrue(after.contains("| a "), after);
        System.out.printf("ClusterTest: node b left node a's list %.1f s after it was killed%n", (System.nanoTime() - t0) / 1e9);
        assertTrue(zookeeper.isAlive(), "ZooKeeper still runs");
    }

    /**
     * A counter that node a made on node b moves to node c, at a's request, and goes on there: c's
     * console goes on past the last tick b printed, one by one, and never shows the boot line (a
     * reboot would); b keeps no copy.
     */
    private void migrateACounterFromBToC(int zk) throws Exception {
        String created = script("a", zk, "vm = node:create -a 65536 b counter; node:start $vm; echo $vm");
        Matcher onB = Pattern.compile("^(b/vm-\\d+)$", Pattern.MULTILINE).matcher(created);
        assertTrue(onB.find(), created);
        String from = onB.group(1);
        long lastOnB = lastTick(untilContains(() -> script("a", zk, "echo (node:console " + from + ")"), "tick ", 60));
        String moved = script("a", zk, "echo (node:migrate " + from + " c); echo (node:vms)");
        Matcher m = Pattern.compile(Pattern.quote(from) + " moved to (c/vm-\\d+), pre-copy, \\d+ rounds? while it ran: ([^,]+) sent \\(([^)]+)"
                + " while it ran\\), downtime ([0-9.]+) ms, total ([0-9.]+) ms").matcher(moved);
        assertTrue(m.find(), "a running counter moves pre-copy:\n" + moved);
        assertFalse(m.group(3).equals("0.0 MiB"), "RAM was sent while it ran:\n" + moved);
        assertFalse(moved.contains("| " + from + " "), "b destroyed its copy once c had started it:\n" + moved);
        System.out.println("ClusterTest: pre-copy migration " + m.group(2) + " sent, " + m.group(3) + " of it while it ran; downtime "
                + m.group(4) + " ms, total " + m.group(5) + " ms");
        String to = m.group(1);
        String console = untilContains(() -> script("a", zk, "echo (node:console " + to + ")"), "tick ", 60);
        assertFalse(console.contains("counter: boot"), "the counter was not booted again on c:\n" + console);
        List<Long> ticks = new ArrayList<>();
        Matcher t = Pattern.compile("tick (\\d+)").matcher(console);
        while (t.find()) {
            ticks.add(Long.parseLong(t.group(1)));
        }
        assertTrue(ticks.getFirst() > lastOnB, "c goes on past the last tick b printed (" + lastOnB + "): " + ticks);
        for (int i = 1; i < ticks.size(); i++) {
            assertEquals(ticks.get(i - 1) + 1, ticks.get(i), "ticks go on one by one on c: " + ticks);
        }
        System.out.println("ClusterTest: b printed ticks to " + lastOnB + " before the move; on c the counter went on with ticks "
                + ticks.getFirst() + ".." + ticks.getLast());
        String destroyed = script("a", zk, "echo (node:destroy " + to + ")");
        assertTrue(destroyed.contains(to + " destroyed"), destroyed);

        // a VM that does not run moves stop-and-copy, and starts on c from its entry point; it ticks
        // slowly (2^28 turns a tick) so that its boot line stays within the 64 KiB console tail on a
        // fast host, where the default 2^20 turns tick every half millisecond
        String made = script("a", zk, "vm = node:create -a 268435456 b counter; echo $vm; echo (node:migrate $vm c)");
        Matcher still = Pattern.compile("b/vm-\\d+ moved to (c/vm-\\d+), stop-and-copy \\(it does not run\\): .* \\(0.0 MiB while it ran\\)")
                .matcher(made);
        assertTrue(still.find(), "a created VM moves stop-and-copy:\n" + made);
        String booted = untilContains(() -> script("a", zk, "echo (node:console " + still.group(1) + ")"), "counter: boot", 60);
        assertTrue(booted.contains("counter: boot"), booted);
        script("a", zk, "node:destroy " + still.group(1));
    }

    private static long lastTick(String console) {
        long last = 0;
        Matcher t = Pattern.compile("tick (\\d+)").matcher(console);
        while (t.find()) {
            last = Long.parseLong(t.group(1));
        }
        return last;
    }

    private List<String> zookeeperArgs(int port) throws IOException {
        return List.of("-cp", System.getProperty("nxia.zookeeper.classpath"), "-Dzookeeper.admin.enableServer=false",
                "org.apache.zookeeper.server.ZooKeeperServerMain", Integer.toString(port), Files.createDirectories(tmp.resolve("zk-data")).toString());
    }

    private Process node(String name, int zk, int port, String script) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("node-" + name));
        Path conf = Files.createDirectories(dir.resolve("conf"));
        Files.writeString(conf.resolve("org.nxia.cluster.cfg"), "node=" + name + "\n");
        Files.writeString(conf.resolve("org.apache.aries.rsa.provider.fastbin.cfg"),
                "uri=tcp://127.0.0.1:" + port + "\nexportedAddress=127.0.0.1\ntimeout=10000\n");
        Files.writeString(conf.resolve("org.apache.aries.rsa.discovery.zookeeper.cfg"), "zookeeper.host=127.0.0.1\nzookeeper.port=" + zk + "\n");
        List<String> args = new ArrayList<>(List.of(System.getProperty("nxia.jvm.flags").trim().split("\\s+")));
        args.addAll(List.of("-Dorg.osgi.framework.storage=" + dir.resolve("felix"), "-Dgosh.args=--nointeractive",
                "-Dfelix.fileinstall.dir=" + conf, "-Dnxia.deploy=" + Files.createDirectories(dir.resolve("deploy")),
                "-Dnxia.guest.images=" + System.getProperty("nxia.guest.images")));
        if (script != null) {
            args.add("-Dnxia.command=" + script);
        }
        args.addAll(List.of("-jar", Path.of(System.getProperty("nxia.assemblies"), "cluster.jar").toString()));
        return start("node-" + name, args);
    }

    /** Runs one script on a fresh node a (a new process each time, as an operator's command is) and returns its output. */
    private String script(String name, int zk, String script) throws IOException, InterruptedException {
        Process a = node(name, zk, freePort(), script);
        if (!a.waitFor(2, TimeUnit.MINUTES)) {
            a.destroyForcibly();
            throw new AssertionError("node " + name + ": no exit within 2 minutes:\n" + output("node-" + name));
        }
        String out = output("node-" + name);
        Files.delete(tmp.resolve("node-" + name + ".out"));
        deleteTree(tmp.resolve("node-" + name));
        return out;
    }

    private Process start(String name, List<String> args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(args);
        Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectOutput(tmp.resolve(name + ".out").toFile()).start();
        processes.add(p);
        return p;
    }

    private String output(String name) throws IOException {
        return Files.readString(tmp.resolve(name + ".out"), StandardCharsets.UTF_8);
    }

    private static void awaitListening(Process p, int port, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            assertTrue(p.isAlive(), what + " exited");
            try (Socket _ = new Socket("127.0.0.1", port)) {
                return;
            } catch (IOException notYet) {
                Thread.sleep(200);
            }
        }
        throw new AssertionError(what + " did not listen on " + port + " within 60 s");
    }

    interface Script {
        String run() throws Exception;
    }

    private static String untilContains(Script s, String text, int seconds) throws Exception {
        return untilContains(s, seconds, text);
    }

    /** Runs {@code s} until its output holds every one of {@code texts}, for at most {@code seconds}. */
    private static String untilContains(Script s, int seconds, String... texts) throws Exception {
        return until(s, out -> containsAll(out, texts), "not within " + seconds + " s: " + String.join(", ", texts), seconds);
    }

    private static boolean containsAll(String out, String... texts) {
        for (String t : texts) {
            if (!out.contains(t)) {
                return false;
            }
        }
        return true;
    }

    private static String untilMatches(Script s, Pattern p, int seconds) throws Exception {
        return until(s, out -> p.matcher(out).find(), "not within " + seconds + " s: " + p, seconds);
    }

    private static String untilAbsent(Script s, String text, int seconds) throws Exception {
        return until(s, out -> !out.contains(text), "still there after " + seconds + " s: " + text, seconds);
    }

    /** Runs {@code s} until its output is {@code done}, for at most {@code seconds}; fails with {@code otherwise} and the last output. */
    private static String until(Script s, java.util.function.Predicate<String> done, String otherwise, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        String out;
        do {
            out = s.run();
        } while (!done.test(out) && System.nanoTime() < deadline);
        assertTrue(done.test(out), otherwise + "\n" + out);
        return out;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (var walk = Files.walk(dir)) {
            walk.sorted((x, y) -> y.getNameCount() - x.getNameCount()).forEach(p -> p.toFile().delete());
        }
    }
}
