package org.nxia.cluster.internal;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;

import org.nxia.cluster.api.Moved;
import org.nxia.cluster.api.NodeAdmin;
import org.nxia.cluster.api.VmSummary;
import org.nxia.shell.support.VmSnapshotFile;
import org.nxia.snapshot.api.SaveProgress;
import org.nxia.vmm.api.LiveRam;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmState;

/**
 * Moves a micro-VM of this node to another. Pre-copy where the VM runs and its RAM can be read
 * live: every touched page is sent while it runs, then, round after round, the pages written
 * since, until few are left or the rounds stop shrinking them; then it is paused and only the last
 * written pages and its state (the snapshot without RAM) are sent, and the target maps the RAM it
 * gathered. Stop-and-copy otherwise: pause, save, send the snapshot file in pieces. Either way the
 * VM here is destroyed only once the target has started it; any failure before that resumes it.
 */
final class Migration {

    /** Pages per {@link NodeAdmin#receivePages} call: one piece. */
    static final int BATCH_PAGES = (int) (NodeAdmin.MAX_PIECE / LiveRam.PAGE);
    /** Pre-copy pauses the VM once at most this many pages (1 MiB) are left to send... */
    static final long FEW_PAGES = 256;
    /** ...or after this many rounds while it runs... */
    static final int MAX_ROUNDS = 10;
    /** ...or once a round (after the first two) leaves no fewer pages than the one before: the guest writes as fast as they go. */
    static final int SHRINK_ROUNDS = 2;

    private Migration() {
    }

    /**
     * Moves {@code vmId} to {@code target}: pre-copy if {@code precopy} and the VM can be read live
     * (it runs, has no devices, its RAM is not placed), else stop-and-copy.
     */
    static Moved move(VmManager vms, String vmId, String targetName, NodeAdmin target, boolean precopy) throws IOException {
        VirtualMachine vm = vms.find(vmId).orElseThrow(() -> new IllegalArgumentException("no VM " + vmId + " on this node (vm:list)"));
        if (!(vm.spec() instanceof VmProfile profile)) {
            throw new IllegalArgumentException(vmId + " is a System VM: only micro-VMs move between nodes yet");
        }
        VmState state = vm.state();
        if (state != VmState.RUNNING && state != VmState.PAUSED && state != VmState.CREATED) {
            throw new IllegalArgumentException(vmId + " is " + state.name().toLowerCase() + ": only a created, running or paused VM moves");
        }
        long start = System.nanoTime();
        String why = null;
        LiveRam live = null;
        if (!precopy) {
            why = "as asked";
        } else if (state != VmState.RUNNING) {
            why = "it does not run";
        } else if (profile.placement().hugePages() || !profile.placement().overcommit()) {
            why = "its RAM is placed (huge pages or no overcommit), which the target's mapped RAM cannot be";
        } else {
            try {
                live = vm.liveRam();
            } catch (UnsupportedOperationException | IllegalStateException e) {
                why = e.getMessage();
            }
        }
        if (live == null) {
            return stopAndCopy(vms, vm, targetName, target, start, why);
        }
        try (LiveRam ram = live) {
            return preCopy(vms, vm, ram, targetName, target, start);
        }
    }

    private static Moved stopAndCopy(VmManager vms, VirtualMachine vm, String targetName, NodeAdmin target, long start, String why)
            throws IOException {
        boolean wasRunning = vm.state() == VmState.RUNNING;
        if (wasRunning) {
            vm.pause();
        }
        long paused = System.nanoTime();
        VmSummary moved;
        long bytes;
        String transfer = null;
        try {
            Sent sent = send(vm.snapshot(), target);
            transfer = sent.transfer();
            bytes = sent.bytes();
            moved = target.restore(transfer);
        } catch (IOException | RuntimeException e) {
            discard(target, transfer);
            throw failed(vm, wasRunning, targetName, e);
        }
        long resumed = System.nanoTime();
        vms.destroy(vm.id());
        return new Moved(vm.id(), moved, bytes, Duration.ofNanos(resumed - paused), Duration.ofNanos(resumed - start),
                "stop-and-copy" + (why == null ? "" : " (" + why + ")"), 0);
    }

