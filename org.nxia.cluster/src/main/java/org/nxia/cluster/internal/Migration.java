package org.nxia.cluster.internal;

import java.io.IOException;
import java.io.InputStream;
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
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmState;

/**
 * Moves a micro-VM of this node to another, stop-and-copy: pause, save, send the snapshot file in
 * pieces, have the target restore and start it, and only then destroy the VM here. Any failure
 * before the target confirms resumes the VM where it was.
 */
final class Migration {

    private Migration() {
    }

    static Moved move(VmManager vms, String vmId, String targetName, NodeAdmin target) throws IOException {
        VirtualMachine vm = vms.find(vmId).orElseThrow(() -> new IllegalArgumentException("no VM " + vmId + " on this node (vm:list)"));
        if (!(vm.spec() instanceof VmProfile)) {
            throw new IllegalArgumentException(vmId + " is a System VM: only micro-VMs move between nodes yet");
        }
        VmState state = vm.state();
        if (state != VmState.RUNNING && state != VmState.PAUSED && state != VmState.CREATED) {
            throw new IllegalArgumentException(vmId + " is " + state.name().toLowerCase() + ": only a created, running or paused VM moves");
        }
        long start = System.nanoTime();
        boolean wasRunning = state == VmState.RUNNING;
        if (wasRunning) {
            vm.pause();
        }
        long paused = System.nanoTime();
        Path dir = Files.createTempDirectory("nxia-migrate-");
        Path file = dir.resolve(vmId + ".snapshot");
        VmSummary moved;
        long bytes;
        try {
            VmSnapshot snapshot = vm.snapshot();
            VmSnapshotFile.write(snapshot, file, null, Map.of(), SaveProgress.NONE);
            bytes = Files.size(file);
            String transfer = target.openTransfer(bytes);
            send(file, transfer, target);
            moved = target.restore(transfer);
        } catch (IOException | RuntimeException e) {
            if (wasRunning) {
                vm.resume();
            }
            throw new IllegalStateException("moving " + vmId + " to node " + targetName + " failed, and " + vmId + " goes on here: "
                    + ClusterCommands.reason(e), e);
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
        long resumed = System.nanoTime();
        vms.destroy(vmId);
        return new Moved(vmId, moved, bytes, Duration.ofNanos(resumed - paused), Duration.ofNanos(resumed - start));
    }

    private static void send(Path file, String transfer, NodeAdmin target) throws IOException {
        byte[] piece = new byte[NodeAdmin.MAX_PIECE];
        long offset = 0;
        try (InputStream in = Files.newInputStream(file)) {
            int n;
            while ((n = in.readNBytes(piece, 0, piece.length)) > 0) {
                target.receive(transfer, offset, n == piece.length ? piece : Arrays.copyOf(piece, n));
                offset += n;
            }
        }
    }
}
