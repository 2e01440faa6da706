package org.nxia.shell.systemvm.internal;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

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
import org.nxia.vmm.spi.RamFile;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code systemvm:snapshot} and {@code systemvm:restore}: a running System VM saved to an
 * encrypted snapshot file with its agent quiesced, and started again from one as a new
 * generation (its own secret, reseeded entropy); {@code systemvm:clone} starts several at once
 * that share the saved RAM copy-on-write. {@code vm:snapshot} and {@code vm:restore} take
 * micro-VMs; these know the agent.
 */
@Component(service = SystemVmSnapshotCommands.class,
        property = {"osgi.command.scope=systemvm", "osgi.command.function=snapshot", "osgi.command.function=restore",
                "osgi.command.function=clone"})
public final class SystemVmSnapshotCommands {

    static final String KEY_HELP = "key file (32 bytes, raw or hex; owner-only: snapshot:key makes one); required: the file holds the agent's secret";

    /** Clones one systemvm:clone starts: each is a Linux VM with its vCPU threads, agent session and vsock socket. */
    static final int MAX_CLONES = 64;

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

    @Descriptor("start N copy-on-write clones of a systemvm:snapshot file: its RAM is decrypted once into memory (a file on"
            + " the tmpfs at /dev/shm, deleted once the clones map it), each clone maps those pages privately (shared until one"
            + " writes a page) and moves at once to a generation of its own (its own secret, reseeded entropy); prints their ids")
    public String clone(
            @Descriptor(KEY_HELP) @Parameter(names = {"-k", "--key"}, absentValue = "") String key,
            @Descriptor("clones to start (default 1)") @Parameter(names = {"-n", "--count"}, absentValue = "1") int count,
            @Descriptor("how long each may take until its agent's session is open (30s, 2m)")
            @Parameter(names = {"-t", "--timeout"}, absentValue = "2m") String limit,
            @Descriptor("snapshot file") String file) throws Exception {
        if (count < 1 || count > MAX_CLONES) {
            throw new IllegalArgumentException("give 1 to " + MAX_CLONES + " clones, not " + count);
        }
        SecretKey k = key(key);
        Path source = Path.of(file);
        if (!Files.isRegularFile(source)) {
            throw new IllegalArgumentException("no snapshot file " + file);
        }
        Duration ready = Text.parseDuration(limit);
        long start = System.nanoTime();
        SystemVmSnapshot s = SystemVmSnapshotFile.read(source, k);
        Duration read = Duration.ofNanos(System.nanoTime() - start);
        List<String> ids = new ArrayList<>();
        long[] sessions = new long[count];
        RamFile ram;
        try (RamTemplate template = RamTemplate.of(s.vm(), RamTemplate.SHM)) {
            ram = template.ram();
            SystemVmSnapshot state = RamTemplate.withoutRam(s);
            for (int i = 0; i < count; i++) {
                try {
                    SystemVm vm = systemVms.clone(state, ram, ready);
                    ids.add(vm.vm().id());
                    sessions[i] = vm.readyAfter().toMillis();
                } catch (Exception e) {
                    if (ids.isEmpty()) {
                        throw e;
                    }
                    throw new IllegalStateException("clone " + (i + 1) + " of " + count + " failed: " + e.getMessage() + "; "
                            + String.join(" ", ids) + " run (control:vms lists them)", e);
                }
            }
        }
        return String.join(" ", ids) + "\n" + count + (count == 1 ? " clone" : " clones") + " of " + file + ": file read in "
                + Text.duration(read) + "; RAM " + Text.size(ram.ramBytes()) + ", of it " + Text.size(ram.storedBytes()) + " decrypted once"
                + " into memory and mapped copy-on-write; sessions open " + String.join(", ", java.util.Arrays.stream(sessions).mapToObj(Long::toString).toList())
                + " ms after each clone began (generation " + (s.generation() + 1) + ", each with a secret and entropy of its own;"
                + " vm:info ID: ram_file_resident_bytes, ram_shared_bytes, ram_own_bytes)";
    }

    private static SecretKey key(String file) throws Exception {
        if (file.isEmpty()) {
            throw new IllegalArgumentException("give -k KEYFILE: a System VM's snapshot holds its agent's secret and is always encrypted"
                    + " (snapshot:key KEYFILE makes a key)");
        }
        return SnapshotKeys.load(Path.of(file));
    }
}
