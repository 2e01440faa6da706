package org.nxia.shell.systemvm.internal;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.felix.service.command.CommandSession;
import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.Execution;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.profile.api.Profile;
import org.nxia.profile.api.ProfileRegistry;
import org.nxia.shell.support.Profiles;
import org.nxia.shell.support.Text;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

/**
 * The Linux side of {@code vm:*}: {@code vm:boot} boots a kernel with its
 * console here; {@code vm:exec} runs a program in a System VM (the Linux image
 * whose init is the control agent), booted for the one program or kept running
 * with {@code --keep} ({@code control:vms} lists those). A bundle of their own,
 * apart from the micro-VM commands of {@code org.nxia.shell}, so that an
 * assembly without Linux VMs (distro/sandbox.bndrun) has neither them nor the
 * control bundle they need.
 */
@Component(service = SystemVmCommands.class, property = {"osgi.command.scope=vm", "osgi.command.function=exec", "osgi.command.function=boot"})
public final class SystemVmCommands {

    /** Boot to the agent's ready line: seconds on hardware, minutes under emulation. */
    static final Duration READY_LIMIT = Duration.ofMinutes(5);
    /**
     * How long a one-shot vm:exec may run (the VM's lifetime and the program's wait) unless -t
     * says otherwise; a kept VM and a program on a terminal (./nxia run) have no limit unless asked.
     */
    static final String EXEC_LIMIT = "10m";
    static final int SIGKILL = 9;

    static final String ROOTFS_HELP = "a root file system image (distro/rootfs/build.sh path): the shared base, read-only, "
            + "under an overlay of this VM's own";

    private final SystemVms systemVms;
    private final VmManager vms;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    private volatile ProfileRegistry profiles;

    @Activate
    public SystemVmCommands(@Reference SystemVms systemVms, @Reference VmManager vms) {
        this.systemVms = systemVms;
        this.vms = vms;
    }

    @Descriptor("boot a Linux kernel (bzImage) in a Linux VM, its serial console here, until it reboots, powers off or -t passes")
    public void boot(CommandSession session,
            @Descriptor("guest RAM, a multiple of 2M from 64M to 3G (default: the profile's, else 256M)") @Parameter(names = {"-m", "--memory"}, absentValue = "") String memory,
            @Descriptor("number of vCPUs (default: the profile's, else 1)") @Parameter(names = {"-c", "--vcpus"}, absentValue = "0") int vcpus,
            @Descriptor("initramfs file") @Parameter(names = {"-r", "--initrd"}, absentValue = "") String initrd,
            @Descriptor("added to the kernel command line") @Parameter(names = {"-k", "--cmdline"}, absentValue = "") String cmdline,
            @Descriptor(ROOTFS_HELP) @Parameter(names = {"--rootfs"}, absentValue = "") String rootfs,
            @Descriptor("stop the VM after this long (30s, 5m; default and 0: no limit)") @Parameter(names = {"-t", "--timeout"}, absentValue = "0") String timeout,
            @Descriptor(Text.DEVICES_HELP) @Parameter(names = {"-d", "--devices"}, absentValue = "") String devices,
            @Descriptor(Profiles.SYSTEM_PROFILE_HELP) @Parameter(names = {"-p", "--profile"}, absentValue = "") String profileName,
            @Descriptor("no ACPI tables: MP tables, and the virtio-mmio devices on the kernel command line (virtio_mmio.device=)")
            @Parameter(names = {"--no-acpi"}, presentValue = "true", absentValue = "false") boolean noAcpi,
            @Descriptor("the guest sees a Hyper-V partition: Hyper-V's CPUID leaves and SynIC instead of KVM's (docs/vmbus.md)")
            @Parameter(names = {"--hyperv"}, presentValue = "true", absentValue = "false") boolean hyperv,
            @Descriptor("the kernel: a bzImage") String kernel) throws Exception {
        HypervisorInfo h = vms.hypervisor();
        if (!h.flavour().hardwareVirtualization()) {
            throw new IllegalArgumentException("cannot boot Linux here: the " + h.backend() + " backend runs on " + h.flavour().label()
                    + ", and a stock kernel needs hardware virtualization (VMX or SVM); run on such a host or in the rig");
        }
        LinuxProfile base = LinuxProfile.of(Path.of(kernel), initrd.isEmpty() ? null : Path.of(initrd))
                .withCmdline(cmdline).withTimeout(Text.parseDuration(timeout)).withDevices(Text.devices(devices)).withAcpi(!noAcpi)
                .withHyperv(hyperv);
        base = profileName.isEmpty() ? base.withMemory(VmProfile.parseSize(memory.isEmpty() ? "256M" : memory))
                : Profiles.apply(Profiles.get(profiles, profileName, Profile.Kind.SYSTEM), base, memory);
        LinuxProfile profile = RootFs.apply(vcpus > 0 ? base.withVcpus(vcpus) : base, rootfs);
        PrintStream out = System.out;
        VmResult r = vms.run(profile, out);
        out.flush();
        out.println(profile.name() + ": " + Text.outcome(r) + " in " + Text.duration(r.runTime()));
        session.put(Text.EXIT_CODE, r.reason() == VmResult.Reason.RESET ? 0 : 1);
    }

