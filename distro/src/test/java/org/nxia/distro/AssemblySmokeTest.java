package org.nxia.distro;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each exported assembly started as an operator starts it ({@code java -jar target/NAME.jar},
 * headless: one Gogo script through the launcher's command runner, which waits until the
 * launcher has started every bundle). It must hold exactly its NXIA bundles, all ACTIVE, every
 * DS component satisfied, its commands there and those it must not carry absent. No KVM is
 * needed: the KVM backend registers where {@code /dev/kvm} is missing.
 */
class AssemblySmokeTest {

    /**
     * What every node has: micro-VMs, their devices, Portal, profiles, snapshots, the shell, and
     * the call policy (every micro-VM host call passes it: without it they are all refused).
     */
    static final Set<String> NODE_BUNDLES = Set.of("org.nxia.vmm.api", "org.nxia.vmm", "org.nxia.backend.kvm", "org.nxia.device.platform",
            "org.nxia.device.virtio", "org.nxia.portal", "org.nxia.profile", "org.nxia.snapshot", "org.nxia.shell", "org.nxia.lsm.policy");
    static final Set<String> NODE_COMMANDS = Set.of("vm:create", "vm:run", "vm:list", "vm:snapshot", "vm:restore", "vm:clone", "device:list",
            "nxia:doctor", "nxia:demo", "bench:exits", "portal:create", "profile:list", "snapshot:info", "policy:show", "policy:check");
    static final Set<String> NODE_COMPONENTS = Set.of("org.nxia.backend.kvm.internal.KvmBackend", "org.nxia.vmm.internal.VmManagerImpl",
            "org.nxia.device.platform.internal.Uart16550Factory", "org.nxia.device.virtio.internal.vsock.VirtioVsockFactory",
            "org.nxia.portal.internal.PortalsImpl", "org.nxia.profile.internal.ProfileService", "org.nxia.shell.internal.CommandLineRunner",
            "org.nxia.lsm.policy.internal.PolicyService");

    /** Gemini and the example host function: the sandbox's, not the System VM node's. */
    static final Set<String> SANDBOX_BUNDLES = Set.of("org.nxia.gemini", "org.nxia.examples");
    static final Set<String> SANDBOX_COMMANDS = Set.of("gemini:call", "gemini:services", "bench:gemini");
    static final Set<String> SANDBOX_COMPONENTS = Set.of("org.nxia.gemini.internal.GeminiImpl", "org.nxia.examples.internal.UpperCaseFunction",
            "org.nxia.examples.internal.TextService");

    /** Linux VMs and the control agent's host end: the System VM node's, not the sandbox's. */
    static final Set<String> SYSTEM_VM_BUNDLES = Set.of("org.nxia.control", "org.nxia.shell.systemvm", "org.nxia.device.vmbus");
    static final Set<String> SYSTEM_VM_COMMANDS = Set.of("vm:boot", "vm:exec", "bench:boot", "control:exec", "control:vms", "vm:checkpoint",
            "vm:restoreProcess", "systemvm:snapshot", "systemvm:restore", "systemvm:clone");
    static final Set<String> SYSTEM_VM_COMPONENTS = Set.of("org.nxia.control.internal.SystemVmLauncher",
            "org.nxia.control.internal.SocketControlConnector", "org.nxia.shell.systemvm.internal.SystemVmCommands",
            "org.nxia.control.internal.CriuCheckpoints", "org.nxia.shell.systemvm.internal.ProcessCheckpointCommands",
            "org.nxia.shell.systemvm.internal.SystemVmSnapshotCommands", "org.nxia.device.vmbus.internal.VmbusFactory");

    /** Remote administration through Aries RSA: the cluster's, on top of the full platform. */
    static final Set<String> CLUSTER_BUNDLES = Set.of("org.nxia.cluster", "org.nxia.cluster.zookeeper");
    static final Set<String> CLUSTER_COMMANDS = Set.of("node:list", "node:vms", "node:create", "node:run", "node:destroy");
    static final Set<String> CLUSTER_COMPONENTS = Set.of("org.nxia.cluster.internal.ClusterCommands", "org.nxia.cluster.internal.EdefParser");

    @TempDir
    Path tmp;

    @Test
    void sandboxRunsMicroVmsGeminiAndPolicyWithoutLinuxOrControl() throws Exception {
        check("sandbox", union(NODE_BUNDLES, SANDBOX_BUNDLES), union(NODE_COMMANDS, SANDBOX_COMMANDS), SYSTEM_VM_COMMANDS,
                union(NODE_COMPONENTS, SANDBOX_COMPONENTS));
    }

    @Test
    void systemVmNodeRunsLinuxAndTheControlAgentWithoutGemini() throws Exception {
        check("systemvm", union(NODE_BUNDLES, SYSTEM_VM_BUNDLES), union(NODE_COMMANDS, SYSTEM_VM_COMMANDS), SANDBOX_COMMANDS,
                union(NODE_COMPONENTS, SYSTEM_VM_COMPONENTS));
    }

    @Test
    void fullPlatformHasBoth() throws Exception {
        check("nxia", union(NODE_BUNDLES, SANDBOX_BUNDLES, SYSTEM_VM_BUNDLES), union(NODE_COMMANDS, SANDBOX_COMMANDS, SYSTEM_VM_COMMANDS),
                Set.of(), union(NODE_COMPONENTS, SANDBOX_COMPONENTS, SYSTEM_VM_COMPONENTS));
    }

    @Test
    void clusterNodeIsTheFullPlatformWithRemoteAdministration() throws Exception {
        check("cluster", union(NODE_BUNDLES, SANDBOX_BUNDLES, SYSTEM_VM_BUNDLES, CLUSTER_BUNDLES),
                union(NODE_COMMANDS, SANDBOX_COMMANDS, SYSTEM_VM_COMMANDS, CLUSTER_COMMANDS), Set.of(),
                union(NODE_COMPONENTS, SANDBOX_COMPONENTS, SYSTEM_VM_COMPONENTS, CLUSTER_COMPONENTS));
    }

