package org.nxia.shell.internal;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.felix.service.command.CommandSession;
import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.profile.api.Profile;
import org.nxia.profile.api.ProfileRegistry;
import org.nxia.shell.support.GuestKit;
import org.nxia.shell.support.Profiles;
import org.nxia.shell.support.Text;
import org.nxia.shell.support.VmSnapshotFile;
import org.nxia.snapshot.api.SnapshotFormatException;
import org.nxia.snapshot.api.SnapshotInfo;
import org.nxia.snapshot.api.SnapshotKeys;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.spi.RamFile;
import org.nxia.vmm.api.Sandbox;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmInfo;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.DeviceConfig;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

/** {@code vm:*}: create, start, stop, inspect and run micro-VMs. */
@Component(service = VmCommands.class, property = {
        "osgi.command.scope=vm",
        "osgi.command.function=create", "osgi.command.function=start", "osgi.command.function=stop",
        "osgi.command.function=list", "osgi.command.function=info", "osgi.command.function=console",
        "osgi.command.function=run", "osgi.command.function=destroy",
        "osgi.command.function=pause", "osgi.command.function=resume", "osgi.command.function=snapshot",
        "osgi.command.function=restore", "osgi.command.function=clone"})
public final class VmCommands {

    /** Clones one vm:clone starts: each is a VM with its own vCPU threads. */
    static final int MAX_CLONES = 256;

    private final VmManager vms;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    private volatile ProfileRegistry profiles;

    @Activate
    public VmCommands(@Reference VmManager vms) {
        this.vms = vms;
    }

    @Descriptor("create a micro-VM from a guest image (not started); prints its id")
    public String create(
            @Descriptor("guest RAM, a multiple of 2M from 2M to 3G (default: the profile's, else 16M)") @Parameter(names = {"-m", "--memory"}, absentValue = "") String memory,
            @Descriptor("file whose bytes the guest gets as input") @Parameter(names = {"-i", "--input"}, absentValue = "") String input,
            @Descriptor("number handed to the guest in its boot block") @Parameter(names = {"-a", "--arg"}, absentValue = "0") long arg,
            @Descriptor(Text.DEVICES_HELP + "; added to the profile's") @Parameter(names = {"-d", "--devices"}, absentValue = "") String devices,
            @Descriptor("a micro profile (profile:list): its memory, devices and placement, and its name and version in vm:info") @Parameter(names = {"-p", "--profile"}, absentValue = "") String profile,
            @Descriptor("guest image: a name from the guest kit (hello) or a path to an .elf") String image) {
        if (profile.isEmpty()) {
            return vms.create(profile(image, memory.isEmpty() ? "16M" : memory, input, arg, "30s", devices)).id();
        }
        Profile p = Profiles.get(profiles, profile, Profile.Kind.MICRO);
        VmProfile base = profile(image, memory.isEmpty() ? (p.memoryBytes() >> 20) + "M" : memory, input, arg, "30s", devices);
        List<DeviceConfig> all = new ArrayList<>(p.devices());
        all.addAll(base.devices());
        return vms.create(base.withName(Profiles.vmName(p)).withDevices(all).withPlacement(p.placement().host())).id();
    }

    @Descriptor("start a created VM")
    public String start(@Descriptor("VM id, e.g. vm-1") String id) {
        vm(id).start();
        return id + " started";
    }

    @Descriptor("stop a running VM; with --graceful, ask its guest to power off (a Hyper-V guest's shutdown channel) and wait for it")
    public String stop(
            @Descriptor("ask the guest to power off, and wait for it") @Parameter(names = {"-g", "--graceful"}, absentValue = "false",
                    presentValue = "true") boolean graceful,
            @Descriptor("with --graceful: how long to wait before stopping it anyway (default 60s)") @Parameter(names = {"-w", "--wait"},
                    absentValue = "60s") String within,
            @Descriptor("VM id") String id) {
        VirtualMachine vm = vm(id);
        if (graceful) {
            Duration wait = Text.parseDuration(within);
            if (!vm.requestShutdown()) {
                throw new IllegalStateException(id + " has no way to ask its guest to power off: a Hyper-V guest (hyperv=true) whose"
                        + " hv_utils driver has opened the shutdown channel has one; vm:stop without --graceful stops it at once");
            }
            try {
                return id + " " + Text.outcome(vm.await(wait));
            } catch (Exception e) {
                vm.stop();
                return id + " did not power off within " + within + " of being asked; stopped it";
            }
        }
        vm.stop();
        try {
            VmResult r = vm.await(Duration.ofSeconds(5));
            return id + " " + Text.outcome(r);
        } catch (Exception e) {
            return id + " was asked to stop";
        }
    }

