package org.nxia.shell.systemvm.internal;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import javax.crypto.SecretKey;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.control.api.SystemVms;
import org.nxia.shell.support.Text;
import org.nxia.shell.support.VmSnapshotFile;
import org.nxia.snapshot.api.SnapshotInfo;
import org.nxia.snapshot.api.SnapshotKeys;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code systemvm:snapshot} and {@code systemvm:restore}: a running System VM saved to an
 * encrypted snapshot file with its agent quiesced, and started again from one as a new
 * generation (its own secret, reseeded entropy). {@code vm:snapshot} and {@code vm:restore}
 * take micro-VMs; these know the agent.
 */
@Component(service = SystemVmSnapshotCommands.class,
        property = {"osgi.command.scope=systemvm", "osgi.command.function=snapshot", "osgi.command.function=restore"})
public final class SystemVmSnapshotCommands {

    static final String KEY_HELP = "key file (32 bytes, raw or hex; owner-only: snapshot:key makes one); required: the file holds the agent's secret";

    private final SystemVms systemVms;

    @Activate
    public SystemVmSnapshotCommands(@Reference SystemVms systemVms) {
        this.systemVms = systemVms;
    }

    @Descriptor("save a running System VM to an encrypted snapshot file: its agent quiesces (file systems synced),"
            + " the VM pauses, is saved, and both go on")
    public String snapshot(
            @Descriptor(KEY_HELP) @Parameter(names = {"-k", "--key"}, absentValue = "") String key,
            @Descriptor("the System VM's id (control:vms lists them)") String id,
            @Descriptor("snapshot file to create (never overwritten)") String file) throws Exception {
        SecretKey k = key(key);
        Path target = Path.of(file);
        if (Files.exists(target)) {
            throw new IllegalArgumentException(file + " exists: a snapshot file is never overwritten");
        }
        if (systemVms.find(id).isEmpty()) {
            throw new IllegalArgumentException("no System VM " + id + " (control:vms lists them; vm:exec --keep keeps one)");
        }
        long start = System.nanoTime();
        SystemVmSnapshot s = systemVms.snapshot(id);
        Duration paused = Duration.ofNanos(System.nanoTime() - start);
        SnapshotInfo info = SystemVmSnapshotFile.write(s, target, k, VmSnapshotFile.progressLines(System.out));
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        return id + " saved to " + file + " in " + Text.duration(took) + " (quiesced and saved in memory in " + Text.duration(paused)
                + "): " + Text.size(info.fileLength()) + ", RAM " + Text.size(s.vm().ramBytes()) + " touched of "
                + Text.size(s.profile().memoryBytes()) + ", encrypted";
    }

    @Descriptor("start a System VM from a systemvm:snapshot file; prints its id (vm:exec --id ID runs programs in it)")
    public String restore(
            @Descriptor(KEY_HELP) @Parameter(names = {"-k", "--key"}, absentValue = "") String key,
            @Descriptor("how long until its agent's session is open (30s, 2m)") @Parameter(names = {"-t", "--timeout"}, absentValue = "2m")
            String limit,
            @Descriptor("snapshot file") String file) throws Exception {
        SecretKey k = key(key);
        Path source = Path.of(file);
        if (!Files.isRegularFile(source)) {
            throw new IllegalArgumentException("no snapshot file " + file);
        }
        long start = System.nanoTime();
        SystemVmSnapshot s = SystemVmSnapshotFile.read(source, k);
        Duration read = Duration.ofNanos(System.nanoTime() - start);
        SystemVm vm = systemVms.restore(s, Text.parseDuration(limit));
        return vm.vm().id() + " restored from " + file + ": file read in " + Text.duration(read) + ", its agent's session open "
                + Text.duration(vm.readyAfter()) + " later (generation " + (s.generation() + 1) + ": a secret and entropy of its own)";
    }

    private static SecretKey key(String file) throws Exception {
        if (file.isEmpty()) {
            throw new IllegalArgumentException("give -k KEYFILE: a System VM's snapshot holds its agent's secret and is always encrypted"
                    + " (snapshot:key KEYFILE makes a key)");
        }
        return SnapshotKeys.load(Path.of(file));
    }
}
