package org.nxia.control.internal;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HexFormat;

import org.apache.felix.service.command.Descriptor;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlConnector;
import org.nxia.control.api.ExecResult;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** {@code control:exec}: run one program through an agent's Unix socket, for manual testing. */
@Component(service = ControlCommands.class, property = {
        "osgi.command.scope=control", "osgi.command.function=exec"})
public final class ControlCommands {

    private final ControlConnector connector;

    @Activate
    public ControlCommands(@Reference ControlConnector connector) {
        this.connector = connector;
    }

    @Descriptor("run a program through a control agent; prints its output and status")
    public String exec(@Descriptor("the agent's Unix socket (nxia-agent --unix PATH)") String socket,
            @Descriptor("the secret, hex") String secret,
            @Descriptor("program and arguments") String... argv) throws IOException {
        if (argv.length == 0)
            throw new IllegalArgumentException("no program given");
        try (AgentSession s = connector.connect(Path.of(socket), HexFormat.of().parseHex(secret))) {
            ExecResult r = s.exec(argv);
            return r.stdoutText() + r.stderrText() + "[" + r.status() + "]";
        }
    }
}