    @Descriptor("pause a running VM: its vCPUs leave the guest and its devices' notifications are held")
    public String pause(@Descriptor("VM id") String id) {
        vm(id).pause();
        return id + " paused";
    }

    @Descriptor("resume a paused VM where it paused")
    public String resume(@Descriptor("VM id") String id) {
        vm(id).resume();
        return id + " resumed";
    }

    @Descriptor("save a micro-VM to a snapshot file (a running VM is paused for the save and then resumed;"
            + " one created and not started is saved at its entry point, a template for vm:run --from-snapshot)")
    public String snapshot(
            @Descriptor(SnapshotFileCommands.KEY_HELP + "; encrypts the file") @Parameter(names = {"-k", "--key"}, absentValue = "") String key,
            @Descriptor("VM id") String id,
            @Descriptor("snapshot file to create (never overwritten)") String file) throws IOException {
        VirtualMachine vm = vm(id);
        if (vm.spec() instanceof LinuxProfile) {
            throw new IllegalArgumentException(id + " is a System VM: systemvm:snapshot saves it with its agent quiesced (and needs a key)");
        }
        boolean wasRunning = vm.state() == VmState.RUNNING;
        if (wasRunning) {
            vm.pause();
        }
        try {
            VmSnapshot s = vm.snapshot();
            SnapshotInfo info = VmSnapshotFile.write(s, Path.of(file), key.isEmpty() ? null : SnapshotKeys.load(Path.of(key)), Map.of(),
                    VmSnapshotFile.progressLines(System.out));
            return id + " saved to " + file + ": " + Text.size(info.fileLength()) + ", RAM " + Text.size(s.ramBytes()) + " touched of "
                    + Text.size(s.spec().memoryBytes()) + (key.isEmpty() ? "" : ", encrypted");
        } finally {
            if (wasRunning) {
                vm.resume();
            }
        }
    }

    @Descriptor("restore a snapshot file into a new VM and start it; prints its id")
    public String restore(
            @Descriptor(SnapshotFileCommands.KEY_HELP) @Parameter(names = {"-k", "--key"}, absentValue = "") String key,
            @Descriptor("snapshot file") String file) throws IOException, SnapshotFormatException {
        if (!Files.isRegularFile(Path.of(file))) {
            throw new IllegalArgumentException("no snapshot file " + file);
        }
        return vms.restore(readMicroVm(Path.of(file), key)).id();
    }