    @Descriptor("run a program in a System VM (booted here, or one kept with --keep); prints its output, sets its exit status")
    public void exec(CommandSession session,
            @Descriptor("the System VM's kernel (build.sh path/bzImage)") @Parameter(names = {"-k", "--kernel"}, absentValue = "") String kernel,
            @Descriptor("its initramfs (build.sh path/initramfs.cpio.gz)") @Parameter(names = {"-r", "--initrd"}, absentValue = "") String initrd,
            @Descriptor(ROOTFS_HELP) @Parameter(names = {"--rootfs"}, absentValue = "") String rootfs,
            @Descriptor("guest RAM (default: the profile's, else 256M)") @Parameter(names = {"-m", "--memory"}, absentValue = "") String memory,
            @Descriptor(Profiles.SYSTEM_PROFILE_HELP) @Parameter(names = {"-p", "--profile"}, absentValue = "") String profileName,
            @Descriptor("the longest the VM booted here may run, and the program (30s, 5m; 0: no limit; default 10m, none with --keep"
                    + " or --tty); with --id, the longest the program may run (it is killed then)")
            @Parameter(names = {"-t", "--timeout"}, absentValue = "") String timeout,
            @Descriptor("a System VM kept by an earlier vm:exec --keep (control:vms lists them)") @Parameter(names = {"-i", "--id"}, absentValue = "") String id,
            @Descriptor("keep the VM running afterwards; prints its id") @Parameter(names = {"--keep"}, presentValue = "true", absentValue = "false") boolean keep,
            @Descriptor("on a terminal of its own, this session's input to it, its output as it comes (put the local terminal in raw mode)")
            @Parameter(names = {"--tty"}, presentValue = "true", absentValue = "false") boolean tty,
            @Descriptor(SHARE_HELP) @Parameter(names = {"-s", "--share"}, absentValue = "") String share,
            @Descriptor("program and arguments") String... argv) throws Exception {
        if (argv.length == 0)
            throw new IllegalArgumentException("no program given");
        String limitText = timeout.isEmpty() ? (keep || tty ? "0" : EXEC_LIMIT) : timeout.strip();
        Duration limit = Text.parseDuration(limitText);
        if (limit.isNegative())
            throw new IllegalArgumentException("-t " + timeout + ": a limit is positive, or 0 for none");
        long deadline = System.nanoTime() + limit.toNanos();  // the VM's limit counts from its boot, a little later
        SystemVm svm;
        if (!id.isEmpty()) {
            if (!profileName.isEmpty() || !share.isEmpty())
                throw new IllegalArgumentException("--profile and --share are for a System VM booted by this command; " + id
                        + " runs as it was booted");
            // its session confines the program as the manifest the VM was booted under says
            svm = systemVms.find(id).orElseThrow(() -> new IllegalArgumentException("no System VM " + id + " (control:vms lists them)"));
        } else {
            if (kernel.isEmpty() || initrd.isEmpty())
                throw new IllegalArgumentException("vm:exec needs --kernel and --initrd (distro/system-vm/build.sh path), or --id");
            LinuxProfile base = LinuxProfile.of(Path.of(kernel), Path.of(initrd)).withTimeout(limit);
            base = profileName.isEmpty()
                    ? base.withMemory(VmProfile.parseSize(memory.isEmpty() ? "256M" : memory)).withManifest(Profiles.SYSTEM_MANIFEST)
                    : Profiles.apply(Profiles.get(profiles, profileName, Profile.Kind.SYSTEM), base, memory);
            LinuxProfile profile = RootFs.apply(base, rootfs);
            if (!share.isEmpty())
                profile = profile.withDevices(Stream.concat(profile.devices().stream(), Stream.of(shareDevice(share))).toList());
            svm = systemVms.boot(profile, READY_LIMIT);   // its session confines the program by the profile's manifest
            if (!share.isEmpty())
                mountShare(svm, MOUNT_LIMIT);
        }
        boolean ok = false;
        try {
            ExitStatus status;
            try {
                if (tty) {
                    status = onTerminal(session, svm.session(), argv, limit.isZero() ? null : deadline);
                } else {
                    ExecResult r = runUntil(svm.session(), ExecRequest.of(argv), limit.isZero() ? null : deadline);
                    System.out.write(r.stdout());
                    System.out.flush();
                    System.err.write(r.stderr());
                    System.err.flush();
                    status = r.status();
                }
            } catch (TimeoutException e) {
                if (id.isEmpty()) {   // the finally below stops it
                    throw new IOException("vm:exec: " + argv[0] + " did not finish within " + limitText + "; stopped (System VM "
                            + svm.vm().id() + "; -t gives it longer)");
                }
                throw new IOException("vm:exec: " + argv[0] + " did not finish within " + limitText + "; killed (System VM " + id
                        + " runs on; -t gives it longer)");
            }
            session.put(Text.EXIT_CODE, status.signaled() ? 128 + status.code() : status.code());
            ok = true;
        } finally {
            if (keep && ok) {
                System.err.println("System VM " + svm.vm().id() + " kept (vm:exec -i " + svm.vm().id() + " ...)");
            } else if (id.isEmpty()) {
                svm.close();  // the agent syncs the guest's file systems first
            }
        }
    }

