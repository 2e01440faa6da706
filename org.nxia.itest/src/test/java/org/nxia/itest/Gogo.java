package org.nxia.itest;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import org.apache.felix.service.command.CommandProcessor;
import org.apache.felix.service.command.CommandSession;

/** Runs a Gogo command as a user types it: what it printed and the status ./nxia would exit with. */
final class Gogo {

    /** The session variable a command leaves its exit status in (VmCommands.EXIT_CODE). */
    static final String EXIT_CODE = "nxia.exit";

    record Run(Object exit, String output) {
    }

    private Gogo() {
    }

    static Run run(CommandProcessor processor, String command) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        try (CommandSession session = processor.createSession(System.in, out, out)) {
            Object result = session.execute(command);
            if (result != null) {
                out.println(result);
            }
            return new Run(session.get(EXIT_CODE), bytes.toString(StandardCharsets.UTF_8));
        }
    }
}
