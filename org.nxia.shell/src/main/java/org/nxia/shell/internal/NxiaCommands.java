package org.nxia.shell.internal;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.function.Predicate;

import org.apache.felix.service.command.CommandSession;
import org.apache.felix.service.command.Descriptor;
import org.nxia.shell.support.GuestKit;
import org.nxia.shell.support.Text;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** {@code nxia:doctor} and {@code nxia:demo}. */
@Component(service = NxiaCommands.class, property = {
        "osgi.command.scope=nxia", "osgi.command.function=doctor", "osgi.command.function=demo"})
public final class NxiaCommands {

    private final VmManager vms;

    @Activate
    public NxiaCommands(@Reference VmManager vms) {
        this.vms = vms;
    }

    @Descriptor("check this host: Java, /dev/kvm, the backend's flavour, whether guests run native, the guest images")
    public void doctor(CommandSession session) throws Exception {
        PrintStream out = System.out;
        HypervisorInfo h = vms.hypervisor();
        out.println("NXIA doctor");
        out.println("  java        " + Runtime.version() + " (" + System.getProperty("java.vendor") + ") at " + System.getProperty("java.home"));
        out.println("  host        " + System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        Path kvm = Path.of("/dev/kvm");
        out.println("  /dev/kvm    " + (Files.exists(kvm)
                ? "present, " + (Files.isReadable(kvm) && Files.isWritable(kvm) ? "read/write for this user" : "NOT read/write for this user")
                : "missing"));
        out.println("  backend     " + h.backend() + ": " + h.flavour().label() + ", " + (h.available() ? "available" : "UNAVAILABLE"));
        out.println("  detail      " + h.detail());
        out.println("  System VM   " + (h.flavour().hardwareVirtualization()
                ? "can boot here (hardware virtualization)"
                : "not on this host: a stock Linux kernel needs hardware virtualization (VMX/SVM)"));
        Path images = GuestKit.directory();
        long count = Files.isDirectory(images) ? Files.list(images).filter(p -> p.toString().endsWith(".elf")).count() : 0;
        out.println("  guests      " + (count > 0 ? count + " images in " + images.toAbsolutePath()
                : "none in " + images.toAbsolutePath() + ": run ./nxia build"));
        out.println("  C floor     " + (Files.isExecutable(GuestKit.floor()) ? GuestKit.floor().toAbsolutePath() : "missing: run ./nxia build"));
        boolean ready = h.available() && count > 0;
        if (ready) {
            VirtualMachine vm = vms.create(VmProfile.of(GuestKit.resolve("hello")));
            try {
                vm.start();
                VmResult r = vm.await(VmProfile.DEFAULT_TIMEOUT);
                out.println("  hello       " + Text.outcome(r) + " in " + Text.duration(r.runTime()));
                out.println("  execution   " + vm.info().executionMode());
                ready = r.succeeded();
            } finally {
                vms.destroy(vm.id());
            }
        }
        out.println(ready ? "ready: micro-VMs run on this host" : "NOT READY: " + (h.available() ? "see above" : h.detail()));
        if (!h.available()) {
            out.println("hint: ./nxia rig doctor (and ./nxia rig demo, bench, run-guest) run the platform on a nested /dev/kvm"
                    + " in a QEMU-emulated machine: slow, but real KVM");
        }
        session.put(Text.EXIT_CODE, ready ? 0 : 1);
    }

    private record Example(String image, String what, byte[] input, Predicate<VmResult> expected, String expectation) {
    }

    @Descriptor("run the example guests and show what each did, its exit status and how long it took")
    public void demo(CommandSession session) throws Exception {
        PrintStream out = System.out;
        HypervisorInfo h = vms.hypervisor();
        out.println("NXIA demo: micro-VMs on " + h.backend() + ", " + h.flavour().label());
        if (!h.available()) {
            out.println("cannot run guests here: " + h.detail());
            session.put(Text.EXIT_CODE, 1);
            return;
        }
        byte[] data = new byte[1 << 20];
        new Random(42).nextBytes(data);
        String digest = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        List<Example> examples = List.of(
                new Example("hello", "prints a greeting and exits 0", new byte[0], VmResult::succeeded, "exit 0"),
                new Example("sha256", "SHA-256 of 1 MiB placed in its memory, result returned as output", data,
                        r -> r.succeeded() && HexFormat.of().formatHex(r.output()).equals(digest), "digest = host's " + digest.substring(0, 16) + "..."),
                new Example("hostcall", "calls 'upper', a host function served by an OSGi bundle", new byte[0],
                        VmResult::succeeded, "exit 0"),
                new Example("bad-port", "hostile: writes to an I/O port no device serves", new byte[0],
                        r -> r.reason() == VmResult.Reason.GUEST_ERROR, "clean guest error"),
                new Example("bad-mmio", "hostile: stores to an MMIO address no device serves", new byte[0],
                        r -> r.reason() == VmResult.Reason.GUEST_ERROR, "clean guest error"),
                new Example("triple-fault", "hostile: crashes with no exception handler", new byte[0],
                        r -> r.reason() == VmResult.Reason.TRIPLE_FAULT, "clean crash report"),
                // the claim that the platform kept running, checked: a VM after the hostile ones still runs
                new Example("hello", "again, after the hostile guests: the platform still runs VMs", new byte[0],
                        VmResult::succeeded, "exit 0"));
        List<List<String>> rows = new ArrayList<>();
        int failures = 0;
        int n = 0;
        for (Example e : examples) {
            n++;
            out.println();
            out.println("[" + n + "/" + examples.size() + "] " + e.image() + ": " + e.what());
            VmProfile profile = VmProfile.of(GuestKit.resolve(e.image())).withInput(e.input())
                    .withMemory(e.input().length > 0 ? 8 * VmProfile.MIB : 4 * VmProfile.MIB);
            IndentingAppendable console = new IndentingAppendable(out, "    | ");
            VmResult r = vms.run(profile, console);
            console.finish();
            boolean ok = e.expected().test(r);
            failures += ok ? 0 : 1;
            out.println("    -> " + Text.outcome(r) + " in " + Text.duration(r.runTime())
                    + (r.output().length > 0 ? "; output " + VmCommands.hex(r.output(), 16) + "..." : "")
                    + (ok ? "" : "   UNEXPECTED (wanted " + e.expectation() + ")"));
            rows.add(List.of(e.image(), Text.outcome(r).split(":")[0], Text.duration(r.runTime()), ok ? "yes" : "NO"));
        }
        out.println();
        out.println(Text.table(List.of("guest", "outcome", "time", "as expected"), rows));
        int left = vms.list().size();
        if (left > 0) {
            out.println(left + " VM(s) were left behind after their runs");
            failures++;
        }
        out.println(failures == 0 ? "all " + examples.size() + " examples behaved as expected; the platform kept running throughout"
                + " (a VM after the hostile guests ran, and none was left behind)"
                : failures + " example(s) did not behave as expected");
        session.put(Text.EXIT_CODE, failures == 0 ? 0 : 1);
    }

    /** Prefixes each console line, so guest output stands apart from the demo's own. */
    static final class IndentingAppendable implements Appendable {
        private final PrintStream out;
        private final String prefix;
        private boolean atLineStart = true;

        IndentingAppendable(PrintStream out, String prefix) {
            this.out = out;
            this.prefix = prefix;
        }

        @Override
        public synchronized Appendable append(CharSequence s) {
            for (int i = 0; i < s.length(); i++) {
                append(s.charAt(i));
            }
            out.flush();
            return this;
        }

        @Override
        public Appendable append(CharSequence s, int start, int end) {
            return append(s.subSequence(start, end));
        }

        @Override
        public synchronized Appendable append(char c) {
            if (atLineStart) {
                out.print(prefix);
                atLineStart = false;
            }
            out.print(c);
            if (c == '\n') {
                atLineStart = true;
            }
            return this;
        }

        synchronized void finish() {
            if (!atLineStart) {
                out.println();
                atLineStart = true;
            }
        }
    }

}