    @Descriptor("start N copy-on-write clones of a micro-VM snapshot file: each goes on where the snapshot was saved, its RAM"
            + " the file's pages mapped privately (shared between clones until one writes a page; no write reaches the file);"
            + " prints their ids. An encrypted file is restored by copy (vm:restore)")
    public String clone(
            @Descriptor("clones to start (default 1)") @Parameter(names = {"-n", "--count"}, absentValue = "1") int count,
            @Descriptor("unencrypted snapshot file of a micro-VM (vm:snapshot without -k); it must stay unchanged while the clones run")
            String file) throws IOException, SnapshotFormatException {
        if (count < 1 || count > MAX_CLONES) {
            throw new IllegalArgumentException("give 1 to " + MAX_CLONES + " clones, not " + count);
        }
        Path path = Path.of(file);
        if (!Files.isRegularFile(path)) {
            throw new IllegalArgumentException("no snapshot file " + file);
        }
        VmSnapshotFile.CloneSource source = VmSnapshotFile.readForClone(path);
        if (source.vm().spec() instanceof LinuxProfile) {
            throw new IllegalArgumentException(file + " is a System VM's snapshot: systemvm:restore starts it (with a new agent"
                    + " generation and secret); System VMs are not cloned");
        }
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            try {
                ids.add(vms.clone(source.vm(), source.ram()).id());
            } catch (RuntimeException e) {
                if (ids.isEmpty()) {
                    throw e;
                }
                throw new IllegalStateException("clone " + (i + 1) + " of " + count + " failed: " + e.getMessage() + "; "
                        + String.join(" ", ids) + " run (vm:destroy ends them)", e);
            }
        }
        RamFile ram = source.ram();
        return String.join(" ", ids) + "\n" + count + (count == 1 ? " clone" : " clones") + " of " + file + ": RAM "
                + Text.size(ram.ramBytes()) + ", of it " + Text.size(ram.storedBytes()) + " in " + ram.extents().size()
                + (ram.extents().size() == 1 ? " run" : " runs") + " of the file's pages mapped copy-on-write, the rest zero pages (vm:info ID: ram_file_resident_bytes,"
                + " ram_shared_bytes, ram_own_bytes)";
    }

    @Descriptor("stop a VM if needed and release its memory")
    public String destroy(@Descriptor("VM id") String id) {
        if (!vms.destroy(id)) {
            throw new IllegalArgumentException("no VM " + id + " (vm:list shows the VMs)");
        }
        return id + " destroyed";
    }

    @Descriptor("list the VMs")
    public String list() {
        List<List<String>> rows = new ArrayList<>();
        for (VirtualMachine vm : vms.list()) {
            rows.add(List.of(vm.id(), vm.spec().name(), vm.state().name().toLowerCase(),
                    Text.size(vm.spec().memoryBytes()),
                    vm.result().map(Text::outcome).orElse("")));
        }
        if (rows.isEmpty()) {
            return "no VMs (vm:create or vm:run makes one)";
        }
        return Text.table(List.of("id", "name", "state", "memory", "result"), rows);
    }

    @Descriptor("show a VM's state, backend, execution mode and counters")
    public String info(@Descriptor("VM id") String id) {
        VirtualMachine vm = vm(id);
        VmInfo i = vm.info();
        StringBuilder out = new StringBuilder();
        out.append("id:         ").append(i.id()).append('\n');
        out.append("name:       ").append(i.name()).append('\n');
        out.append("state:      ").append(i.state().name().toLowerCase()).append('\n');
        out.append("image:      ").append(i.image()).append('\n');
        out.append("memory:     ").append(Text.size(i.memoryBytes())).append(", vcpus: ").append(i.vcpus()).append('\n');
        HypervisorInfo h = i.hypervisor();
        out.append("backend:    ").append(h.backend()).append(", ").append(h.flavour().label()).append('\n');
        out.append("execution:  ").append(i.executionMode()).append('\n');
        out.append("notify:     ").append(Text.notifyPath(i.counters())).append('\n');
        Profiles.describe(vm.placement(), out);
        vm.devices().forEach(d -> out.append("device:     ").append(d.type()).append(' ').append(d.state()).append('\n'));
        vm.result().ifPresent(r -> out.append("result:     ").append(Text.outcome(r))
                .append(" after ").append(Text.duration(r.runTime())).append('\n'));
        for (Map.Entry<String, Long> c : i.counters().entrySet()) {
            out.append("  ").append(c.getKey()).append(" = ").append(c.getValue()).append('\n');
        }
        return out.toString();
    }

    @Descriptor("print what a VM's guest has written to its console")
    public String console(@Descriptor("VM id") String id) {
        return vm(id).console();
    }

    @Descriptor("create, start and wait for a micro-VM; prints its console, output and exit status."
            + " With --from-snapshot, runs a micro-VM snapshot file's VM from where it was saved, reset in place between runs")
    public void run(CommandSession session,
            @Descriptor("the argument is a snapshot file of a micro-VM (vm:snapshot), not a guest image: its VM serves each run,"
                    + " reset in place to the snapshot; memory, input, arg, timeout and devices are the snapshot's")
            @Parameter(names = {"-s", "--from-snapshot"}, presentValue = "true", absentValue = "false") boolean fromSnapshot,
            @Descriptor(SnapshotFileCommands.KEY_HELP + " (with --from-snapshot)") @Parameter(names = {"-k", "--key"}, absentValue = "") String key,
            @Descriptor("runs (with --from-snapshot)") @Parameter(names = {"-n", "--runs"}, absentValue = "1") int runs,
            @Descriptor("guest RAM, a multiple of 2M from 2M to 3G") @Parameter(names = {"-m", "--memory"}, absentValue = "16M") String memory,
            @Descriptor("file whose bytes the guest gets as input") @Parameter(names = {"-i", "--input"}, absentValue = "") String input,
            @Descriptor("number handed to the guest in its boot block") @Parameter(names = {"-a", "--arg"}, absentValue = "0") long arg,
            @Descriptor("stop the guest after this long (500ms, 30s, 2m)") @Parameter(names = {"-t", "--timeout"}, absentValue = "30s") String timeout,
            @Descriptor("write the guest's output bytes to this file") @Parameter(names = {"-o", "--output"}, absentValue = "") String output,
            @Descriptor(Text.DEVICES_HELP) @Parameter(names = {"-d", "--devices"}, absentValue = "") String devices,
            @Descriptor("guest image: a name from the guest kit (hello) or a path to an .elf; with --from-snapshot, a snapshot file")
            String image) throws Exception {
        PrintStream out = System.out;
        if (fromSnapshot) {
            if (!input.isEmpty() || arg != 0 || !devices.isEmpty()) {
                throw new IllegalArgumentException("--from-snapshot runs the snapshot's VM as saved: -i, -a and -d do not apply");
            }
            runFromSnapshot(session, out, Path.of(image), key, runs, output);
            return;
        }
        VmProfile profile = profile(image, memory, input, arg, timeout, devices);
        VmResult r = vms.run(profile, out);
        out.flush();
        if (!output.isEmpty()) {
            Files.write(Path.of(output), r.output());
        } else if (r.output().length > 0) {
            out.println("output: " + r.output().length + " bytes: " + hex(r.output(), 64));
        }
        out.println(profile.name() + ": " + Text.outcome(r) + " in " + Text.duration(r.runTime()));
        session.put(Text.EXIT_CODE, r.reason() == VmResult.Reason.EXITED ? r.exitStatus() : 1);
    }

    private static VmSnapshot readMicroVm(Path file, String key) throws IOException, SnapshotFormatException {
        VmSnapshot s = VmSnapshotFile.read(file, key.isEmpty() ? null : SnapshotKeys.load(Path.of(key)));
        if (s.spec() instanceof LinuxProfile) {
            throw new IllegalArgumentException(file + " is a System VM's snapshot: systemvm:restore starts it");
        }
        return s;
    }

    /** {@code runs} runs of a {@link Sandbox} made of the snapshot file; the exit code is the last run's. */
    private void runFromSnapshot(CommandSession session, PrintStream out, Path file, String key, int runs, String output)
            throws IOException, SnapshotFormatException, InterruptedException {
        if (runs < 1) {
            throw new IllegalArgumentException("give at least one run, not " + runs);
        }
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("no snapshot file " + file);
        }
        VmSnapshot s = readMicroVm(file, key);
        try (Sandbox sandbox = vms.sandbox(s)) {
            VmResult r = null;
            for (int i = 1; i <= runs; i++) {
                r = sandbox.run(out);
                out.flush();
                if (output.isEmpty() && r.output().length > 0) {
                    out.println("output: " + r.output().length + " bytes: " + hex(r.output(), 64));
                }
                out.println(s.spec().name() + " from " + file.getFileName() + ", run " + i + ": " + Text.outcome(r) + " in "
                        + Text.duration(r.runTime()) + (i > 1 ? "; reset in place: " + sandbox.pagesRewritten() + " pages rewritten" : ""));
            }
            if (!output.isEmpty()) {
                Files.write(Path.of(output), r.output());
            }
            session.put(Text.EXIT_CODE, r.reason() == VmResult.Reason.EXITED ? r.exitStatus() : 1);
        }
    }

    static String hex(byte[] bytes, int max) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < Math.min(bytes.length, max); i++) {
            s.append(String.format("%02x", bytes[i]));
        }
        return bytes.length > max ? s + "..." : s.toString();
    }

    private VirtualMachine vm(String id) {
        return vms.find(id).orElseThrow(() -> new IllegalArgumentException("no VM " + id + " (vm:list shows the VMs)"));
    }

    static VmProfile profile(String image, String memory, String input, long arg, String timeout, String devices) {
        Path path = GuestKit.resolve(image);
        byte[] in = new byte[0];
        if (!input.isEmpty()) {
            try {
                in = Files.readAllBytes(Path.of(input));
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot read input file " + input + ": " + e.getMessage());
            }
        }
        return VmProfile.of(path).withMemory(VmProfile.parseSize(memory)).withInput(in).withArg(arg)
                .withTimeout(Text.parseDuration(timeout)).withDevices(Text.devices(devices));
    }
}