    /**
     * The shipped configuration (distro/conf, as FileInstall reads it at start) reaches the
     * services the commands use: a configuration delivered to a component instance that is then
     * dropped and made again would leave the platform with no manifests and no profiles.
     */
    @Test
    void shippedManifestsAndProfilesReachTheCommands() throws Exception {
        Path conf = Files.createDirectories(tmp.resolve("conf"));
        try (var shipped = Files.newDirectoryStream(Path.of("conf"), "*.cfg")) {
            for (Path cfg : shipped) {
                Files.copy(cfg, conf.resolve(cfg.getFileName()));
            }
        }
        // FileInstall scans and ConfigAdmin delivers on their own threads after the framework is up
        String out = start("nxia", "echo (policy:show); echo (profile:list); echo (gemini:services);"
                + " echo (policy:check system guest:vm-1,uid:1000,gid:1000,exe:/usr/bin/nxia-call out text upper);"
                + " echo (policy:check system guest:vm-1 out secrets read)");
        assertTrue(out.contains("profile hostcall"), "policy:show lists the shipped manifest of the hostcall guest:\n" + out);
        assertTrue(out.contains("text: "), "gemini:services lists the example host service 'text':\n" + out);
        assertTrue(out.contains("ALLOW "), "the shipped manifest 'system' lets a System VM's processes call text.upper"
                + " (./nxia exec -- nxia-call text upper hello):\n" + out);
        assertTrue(out.contains("DENY "), "and nothing else:\n" + out);
        for (String profile : List.of("system", "isolated", "micro", "perf")) {
            assertTrue(Pattern.compile("^\\s*" + profile + "\\b", Pattern.MULTILINE).matcher(out).find(),
                    "profile:list lists the shipped profile " + profile + ":\n" + out);
        }
    }

    private void check(String assembly, Set<String> bundles, Set<String> commands, Set<String> absentCommands, Set<String> components)
            throws Exception {
        String out = start(assembly, "echo (lb -s); echo (help); scr:list");

        Map<String, String> states = matches(out, "^\\s*\\d+\\|(\\w+)\\s*\\|\\s*\\d+\\|(\\S+) \\(", 2, 1);
        assertTrue(states.size() > bundles.size(), assembly + ": lb listed too few bundles:\n" + out);
        states.forEach((bundle, state) -> assertEquals("Active", state, assembly + ": " + bundle));
        Set<String> nxia = states.keySet().stream().filter(b -> b.startsWith("org.nxia.")).collect(Collectors.toCollection(TreeSet::new));
        assertEquals(new TreeSet<>(bundles), nxia, assembly + ": its NXIA bundles");

        Set<String> registered = new HashSet<>(matches(out, "^([a-z]+:[A-Za-z]+)$", 1, 1).keySet());
        assertTrue(registered.containsAll(commands), assembly + ": missing commands " + minus(commands, registered));
        assertEquals(Set.of(), intersection(registered, absentCommands), assembly + ": commands it must not have");

        Map<String, String> componentStates = matches(out, "^(org\\.nxia\\.\\S+) in bundle .*\\n\\s+Id: \\d+, State:(\\w+)", 1, 2);
        componentStates.forEach((component, state) -> assertTrue(state.equals("ACTIVE") || state.equals("SATISFIED"),
                assembly + ": " + component + " is " + state));
        assertTrue(componentStates.keySet().containsAll(components),
                assembly + ": missing components " + minus(components, componentStates.keySet()));
    }

    /** Runs {@code script} in target/ASSEMBLY.jar and returns what it printed; fails unless it exits with 0. */
    private String start(String assembly, String script) throws IOException, InterruptedException {
        Path jar = Path.of(System.getProperty("nxia.assemblies"), assembly + ".jar");
        assertTrue(Files.isRegularFile(jar), jar + " was not exported");
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(List.of(System.getProperty("nxia.jvm.flags").trim().split("\\s+")));
        command.addAll(List.of("-Dorg.osgi.framework.storage=" + tmp.resolve("felix"), "-Dgosh.args=--nointeractive",
                "-Dnxia.command=" + script, "-Dfelix.fileinstall.dir=" + Files.createDirectories(tmp.resolve("conf")),
                "-Dnxia.deploy=" + Files.createDirectories(tmp.resolve("deploy")), "-jar", jar.toString()));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectOutput(tmp.resolve("out").toFile()).start();
        if (!p.waitFor(2, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError(assembly + ": no exit within 2 minutes:\n" + Files.readString(tmp.resolve("out")));
        }
        String out = Files.readString(tmp.resolve("out"), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), assembly + " exited with " + p.exitValue() + ":\n" + out);
        return out;
    }

    private static Map<String, String> matches(String text, String regex, int key, int value) {
        Map<String, String> found = new LinkedHashMap<>();
        Matcher m = Pattern.compile(regex, Pattern.MULTILINE).matcher(text);
        while (m.find()) {
            found.put(m.group(key), m.group(value));
        }
        return found;
    }

    @SafeVarargs
    private static Set<String> union(Set<String>... sets) {
        return Stream.of(sets).flatMap(Set::stream).collect(Collectors.toSet());
    }

    private static Set<String> minus(Set<String> a, Set<String> b) {
        return a.stream().filter(x -> !b.contains(x)).collect(Collectors.toCollection(TreeSet::new));
    }

    private static Set<String> intersection(Set<String> a, Set<String> b) {
        return a.stream().filter(b::contains).collect(Collectors.toCollection(TreeSet::new));
    }
}