    static final String SHARE_TAG = "host", SHARE_MOUNT = "/mnt/host";
    static final String SHARE_HELP = "a host directory the program sees at " + SHARE_MOUNT + " (virtio-fs, served by Debian's virtiofsd)";

    /** The virtio-fs device of {@code --share DIR}. */
    static DeviceConfig shareDevice(String dir) {
        Path p = Path.of(dir).toAbsolutePath().normalize();
        if (!Files.isDirectory(p))
            throw new IllegalArgumentException("--share " + dir + ": no such directory on the host");
        if (p.toString().contains(",") || p.toString().contains("="))
            throw new IllegalArgumentException("--share " + dir + ": a path with ',' or '=' cannot be given to a device");
        return DeviceConfig.parse("virtio-fs:path=" + p + ",tag=" + SHARE_TAG);
    }

    /**
     * The longest the guest's mount of the shared directory may take: a handful of FUSE requests
     * that virtiofsd answers in milliseconds, seconds under emulation. A mount whose requests go
     * unanswered never ends by itself (the guest's FUSE waits without a limit).
     */
    static final Duration MOUNT_LIMIT = Duration.ofSeconds(60);

    /**
     * The guest's mount, refused at once when the virtio-fs device (id 26, 0x001a) says
     * DEVICE_NEEDS_RESET (status bit 64): its back-end, virtiofsd, failed (the device's
     * lastError says how), and Linux's driver would leave the mount's requests unanswered.
     */
    static final String MOUNT_SCRIPT = "for d in /sys/bus/virtio/devices/*; do"
            + " if [ \"$(cat $d/device 2>/dev/null)\" = 0x001a ] && [ $(( $(cat $d/status) & 64 )) -ne 0 ]; then"
            + " echo \"the virtio-fs device ${d##*/} needs a reset (DEVICE_NEEDS_RESET): its back-end failed\" >&2; exit 1; fi;"
            + " done; mkdir -p " + SHARE_MOUNT + " && mount -t virtiofs " + SHARE_TAG + " " + SHARE_MOUNT;

