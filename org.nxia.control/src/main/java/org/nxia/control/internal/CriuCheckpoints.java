package org.nxia.control.internal;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.Execution;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.OutputSink;
import org.nxia.control.api.ProcessCheckpoints;
import org.osgi.service.component.annotations.Component;

/**
 * CRIU run by the agent: {@code criu dump} into a directory in the guest, streamed to the host as a
 * gzip'd tar on the program's stdout; for a restore the file goes back in pieces below the agent's
 * 1 MiB stdin queue, then {@code criu restore} runs as the session's program, so the restored
 * tree's pipes to its old program become the new program's (CRIU's {@code --inherit-fd}).
 */
@Component(service = ProcessCheckpoints.class)
public final class CriuCheckpoints implements ProcessCheckpoints {

    /** Below the agent's stdin queue (1 MiB, docs/limits.md), so one piece never overflows it. */
    static final int UPLOAD_PIECE = 512 << 10;
    /** The end of CRIU's log or a script's complaint kept for the error message. */
    static final int MAX_DIAGNOSTIC = 16 << 10;
    private static final long POLL_MILLIS = 200;

    // $1 pid, $2 "--leave-running" or "": the stdio links go along (nxia-stdio) for the restore
    static final String DUMP = """
            set -e
            d=$(mktemp -d /tmp/nxia-checkpoint.XXXXXX)
            trap 'rm -rf "$d"' EXIT
            [ -d "/proc/$1" ] || { echo "no process $1" >&2; exit 3; }
            for fd in 0 1 2; do echo "$fd $(readlink "/proc/$1/fd/$fd" || echo none)"; done > "$d/nxia-stdio"
            if ! criu dump -t "$1" -D "$d" --shell-job $2 -o dump.log > /dev/null 2>&1; then
              echo "criu dump failed:" >&2; tail -n 20 "$d/dump.log" >&2; exit 3
            fi
            tar -C "$d" -czf - .
            """;
    // $1 the uploaded file; every pipe that was fd 1 or 2 becomes this program's own fd of that number
    // (stdin stays CRIU's: a pipe whose writer is gone, read as end of input). CRIU's own stdin is
    // /dev/null: --shell-job keeps fd 0 in its store, and the agent's input pipe is closed by then.
    static final String RESTORE = """
            f=$1
            d=$(mktemp -d /tmp/nxia-restore.XXXXXX) || exit 3
            trap 'rm -rf "$d" "$f"' EXIT
            tar -C "$d" -xzf "$f" || { echo "not a checkpoint: tar refused it" >&2; exit 3; }
            rm -f "$f"
            set --
            while read -r fd what; do
              case "$fd:$what" in [12]:pipe:\\[*\\]) set -- "$@" --inherit-fd "fd[$fd]:$what" ;; esac
            done < "$d/nxia-stdio"
            criu restore -D "$d" --shell-job -o restore.log "$@" < /dev/null
            rc=$?
            if [ $rc -ne 0 ] && [ -f "$d/restore.log" ] && grep -q Error "$d/restore.log"; then
              echo "criu restore failed:" >&2; tail -n 20 "$d/restore.log" >&2
            fi
            exit $rc
            """;

