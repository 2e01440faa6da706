package org.nxia.control.internal;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HexFormat;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlConnector;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.vmm.bench.Percentiles;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code control:exec} and {@code control:bench}: one program, or the exec
 * round trip, through an agent's Unix socket ({@code nxia-agent --unix PATH});
 * {@code control:vms}: the System VMs and their sessions ({@code vm:exec}
 * runs programs in them).
 */
@Component(service = ControlCommands.class, property = {
        "osgi.command.scope=control", "osgi.command.function=exec", "osgi.command.function=bench",
        "osgi.command.function=vms"})
public final class ControlCommands {

    private final ControlConnector connector;
    private final SystemVms systemVms;

    @Activate
    public ControlCommands(@Reference ControlConnector connector, @Reference SystemVms systemVms) {
        this.connector = connector;
        this.systemVms = systemVms;
    }

    @Descriptor("the System VMs booted here, with their agents (each session is an AgentSession service with nxia.vm.id)")
    public String vms() {
        StringBuilder out = new StringBuilder(String.format("%-10s %-16s %10s  %s%n", "VM", "AGENT", "READY (ms)", "STATE"));
        for (SystemVm s : systemVms.list()) {
            out.append(String.format("%-10s %-16s %10d  %s%n", s.vm().id(), s.session().agent(), s.readyAfter().toMillis(), s.vm().state()));
        }
        return out.toString().stripTrailing();
    }

    @Descriptor("run a program through a control agent; prints its output and status")
    public String exec(@Descriptor("the agent's Unix socket") String socket,
            @Descriptor("the secret, hex") String secret,
            @Descriptor("program and arguments") String... argv) throws IOException {
        if (argv.length == 0)
            throw new IllegalArgumentException("no program given");
        try (AgentSession s = connector.connect(Path.of(socket), HexFormat.of().parseHex(secret))) {
            ExecResult r = s.exec(argv);
            return r.stdoutText() + r.stderrText() + "[" + r.status() + "]";
        }
    }

    @Descriptor("exec of 'true' through a control agent, next to the host starting 'true' itself")
    public String bench(@Descriptor("runs") @Parameter(names = {"-n", "--runs"}, absentValue = "200") int runs,
            @Descriptor("the agent's Unix socket") String socket,
            @Descriptor("the secret, hex") String secret) throws IOException, InterruptedException {
        if (runs < 10)
            throw new IllegalArgumentException("at least 10 runs");
        long[] agent = new long[runs], host = new long[runs];
        try (AgentSession s = connector.connect(Path.of(socket), HexFormat.of().parseHex(secret))) {
            for (int i = 0; i < runs / 10; i++)
                s.exec("true");
            for (int i = 0; i < runs; i++) {
                long t0 = System.nanoTime();
                ExecResult r = s.exec("true");
                agent[i] = System.nanoTime() - t0;
                if (r.status().signaled() || r.status().code() != 0)
                    throw new IOException("true ended with " + r.status());
            }
        }
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            int rc = new ProcessBuilder("true").start().waitFor();
            host[i] = System.nanoTime() - t0;
            if (rc != 0)
                throw new IOException("true exited " + rc);
        }
        return String.format("exec true, %d runs                 p50 us   p99 us%n"
                + "  through the agent (Unix socket) %8.0f %8.0f%n"
                + "  host ProcessBuilder (floor)     %8.0f %8.0f", runs,
                micros(agent, 50), micros(agent, 99), micros(host, 50), micros(host, 99));
    }

    /** The {@code p}th percentile of {@code ns} in microseconds, by the definition every bench table uses. */
    static double micros(long[] ns, int p) {
        return Percentiles.nearestRankUnsorted(ns, p) / 1e3;
    }
}
