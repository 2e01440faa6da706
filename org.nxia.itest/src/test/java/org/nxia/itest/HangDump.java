package org.nxia.itest;

import java.io.IOException;
import java.lang.management.LockInfo;
import java.lang.management.ManagementFactory;
import java.lang.management.MonitorInfo;
import java.lang.management.ThreadInfo;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Comparator;
import java.util.function.Supplier;

import org.junit.rules.TestRule;
import org.junit.runners.model.Statement;

/**
 * Prints where everything waits when a test is still running after {@code limit}: every
 * thread's full stack with the locks it holds and wants, what {@code context} says (the VMs and
 * their devices), the virtiofsd processes and their logs. A test with a JUnit timeout shows only
 * its own thread's stack, which for a Gogo command is Gogo's wait for the command's thread (issue
 * 14 §3: vm:exec --share hung in the rig, and the timeout's stack said nothing more).
 */
final class HangDump implements AutoCloseable {

    private final Thread timer;

    private HangDump(String what, Duration limit, Supplier<String> context) {
        timer = Thread.ofPlatform().daemon().name("hang-dump").start(() -> {
            try {
                Thread.sleep(limit);
            } catch (InterruptedException e) {
                return;   // the test ended in time
            }
            StringBuilder b = new StringBuilder();
            b.append("=== HangDump: ").append(what).append(" still running after ").append(limit.toSeconds()).append(" s ===\n");
            threads(b);
            try {
                b.append("--- context ---\n").append(context.get()).append('\n');
            } catch (RuntimeException e) {
                b.append("--- context failed: ").append(e).append('\n');
            }
            virtiofsd(b);
            b.append("=== HangDump end ===\n");
            System.out.print(b);
            System.out.flush();
        });
    }

    /** Dumps once after {@code limit} unless closed before. */
    static HangDump after(Duration limit, String what, Supplier<String> context) {
        return new HangDump(what, limit, context);
    }

    /** A rule that dumps when one of the class's tests still runs after {@code limit}. */
    static TestRule rule(Duration limit, Supplier<String> context) {
        return (base, description) -> new Statement() {
            @Override
            public void evaluate() throws Throwable {
                try (HangDump dump = after(limit, description.getMethodName(), context)) {
                    base.evaluate();
                }
            }
        };
    }

    @Override
    public void close() {
        timer.interrupt();
    }

    private static void threads(StringBuilder b) {
        ThreadInfo[] all = ManagementFactory.getThreadMXBean().dumpAllThreads(true, true);
        Arrays.sort(all, Comparator.comparing(ThreadInfo::getThreadName));
        for (ThreadInfo t : all) {
            b.append('"').append(t.getThreadName()).append("\" #").append(t.getThreadId()).append(' ').append(t.getThreadState());
            if (t.getLockInfo() != null) {
                b.append(" on ").append(t.getLockInfo());
            }
            if (t.getLockOwnerName() != null) {
                b.append(" owned by \"").append(t.getLockOwnerName()).append("\" #").append(t.getLockOwnerId());
            }
            b.append('\n');
            StackTraceElement[] stack = t.getStackTrace();
            for (int i = 0; i < stack.length; i++) {
                b.append("\tat ").append(stack[i]).append('\n');
                for (MonitorInfo m : t.getLockedMonitors()) {
                    if (m.getLockedStackDepth() == i) {
                        b.append("\t- locked ").append(m).append('\n');
                    }
                }
            }
            for (LockInfo l : t.getLockedSynchronizers()) {
                b.append("\t- holds ").append(l).append('\n');
            }
        }
    }

    private static void virtiofsd(StringBuilder b) {
        b.append("--- virtiofsd processes ---\n");
        ProcessHandle.allProcesses().filter(p -> p.info().command().orElse("").contains("virtiofsd"))
                .forEach(p -> b.append(p.pid()).append(" parent ").append(p.parent().map(ProcessHandle::pid).orElse(-1L)).append(' ')
                        .append(p.info().commandLine().orElse("?")).append('\n'));
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(Path.of(System.getProperty("java.io.tmpdir")), "nxia-virtiofs-*")) {
            for (Path d : dirs) {
                Path log = d.resolve("virtiofsd.log");
                b.append("--- ").append(log).append(" ---\n").append(Files.isReadable(log) ? Files.readString(log) : "(none)\n");
            }
        } catch (IOException e) {
            b.append("(cannot list the virtiofsd directories: ").append(e).append(")\n");
        }
    }
}