    @Override
    public ProcessCheckpoint checkpoint(AgentSession session, int pid, Path file, boolean leaveRunning, Duration limit)
            throws IOException, InterruptedException {
        if (pid < 2) {
            throw new IllegalArgumentException("pid " + pid + " cannot be checkpointed (give a process of the guest's, not init)");
        }
        Path target = file.toAbsolutePath();
        Path partial = Files.createTempFile(target.getParent(), "." + target.getFileName(), ".partial");
        long start = System.nanoTime();
        boolean whole = false;
        try (FileChannel out = FileChannel.open(partial, StandardOpenOption.WRITE)) {
            ToFile sink = new ToFile(out, MAX_CHECKPOINT);
            Execution dump = session.start(ExecRequest.of("sh", "-c", DUMP, "nxia-checkpoint", Integer.toString(pid),
                    leaveRunning ? "--leave-running" : ""), sink);
            ExitStatus status = await(dump, limit, "checkpoint of pid " + pid, () -> sink.failure != null);
            if (sink.failure != null) {
                throw sink.failure;
            }
            if (status.signaled() || status.code() != 0) {
                throw new ControlException(ControlException.Code.SYSTEM, "checkpoint of pid " + pid + " failed ("
                        + status + "): " + sink.diagnostic().strip());
            }
            out.force(true);
            Files.move(partial, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            whole = true;
            return new ProcessCheckpoint(target, sink.bytes, pid, Duration.ofNanos(System.nanoTime() - start));
        } finally {
            if (!whole) {
                Files.deleteIfExists(partial);
            }
        }
    }

    @Override
    public Execution restore(AgentSession session, Path file, OutputSink sink) throws IOException, InterruptedException {
        long size = Files.size(file);
        if (size > MAX_CHECKPOINT) {
            throw new IOException(file + " is " + size + " bytes: larger than a checkpoint can be (" + MAX_CHECKPOINT + ")");
        }
        ExecResult made = session.exec("mktemp", "/tmp/nxia-upload.XXXXXX");
        if (made.status().code() != 0) {
            throw new ControlException(ControlException.Code.SYSTEM, "cannot make a file in the guest for the checkpoint: "
                    + made.stderrText().strip());
        }
        String guestFile = made.stdoutText().strip();
        boolean handedOver = false;
        try (InputStream in = Files.newInputStream(file)) {
            byte[] piece = new byte[UPLOAD_PIECE];
            for (int n; (n = in.readNBytes(piece, 0, piece.length)) > 0;) {
                Execution append = session.start(ExecRequest.of("sh", "-c", "cat >> \"$1\"", "nxia-upload", guestFile),
                        (stderr, data, offset, length) -> { });
                append.write(n == piece.length ? piece : Arrays.copyOf(piece, n));
                append.closeStdin();
                ExitStatus st = await(append, Duration.ofSeconds(60), "upload of " + file, () -> false);
                if (st.signaled() || st.code() != 0) {
                    throw new ControlException(ControlException.Code.SYSTEM, "upload of " + file + " into the guest failed (" + st + ")");
                }
            }
            Execution restored = session.start(ExecRequest.of("sh", "-c", RESTORE, "nxia-restore", guestFile), sink);
            handedOver = true;  // the restore script removes the upload
            restored.closeStdin();
            return restored;
        } finally {
            if (!handedOver) {
                session.exec("rm", "-f", guestFile);
            }
        }
    }

    /** Waits for {@code e} to end; past the limit, or once {@code abandon} says so, kills it (not from the reader thread). */
    private static ExitStatus await(Execution e, Duration limit, String what, BooleanSupplier abandon)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        boolean killed = false;
        for (;;) {
            try {
                return e.exit().get(POLL_MILLIS, TimeUnit.MILLISECONDS);
            } catch (TimeoutException t) {
                boolean late = System.nanoTime() - deadline > 0;
                if ((late || abandon.getAsBoolean()) && !killed) {
                    e.signal(9);
                    killed = true;
                    if (late) {
                        throw new IOException(what + " took longer than " + limit.toSeconds() + " s: abandoned");
                    }
                }
            } catch (ExecutionException x) {
                throw x.getCause() instanceof IOException io ? io : new IOException(what + ": " + x.getCause(), x.getCause());
            }
        }
    }

    /** The dump's stdout into the file, bounded; its stderr kept (bounded) for the error message. */
    static final class ToFile implements OutputSink {
        private final FileChannel out;
        private final long limit;
        private final ByteArrayOutputStream diagnostic = new ByteArrayOutputStream();
        long bytes;
        volatile IOException failure;

        ToFile(FileChannel out, long limit) {
            this.out = out;
            this.limit = limit;
        }

        @Override
        public void output(boolean stderr, byte[] data, int offset, int length) {
            if (stderr) {
                synchronized (diagnostic) {
                    diagnostic.write(data, offset, Math.min(length, Math.max(0, MAX_DIAGNOSTIC - diagnostic.size())));
                }
                return;
            }
            if (failure != null) {
                return;
            }
            if (bytes + length > limit) {
                failure = new IOException("the checkpoint grew past " + limit + " bytes: abandoned");
                return;
            }
            try {
                ByteBuffer b = ByteBuffer.wrap(data, offset, length);
                while (b.hasRemaining()) {
                    out.write(b);
                }
                bytes += length;
            } catch (IOException e) {
                failure = e;
            }
        }

        String diagnostic() {
            synchronized (diagnostic) {
                return diagnostic.toString(StandardCharsets.UTF_8);
            }
        }
    }
}