    /** Mounts the shared directory before the program runs; a failure, or no end within {@code limit}, stops the VM, saying why. */
    static void mountShare(SystemVm svm, Duration limit) throws IOException, InterruptedException {
        ByteArrayOutputStream stderr = new ByteArrayOutputStream();
        ExitStatus status;
        try {
            Execution mount = svm.session().start(ExecRequest.of("sh", "-c", MOUNT_SCRIPT), (err, data, offset, length) -> {
                        if (err) {
                            synchronized (stderr) {
                                stderr.write(data, offset, length);
                            }
                        }
                    });
            mount.closeStdin();
            status = mount.exit().get(limit.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            String devices = fsStates(svm);
            svm.close();
            throw new IOException("--share: mounting the host directory at " + SHARE_MOUNT + " in the guest did not end within "
                    + Text.duration(limit) + "; the device (its rings, the kicks passed to virtiofsd, its interrupts): " + devices);
        } catch (ExecutionException e) {
            svm.close();
            throw new IOException("--share: mounting the host directory at " + SHARE_MOUNT + " in the guest failed: " + e.getCause().getMessage(),
                    e.getCause());
        } catch (IOException | RuntimeException | InterruptedException e) {
            svm.close();
            throw e;
        }
        if (status.code() != 0 || status.signaled()) {
            String devices = fsStates(svm);
            svm.close();
            String why;
            synchronized (stderr) {
                why = stderr.toString(StandardCharsets.UTF_8).strip();
            }
            throw new IOException("--share: mounting the host directory at " + SHARE_MOUNT + " in the guest failed: " + why
                    + "; the device (lastError says why it failed): " + devices);
        }
    }

    /** The virtio-fs devices' states (the transport's, with virtiofsd's part), read before the VM goes. */
    private static String fsStates(SystemVm svm) {
        return svm.vm().devices().stream().filter(d -> d.type().equals("virtio-fs")).map(d -> d.state().toString())
                .collect(Collectors.joining("; "));
    }

    /**
     * Runs a program to its end with stdin closed, collecting its output as
     * {@link AgentSession#exec(ExecRequest)} does, but waits only until {@code deadline}
     * ({@link System#nanoTime()}; null: no limit): then the program is killed.
     *
     * @throws TimeoutException it did not end by the deadline (it was sent SIGKILL)
     */
    static ExecResult runUntil(AgentSession agent, ExecRequest request, Long deadline)
            throws IOException, InterruptedException, TimeoutException {
        if (deadline == null)
            return agent.exec(request);
        ByteArrayOutputStream[] out = {new ByteArrayOutputStream(), new ByteArrayOutputStream()};
        boolean[] truncated = {false};
        Execution program = agent.start(request, (err, data, offset, length) -> {
            synchronized (out) {
                ByteArrayOutputStream s = out[err ? 1 : 0];
                int keep = Math.min(length, ExecResult.OUTPUT_LIMIT - s.size());
                s.write(data, offset, keep);
                truncated[0] |= keep < length;
            }
        });
        program.closeStdin();
        ExitStatus status = awaitExit(program, deadline);
        synchronized (out) {
            return new ExecResult(status, out[0].toByteArray(), out[1].toByteArray(), truncated[0]);
        }
    }

    /** The program's exit status, waiting until {@code deadline} (null: no limit), when it is killed. */
    private static ExitStatus awaitExit(Execution program, Long deadline) throws IOException, InterruptedException, TimeoutException {
        try {
            if (deadline == null)
                return program.exit().get();
            return program.exit().get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            try {
                program.signal(SIGKILL);
            } catch (IOException gone) {
                // the session ended with it; the caller stops the VM or says the program was killed
            }
            throw e;
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(String.valueOf(e.getCause()), e.getCause());
        }
    }

    /**
     * Runs {@code argv} on a guest pty (what {@code ./nxia run} gives: bash): the
     * session's keyboard goes to it as it is typed, its output comes here as it
     * is written. The size comes from {@code NXIA_TTY_SIZE} ("ROWS COLS", which
     * the launcher takes from {@code stty size}), else 24x80.
     */
    private static ExitStatus onTerminal(CommandSession session, AgentSession agent, String[] argv, Long deadline) throws Exception {
        int rows = 24, cols = 80;
        String size = System.getenv("NXIA_TTY_SIZE");
        if (size != null && size.trim().matches("\\d{1,4} \\d{1,4}")) {
            String[] rc = size.trim().split(" ");
            rows = Math.max(1, Integer.parseInt(rc[0]));
            cols = Math.max(1, Integer.parseInt(rc[1]));
        }
        PrintStream out = session.getConsole();
        ExecRequest request = ExecRequest.of(argv).withPty(rows, cols).withEnv("TERM", System.getenv().getOrDefault("TERM", "linux"));
        Execution program = agent.start(request, (stderr, data, offset, length) -> {
            out.write(data, offset, length);
            out.flush();
        });
        InputStream keyboard = session.getKeyboard();
        Thread input = Thread.ofPlatform().daemon().name("vm-exec-tty").start(() -> {
            byte[] buf = new byte[4096];
            try {
                for (int n; (n = keyboard.read(buf)) > 0;) {
                    program.write(Arrays.copyOf(buf, n));
                }
                program.closeStdin();
            } catch (IOException e) {
                // the program or the session ended
            }
        });
        try {
            return awaitExit(program, deadline);
        } finally {
            input.interrupt();
        }
    }
}