    private static Moved preCopy(VmManager vms, VirtualMachine vm, LiveRam live, String targetName, NodeAdmin target, long start)
            throws IOException {
        long[] dirty = new long[live.words()];
        Pages pages = new Pages(live, target);
        boolean paused = false;
        VmSummary moved;
        long whileRunning;
        int rounds = 0;
        long pauseAt;
        String ram = null;
        String transfer = null;
        try {
            ram = target.openRam(live.bytes());
            long left = live.written(dirty);
            long fewest = left;
            int notShrinking = 0;
            while (true) {
                pages.send(ram, dirty, rounds == 0);   // the first round skips zero pages: the target's RAM starts zero
                rounds++;
                left = live.written(dirty);
                notShrinking = left < fewest ? 0 : notShrinking + 1;
                fewest = Math.min(fewest, left);
                if (left <= FEW_PAGES || rounds >= MAX_ROUNDS || (rounds > SHRINK_ROUNDS && notShrinking > 0)) {
                    break;
                }
            }
            whileRunning = pages.bytes;
            pauseAt = System.nanoTime();
            vm.pause();
            paused = true;
            live.written(dirty);
            pages.send(ram, dirty, false);
            Sent state = send(live.state(), target);
            transfer = state.transfer();
            pages.bytes += state.bytes();
            moved = target.restore(transfer, ram);
        } catch (IOException | RuntimeException e) {
            discard(target, ram);
            discard(target, transfer);
            throw failed(vm, paused, targetName, e);
        }
        long resumed = System.nanoTime();
        vms.destroy(vm.id());
        return new Moved(vm.id(), moved, pages.bytes, Duration.ofNanos(resumed - pauseAt), Duration.ofNanos(resumed - start),
                "pre-copy, " + rounds + (rounds == 1 ? " round" : " rounds") + " while it ran", whileRunning);
    }

    private static IllegalStateException failed(VirtualMachine vm, boolean resume, String targetName, Exception e) {
        if (resume && vm.state() == VmState.PAUSED) {
            vm.resume();
        }
        return new IllegalStateException("moving " + vm.id() + " to node " + targetName + " failed, and " + vm.id() + " goes on here: "
                + ClusterCommands.reason(e), e);
    }

    /** The pages a bitmap names, read live and sent in pieces of {@link #BATCH_PAGES}; one buffer for the whole move. */
    private static final class Pages {
        private final LiveRam live;
        private final NodeAdmin target;
        private final byte[] buffer = new byte[NodeAdmin.MAX_PIECE];
        private final MemorySegment segment = MemorySegment.ofArray(buffer);
        private final long[] addresses = new long[BATCH_PAGES];
        long bytes;

        Pages(LiveRam live, NodeAdmin target) {
            this.live = live;
            this.target = target;
        }

        /** Sends the pages set in {@code bitmap} and clears it; with {@code skipZero}, a page of zeros is not sent. */
        void send(String ram, long[] bitmap, boolean skipZero) {
            int n = 0;
            for (int w = 0; w < bitmap.length; w++) {
                long bits = bitmap[w];
                bitmap[w] = 0;
                while (bits != 0) {
                    long page = (long) w * 64 + Long.numberOfTrailingZeros(bits);
                    bits &= bits - 1;
                    MemorySegment slot = segment.asSlice(n * LiveRam.PAGE, LiveRam.PAGE);
                    live.read(page * LiveRam.PAGE, slot);
                    if (skipZero && slot.mismatch(ZERO) < 0) {
                        continue;
                    }
                    addresses[n++] = page * LiveRam.PAGE;
                    if (n == BATCH_PAGES) {
                        flush(ram, n);
                        n = 0;
                    }
                }
            }
            if (n > 0) {
                flush(ram, n);
            }
        }

        private void flush(String ram, int n) {
            int length = (int) (n * LiveRam.PAGE);
            target.receivePages(ram, n == BATCH_PAGES ? addresses : Arrays.copyOf(addresses, n),
                    length == buffer.length ? buffer : Arrays.copyOf(buffer, length));
            bytes += length;
        }

        private static final MemorySegment ZERO = MemorySegment.ofArray(new byte[(int) LiveRam.PAGE]);
    }

    /**
     * Frees what the target holds for a move that failed, at once (a transfer it restored or refused is
     * gone already, and an unknown id is ignored); a target that does not answer drops it when idle.
     */
    private static void discard(NodeAdmin target, String transfer) {
        if (transfer == null) {
            return;
        }
        try {
            target.discard(transfer);
        } catch (RuntimeException e) {
            // the target is gone or does not answer: it drops the transfer after TRANSFER_IDLE_NANOS
        }
    }

    /** A snapshot file the target holds in full: its transfer and its size. */
    private record Sent(String transfer, long bytes) {
    }

    /**
     * Writes {@code snapshot} to a temporary file (the format's writer takes a path) and sends it in
     * pieces through a transfer the target opens; the file goes either way, and a transfer that
     * fails midway is discarded.
     */
    private static Sent send(VmSnapshot snapshot, NodeAdmin target) throws IOException {
        Path dir = Files.createTempDirectory("nxia-migrate-");
        Path file = dir.resolve("vm.snapshot");
        String transfer = null;
        try {
            VmSnapshotFile.write(snapshot, file, null, Map.of(), SaveProgress.NONE);
            long bytes = Files.size(file);
            transfer = target.openTransfer(bytes);
            byte[] piece = new byte[NodeAdmin.MAX_PIECE];
            long offset = 0;
            try (InputStream in = Files.newInputStream(file)) {
                int n;
                while ((n = in.readNBytes(piece, 0, piece.length)) > 0) {
                    target.receive(transfer, offset, n == piece.length ? piece : Arrays.copyOf(piece, n));
                    offset += n;
                }
            }
            return new Sent(transfer, bytes);
        } catch (IOException | RuntimeException e) {
            discard(target, transfer);
            throw e;
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }
}
