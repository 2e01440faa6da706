package org.nxia.cluster.internal;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.cluster.api.GuestRequest;
import org.nxia.cluster.api.Moved;
import org.nxia.cluster.api.NodeAdmin;
import org.nxia.shell.support.BenchStats;
import org.nxia.shell.support.Text;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code bench:cluster NODE}: what going through another node costs, each figure next to its
 * peer measured in the same run: a micro-VM's create, run and destroy on NODE against the same on
 * this node; a remote call that does nothing against a plain TCP round trip; and the downtime and
 * total time of a memory-filled VM moved to NODE pre-copy against the same VM moved stop-and-copy
 * (it comes back between moves, unmeasured).
 */
@Component(service = ClusterBench.class, property = {"osgi.command.scope=bench", "osgi.command.function=cluster"})
public final class ClusterBench {

    @Reference
    private VmManager vms;

    @Reference
    private Nodes nodes;

    @Descriptor("remote micro-VM lifecycle vs local, a remote null call vs a TCP round trip, and pre-copy vs stop-and-copy"
            + " migration of a memory-filled micro-VM to NODE")
    public String cluster(
            @Descriptor("lifecycles and null calls per side") @Parameter(names = {"-n", "--runs"}, absentValue = "20") int runs,
            @Descriptor("RAM of the migrated VM (memfill writes every page)") @Parameter(names = {"-m", "--memory"}, absentValue = "256M") String memory,
            @Descriptor("moves of each kind") @Parameter(names = {"-k", "--moves"}, absentValue = "3") int moves,
            @Descriptor("the other node (node:list)") String node) throws Exception {
        if (runs < 1 || moves < 1) {
            throw new IllegalArgumentException("-n and -k are at least 1");
        }
        // started together with the other node (./nxia bench cluster), this node may not have found it yet
        nodes.await(node, Duration.ofSeconds(60));
        NodeAdmin there = nodes.remote(node).admin();
        String here = nodes.all().stream().filter(n -> !n.remote()).map(Nodes.Node::name).findFirst()
                .orElseThrow(() -> new IllegalStateException("this node has no name (org.nxia.cluster.cfg): " + node + " cannot send its VM back"));
        List<List<String>> rows = new ArrayList<>();

        VmProfile hello = VmProfile.of(NodeAdminService.guest("hello"));
        GuestRequest helloThere = GuestRequest.of("hello", hello.memoryBytes());
        localRun(hello);
        RemoteRun.run(there, helloThere, false);
        long[] local = new long[runs];
        long[] remote = new long[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            localRun(hello);
            local[i] = System.nanoTime() - t0;
            t0 = System.nanoTime();
            RemoteRun.Ended r = RemoteRun.run(there, helloThere, false);
            remote[i] = System.nanoTime() - t0;
            if (!r.vm().result().equals("exited with status 0")) {
                throw new IllegalStateException("hello on " + node + " ended: " + r.vm().result());
            }
        }
        rows.add(row("micro-VM create, run, destroy (hello), p50 ms", BenchStats.median(remote) / 1e6, "the same on this node",
                BenchStats.median(local) / 1e6));

        int calls = runs * 50;
        long[] rsa = new long[calls];
        for (int i = 0; i < calls + 100; i++) {
            long t0 = System.nanoTime();
            there.status();
            if (i >= 100) {
                rsa[i - 100] = System.nanoTime() - t0;
            }
        }
        rows.add(row("null call (NodeAdmin.status through Aries fastbin), p50 µs", BenchStats.median(rsa) / 1e3,
                "TCP round trip of 1 byte on loopback", BenchStats.median(tcpRoundTrips(calls)) / 1e3));

        // each way of moving a memory-filled VM to NODE, measured the same way round; the VM comes back between moves
        long[] stopDowntime = new long[moves];
        long[] stopTotal = new long[moves];
        long[] preDowntime = new long[moves];
        long[] preTotal = new long[moves];
        long stopBytes = 0;
        long preBytes = 0;
        long preRunning = 0;
        String preHow = "";
        VirtualMachine vm = vms.create(VmProfile.of(NodeAdminService.guest("memfill")).withMemory(VmProfile.parseSize(memory))
                .withTimeout(Duration.ofMinutes(10)));
        String id = vm.id();
        try {
            vm.start();
            awaitConsole(vm, "MiB written");
            for (int i = 0; i < moves; i++) {
                Moved stop = Migration.move(vms, id, node, there, false);
                id = there.migrate(stop.to().id(), here).to().id();
                Moved pre = Migration.move(vms, id, node, there, true);
                id = there.migrate(pre.to().id(), here).to().id();
                if (!pre.how().startsWith("pre-copy")) {
                    throw new IllegalStateException("the memfill VM moved " + pre.how());
                }
                stopDowntime[i] = stop.downtime().toNanos();
                stopTotal[i] = stop.total().toNanos();
                preDowntime[i] = pre.downtime().toNanos();
                preTotal[i] = pre.total().toNanos();
                stopBytes = stop.bytes();
                preBytes = pre.bytes();
                preRunning = pre.sentWhileRunning();
                preHow = pre.how();
            }
            VirtualMachine last = vms.find(id).orElseThrow();
            if (last.console().contains("lost") || last.result().isPresent()) {
                throw new IllegalStateException("the migrated VM did not go on whole: " + last.result().map(Text::outcome).orElse("")
                        + " " + last.console());
            }
        } finally {
            vms.destroy(id);
        }
        String size = Text.size(VmProfile.parseSize(memory));
        rows.add(row("pre-copy move of a " + size + " memfill VM (" + preHow + ", " + ClusterCommands.mib(preRunning) + " of "
                        + ClusterCommands.mib(preBytes) + " sent while it ran), downtime p50 ms (goal: >= 5x)", BenchStats.median(preDowntime) / 1e6,
                "stop-and-copy move of it (" + ClusterCommands.mib(stopBytes) + " sent paused), downtime p50 ms", BenchStats.median(stopDowntime) / 1e6));
        rows.add(row("pre-copy move, total time p50 ms", BenchStats.median(preTotal) / 1e6, "stop-and-copy move, total time p50 ms",
                BenchStats.median(stopTotal) / 1e6));

        return "bench:cluster: this node (" + here + ") and node " + node + "; " + runs + " lifecycles and " + calls
                + " null calls per side, " + moves + " moves of each kind\n"
                + Text.table(List.of("measure", "NXIA", "peer", "peer figure", BenchStats.RATIO_HEADING), rows);
    }

