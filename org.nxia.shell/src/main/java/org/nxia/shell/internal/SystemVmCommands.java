package org.nxia.shell.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;

import org.apache.felix.service.command.CommandSession;
import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlConnector;
import org.nxia.control.api.ExecResult;
import org.nxia.device.virtio.vsock.VsockUnixClient;
import org.nxia.vmm.api.HypervisorInfo;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code vm:exec}: runs a program in a System VM (the Linux image whose init
 * is the control agent), reached over virtio-vsock port 1024 through the
 * device's host Unix socket (docs/vsock.md, docs/control-protocol.md).
 */
@Component(service = SystemVmCommands.class, property = {"osgi.command.scope=vm", "osgi.command.function=exec"})
public final class SystemVmCommands {

    static final String READY = "nxia-agent: ready";
    static final int AGENT_PORT = 1024;

    /** A System VM this component booted and keeps for later {@code vm:exec -i ID}. */
    private record SystemVm(VirtualMachine vm, Path dir, Path uds, byte[] secret) {
    }

    private final VmManager vms;
    private final ControlConnector connector;
    private final Map<String, SystemVm> kept = new ConcurrentHashMap<>();

    @Activate
    public SystemVmCommands(@Reference VmManager vms, @Reference ControlConnector connector) {
        this.vms = vms;
        this.connector = connector;
    }

    @Deactivate
    void deactivate() {
        kept.values().forEach(this::end);
        kept.clear();
    }

    @Descriptor("run a program in a System VM (booted here, or one kept with --keep); prints its output, sets its exit status")
    public void exec(CommandSession session,
            @Descriptor("the System VM's kernel (build.sh path/bzImage)") @Parameter(names = {"-k", "--kernel"}, absentValue = "") String kernel,
            @Descriptor("its initramfs (build.sh path/initramfs.cpio.gz)") @Parameter(names = {"-r", "--initrd"}, absentValue = "") String initrd,
            @Descriptor("guest RAM") @Parameter(names = {"-m", "--memory"}, absentValue = "256M") String memory,
            @Descriptor("the longest the VM may run (30s, 5m)") @Parameter(names = {"-t", "--timeout"}, absentValue = "10m") String timeout,
            @Descriptor("a System VM kept by an earlier vm:exec --keep") @Parameter(names = {"-i", "--id"}, absentValue = "") String id,
            @Descriptor("keep the VM running afterwards; prints its id") @Parameter(names = {"--keep"}, presentValue = "true", absentValue = "false") boolean keep,
            @Descriptor("program and arguments") String... argv) throws Exception {
        if (argv.length == 0)
            throw new IllegalArgumentException("no program given");
        SystemVm svm;
        if (!id.isEmpty()) {
            svm = kept.get(id);
            if (svm == null)
                throw new IllegalArgumentException("no System VM " + id + " kept by vm:exec --keep");
        } else {
            if (kernel.isEmpty() || initrd.isEmpty())
                throw new IllegalArgumentException("vm:exec needs --kernel and --initrd (distro/system-vm/build.sh path), or --id");
            svm = boot(Path.of(kernel), Path.of(initrd), VmProfile.parseSize(memory), Text.parseDuration(timeout));
        }
        boolean ok = false;
        try (AgentSession s = connector.connect(VsockUnixClient.connect(svm.uds(), AGENT_PORT, Duration.ofSeconds(60)), svm.secret())) {
            ExecResult r = s.exec(argv);
            System.out.write(r.stdout());
            System.out.flush();
            System.err.write(r.stderr());
            System.err.flush();
            session.put(VmCommands.EXIT_CODE, r.status().signaled() ? 128 + r.status().code() : r.status().code());
            if (!keep && id.isEmpty())
                s.shutdown();  // syncs the guest's file systems
            ok = true;
        } finally {
            if (keep && ok) {
                kept.put(svm.vm().id(), svm);
                System.err.println("System VM " + svm.vm().id() + " kept (vm:exec -i " + svm.vm().id() + " ...)");
            } else if (id.isEmpty()) {
                end(svm);
            }
        }
    }

    private SystemVm boot(Path kernel, Path initrd, long memory, Duration timeout) throws Exception {
        HypervisorInfo h = vms.hypervisor();
        if (!h.flavour().hardwareVirtualization()) {
            throw new IllegalArgumentException("cannot boot the System VM here: the " + h.backend() + " backend runs on " + h.flavour().label()
                    + ", and a stock kernel needs hardware virtualization (VMX or SVM); run on such a host or in the rig");
        }
        byte[] secret = new byte[32];
        new SecureRandom().nextBytes(secret);
        Path dir = Files.createTempDirectory("nxia-sysvm");
        Path uds = dir.resolve("vsock");
        LinuxProfile profile = LinuxProfile.of(kernel, initrd).withMemory(memory).withTimeout(timeout)
                .withCmdline("nxia.secret=" + HexFormat.of().formatHex(secret))
                .withDevices(List.of(DeviceConfig.parse("virtio-vsock:cid=3,uds=" + uds)));
        VirtualMachine vm = vms.create(profile);
        SystemVm svm = new SystemVm(vm, dir, uds, secret);
        try {
            vm.start();
            while (!vm.console().contains(READY)) {
                if (vm.result().isPresent()) {
                    VmResult r = vm.result().get();
                    throw new IOException("the System VM ended before its agent was ready: " + Text.outcome(r) + "; console:\n" + tail(vm.console()));
                }
                Thread.sleep(100);
            }
            return svm;
        } catch (Exception | Error e) {
            end(svm);
            throw e;
        }
    }

    /** Ends a System VM: the agent's power-off (after shutdown) only halts its CPUs, as there is no ACPI. */
    private void end(SystemVm svm) {
        VirtualMachine vm = svm.vm();
        try {
            vm.stop();
            vm.await(Duration.ofSeconds(10));
        } catch (TimeoutException e) {
            // destroy below releases it all the same
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            vms.destroy(vm.id());
            try {
                Files.deleteIfExists(svm.uds());
                Files.deleteIfExists(svm.dir());
            } catch (IOException e) {
                // a leftover empty temp directory is harmless
            }
        }
    }

    private static String tail(String console) {
        return console.length() <= 4000 ? console : console.substring(console.length() - 4000);
    }
}
