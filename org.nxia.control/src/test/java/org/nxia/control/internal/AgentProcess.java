package org.nxia.control.internal;

import java.io.IOException;
import java.net.ConnectException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.nxia.control.api.AgentSession;

/** The real nxia-agent binary, run as a host process listening on a Unix socket. */
final class AgentProcess implements AutoCloseable {

    static final byte[] SECRET = HexFormat.of().parseHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");

    final Path socket;
    final Process process;

    AgentProcess(Path dir) throws IOException, InterruptedException {
        this(dir, List.of());
    }

    /** Runs the agent under {@code wrapper} (e.g. unshare). */
    AgentProcess(Path dir, List<String> wrapper) throws IOException, InterruptedException {
        this(dir, wrapper, List.of("--secret", HexFormat.of().formatHex(SECRET)));
    }

    /** With {@code secretArgs} for the secret (none: PID 1's own way, /etc/nxia/secret). */
    AgentProcess(Path dir, List<String> wrapper, List<String> secretArgs) throws IOException, InterruptedException {
        String binary = System.getProperty("nxia.agent.binary");
        if (binary == null || !Files.isExecutable(Path.of(binary)))
            throw new IllegalStateException("nxia.agent.binary (" + binary + ") is not an executable: run make -C guest/agent");
        socket = dir.resolve("agent.sock");
        List<String> cmd = new ArrayList<>(wrapper);
        cmd.addAll(List.of(binary, "--unix", socket.toString()));
        cmd.addAll(secretArgs);
        process = new ProcessBuilder(cmd)
                .redirectOutput(ProcessBuilder.Redirect.INHERIT).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        for (int i = 0; i < 500 && !Files.exists(socket); i++) {
            if (!process.isAlive())
                throw new IllegalStateException("nxia-agent exited with " + process.exitValue());
            Thread.sleep(10);
        }
    }

    /** The socket file appears at bind(), just before listen(): a refused connection is retried for 5 s. */
    private <T> T connected(IoCall<T> call) throws IOException {
        for (int i = 0; ; i++) {
            try {
                return call.run();
            } catch (ConnectException e) {
                if (i >= 500)
                    throw e;
                try {
                    Thread.sleep(10);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
    }

    private interface IoCall<T> {
        T run() throws IOException;
    }

    SocketChannel channel() throws IOException {
        return connected(() -> SocketChannel.open(UnixDomainSocketAddress.of(socket)));
    }

    AgentSession session() throws IOException {
        return connected(() -> new SocketControlConnector().connect(socket, SECRET));
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(5, TimeUnit.SECONDS))
            process.destroyForcibly();
    }
}
