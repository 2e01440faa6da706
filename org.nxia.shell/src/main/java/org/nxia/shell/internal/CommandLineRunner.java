package org.nxia.shell.internal;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import org.apache.felix.service.command.CommandProcessor;
import org.apache.felix.service.command.CommandSession;
import org.apache.felix.service.command.Converter;
import org.nxia.shell.support.Text;
import org.osgi.framework.BundleContext;
import org.osgi.framework.Constants;
import org.osgi.framework.InvalidSyntaxException;
import org.osgi.framework.startlevel.FrameworkStartLevel;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * Runs one Gogo command given as {@code -Dnxia.command=...} and ends the
 * process with its exit code: how the {@code nxia} launcher runs
 * {@code demo}, {@code doctor}, {@code run-guest} and {@code bench}. Errors
 * are one line; {@code -Dnxia.debug=true} adds the stack trace.
 */
@Component(immediate = true)
public final class CommandLineRunner {

    static final String COMMAND = "nxia.command";
    static final String DEBUG = "nxia.debug";

    @Activate
    public CommandLineRunner(BundleContext context, @Reference CommandProcessor processor) {
        String command = context.getProperty(COMMAND);
        if (command == null || command.isBlank()) {
            return;
        }
        boolean debug = Boolean.parseBoolean(context.getProperty(DEBUG));
        Thread.ofPlatform().name("nxia-cli").start(() -> {
            boolean started = awaitAssemblyStarted(context, System.nanoTime() + COMMAND_WAIT_NANOS);
            // once every bundle is started, a command that is not there is not in this assembly
            System.exit(run(processor, command, debug, started ? System.nanoTime() : System.nanoTime() + COMMAND_WAIT_NANOS));
        });
    }

    /**
     * Waits until the whole assembly is started. This component is activated
     * while other bundles are still starting, and a command must not see a part
     * of the assembly ({@code lb} half of it, a VM some of its device types).
     * bnd's launcher (the exported jar's) sets {@code launcher.ready=true} on its
     * service once it has started every bundle, but it raises the framework to
     * its beginning start level asynchronously (the Gogo shell's level comes
     * later): both must have happened. Under another launcher the command runs
     * at the deadline, waiting for its own command as before.
     *
     * @return whether the assembly is started, false at the deadline
     */
    static boolean awaitAssemblyStarted(BundleContext context, long deadline) {
        FrameworkStartLevel framework = context.getBundle(Constants.SYSTEM_BUNDLE_LOCATION).adapt(FrameworkStartLevel.class);
        String beginning = context.getProperty(Constants.FRAMEWORK_BEGINNING_STARTLEVEL);
        int level = beginning == null ? 1 : Integer.parseInt(beginning.trim());
        try {
            while (context.getServiceReferences((String) null, LAUNCHER_READY) == null || framework.getStartLevel() < level) {
                if (System.nanoTime() >= deadline) {
                    return false;
                }
                Thread.sleep(20);
            }
            return true;
        } catch (InvalidSyntaxException e) {
            throw new IllegalStateException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** bnd's launcher service once every bundle is started (aQute.launcher.constants.LauncherConstants.LAUNCHER_READY). */
    static final String LAUNCHER_READY = "(launcher.ready=true)";

    /** Runs {@code command}; until {@code deadline} (nanoTime) it waits for a command not registered yet. */
    static int run(CommandProcessor processor, String command, boolean debug, long deadline) {
        // The process's own descriptors: System.out inside Gogo is a per-session
        // redirector, and handing it back to a session would loop.
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
        try (CommandSession session = processor.createSession(new FileInputStream(FileDescriptor.in), out, err)) {
            while (true) {
                try {
                    Object result = session.execute(command);
                    if (result != null) {
                        out.println(session.format(result, Converter.INSPECT));
                    }
                    out.flush();
                    Object code = session.get(Text.EXIT_CODE);
                    return code instanceof Integer i ? i : 0;
                } catch (Exception e) {
                    // Commands of bundles still starting are not there yet: wait a little for them.
                    if (isCommandNotFound(e) && System.nanoTime() < deadline) {
                        Thread.sleep(100);
                        continue;
                    }
                    throw e;
                }
            }
        } catch (Throwable t) {
            out.flush();
            err.println("nxia: " + message(t));
            if (isCommandNotFound(t)) {
                err.println("nxia: this assembly has no such command; ./nxia assemblies lists the assemblies, --assembly picks one");
            }
            if (debug) {
                t.printStackTrace(err);
            } else {
                err.println("nxia: run with --debug for the stack trace");
            }
            return isCommandNotFound(t) ? 127 : 1;
        }
    }

    /** How long a command of a bundle still starting is waited for. */
    static final long COMMAND_WAIT_NANOS = 60_000_000_000L;

    private static boolean isCommandNotFound(Throwable t) {
        return t.getClass().getSimpleName().equals("CommandNotFoundException");
    }

    private static String message(Throwable t) {
        Throwable cause = t;
        while (cause.getCause() != null && (cause.getMessage() == null || cause instanceof java.lang.reflect.InvocationTargetException)) {
            cause = cause.getCause();
        }
        String m = cause.getMessage();
        return m == null || m.isBlank() ? cause.getClass().getSimpleName() : m;
    }
}
