package org.nxia.control.api;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A program to run in the guest.
 *
 * @param argv program (looked up in PATH) and its arguments; not empty
 * @param env added to the agent's environment (and what configure set)
 * @param cwd working directory, or null for the agent's
 * @param pty a terminal of this size instead of pipes, or null
 * @param confinement what the program may touch ({@link Confinement#NONE} if null)
 */
public record ExecRequest(List<String> argv, Map<String, String> env, String cwd, WindowSize pty,
        Confinement confinement) {

    public ExecRequest(List<String> argv, Map<String, String> env, String cwd, WindowSize pty) {
        this(argv, env, cwd, pty, Confinement.NONE);
    }

    public ExecRequest {
        argv = List.copyOf(argv);
        confinement = confinement == null ? Confinement.NONE : confinement;
        env = Collections.unmodifiableMap(new LinkedHashMap<>(env));
        if (argv.isEmpty())
            throw new IllegalArgumentException("argv is empty");
    }

    public static ExecRequest of(String... argv) {
        return new ExecRequest(List.of(argv), Map.of(), null, null);
    }

    public ExecRequest withEnv(String name, String value) {
        Map<String, String> e = new LinkedHashMap<>(env);
        e.put(Objects.requireNonNull(name), Objects.requireNonNull(value));
        return new ExecRequest(argv, e, cwd, pty, confinement);
    }

    public ExecRequest withCwd(String dir) {
        return new ExecRequest(argv, env, dir, pty, confinement);
    }

    public ExecRequest withPty(int rows, int cols) {
        return new ExecRequest(argv, env, cwd, new WindowSize(rows, cols), confinement);
    }

    /** The same program, confined by the guest kernel. */
    public ExecRequest withConfinement(Confinement c) {
        return new ExecRequest(argv, env, cwd, pty, c);
    }

    /** A terminal's size in characters. */
    public record WindowSize(int rows, int cols) {
        public WindowSize {
            if (rows < 1 || rows > 0xffff || cols < 1 || cols > 0xffff)
                throw new IllegalArgumentException("window size out of range: " + rows + "x" + cols);
        }
    }
}