    private void localRun(VmProfile hello) throws InterruptedException {
        VmResult r = vms.run(hello, new StringBuilder());
        if (!r.succeeded()) {
            throw new IllegalStateException("hello here ended: " + Text.outcome(r));
        }
    }

    private static List<String> row(String what, double ours, String peer, double peerFigure) {
        return List.of(what, BenchStats.fmt(ours), peer, BenchStats.fmt(peerFigure), BenchStats.fmtRatio(BenchStats.speedRatio(ours, peerFigure, false)));
    }

    /** {@code n} one-byte round trips to an echo thread over loopback TCP (Nagle off, as fastbin's sockets are). */
    static long[] tcpRoundTrips(int n) throws IOException, InterruptedException {
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            Thread echo = Thread.ofPlatform().name("nxia-bench-echo").daemon(true).start(() -> {
                try (Socket s = server.accept(); InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
                    s.setTcpNoDelay(true);
                    int b;
                    while ((b = in.read()) >= 0) {
                        out.write(b);
                    }
                } catch (IOException e) {
                    // the client closed
                }
            });
            long[] samples = new long[n];
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort())) {
                s.setTcpNoDelay(true);
                InputStream in = s.getInputStream();
                OutputStream out = s.getOutputStream();
                for (int i = 0; i < n + 100; i++) {
                    long t0 = System.nanoTime();
                    out.write(1);
                    if (in.read() < 0) {
                        throw new IOException("the echo thread closed");
                    }
                    if (i >= 100) {
                        samples[i - 100] = System.nanoTime() - t0;
                    }
                }
            }
            echo.join(1000);
            return samples;
        }
    }

    private static void awaitConsole(VirtualMachine vm, String text) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (!vm.console().contains(text)) {
            if (vm.result().isPresent() || System.nanoTime() > deadline) {
                throw new IllegalStateException(vm.id() + " did not say '" + text + "': " + vm.console());
            }
            Thread.sleep(10);
        }
    }
}
