package org.nxia.cluster.internal;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.cluster.api.GuestRequest;
import org.nxia.cluster.api.Moved;
import org.nxia.cluster.api.NodeAdmin;
import org.nxia.cluster.api.NodeStatus;
import org.nxia.cluster.api.VmSummary;
import org.nxia.shell.support.Text;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code node:*}: the nodes of the cluster (this one and those Remote Service Admin has imported)
 * and their VMs. A VM is named {@code NODE/VM}.
 */
@Component(service = ClusterCommands.class, property = {
        "osgi.command.scope=node",
        "osgi.command.function=list", "osgi.command.function=vms", "osgi.command.function=create", "osgi.command.function=start",
        "osgi.command.function=info", "osgi.command.function=console", "osgi.command.function=run", "osgi.command.function=destroy",
        "osgi.command.function=migrate"})
public final class ClusterCommands {

    /** The options node:create and node:run share. */
    static final String MEMORY_HELP = "guest RAM, a multiple of 2M from 2M to 3G";
    static final String ARG_HELP = "number handed to the guest in its boot block";
    static final String NODE_HELP = "node (node:list)";
    static final String GUEST_HELP = "guest of that node's kit, by name (hello)";

    @Reference
    private VmManager vms;

    @Reference
    private Nodes nodes;

    @Descriptor("list the nodes this node knows: itself and those found through discovery, with their VMs and health")
    public String list() {
        List<List<String>> rows = new ArrayList<>();
        for (Nodes.Node n : nodes.all()) {
            try {
                NodeStatus s = n.admin().status();
                rows.add(List.of(n.name(), n.remote() ? "remote" : "this node", s.assembly(), s.backend(), Integer.toString(s.vms()), "ok"));
            } catch (RuntimeException e) {
                rows.add(List.of(n.name(), n.remote() ? "remote" : "this node", "", "", "", "unreachable: " + reason(e)));
            }
        }
        if (rows.isEmpty()) {
            return "no nodes: this node has no name (org.nxia.cluster.cfg) and discovery has found none";
        }
        return Text.table(List.of("node", "where", "assembly", "backend", "vms", "health"), rows);
    }

    @Descriptor("list the VMs of every node")
    public String vms() {
        List<List<String>> rows = new ArrayList<>();
        Map<String, String> unreachable = new TreeMap<>();
        for (Nodes.Node n : nodes.all()) {
            try {
                for (VmSummary vm : n.admin().vms()) {
                    rows.add(List.of(vm.node() + "/" + vm.id(), vm.name(), vm.state(), Text.size(vm.memoryBytes()), vm.result()));
                }
            } catch (RuntimeException e) {
                unreachable.put(n.name(), reason(e));
            }
        }
        StringBuilder out = new StringBuilder(rows.isEmpty() ? "no VMs on any node\n"
                : Text.table(List.of("vm", "name", "state", "memory", "result"), rows));
        unreachable.forEach((node, why) -> out.append("node ").append(node).append(" unreachable: ").append(why).append('\n'));
        return out.toString();
    }

    @Descriptor("create a micro-VM on a node from a guest of that node's kit (not started); prints NODE/VM")
    public String create(
            @Descriptor(MEMORY_HELP) @Parameter(names = {"-m", "--memory"}, absentValue = "16M") String memory,
            @Descriptor(ARG_HELP) @Parameter(names = {"-a", "--arg"}, absentValue = "0") long arg,
            @Descriptor("stop the guest after this long on that node (at most 10m)") @Parameter(names = {"-t", "--timeout"}, absentValue = "30s") String timeout,
            @Descriptor(NODE_HELP) String node,
            @Descriptor(GUEST_HELP) String guest) {
        VmSummary vm = nodes.get(node).admin().create(request(guest, memory, arg, timeout));
        return vm.node() + "/" + vm.id();
    }

    @Descriptor("start a VM created on a node")
    public String start(@Descriptor("NODE/VM") String name) {
        VmSummary vm = adminOf(name).start(vmOf(name));
        return name + " " + vm.state();
    }

    @Descriptor("show a VM of a node")
    public String info(@Descriptor("NODE/VM") String name) {
        VmSummary vm = adminOf(name).info(vmOf(name));
        return "vm:     " + vm.node() + "/" + vm.id() + "\nname:   " + vm.name() + "\nstate:  " + vm.state() + "\nmemory: "
                + Text.size(vm.memoryBytes()) + (vm.result().isEmpty() ? "" : "\nresult: " + vm.result()) + "\n";
    }

    @Descriptor("print what a VM of a node has written to its console (its last 64 KiB)")
    public String console(@Descriptor("NODE/VM") String name) {
        return adminOf(name).console(vmOf(name), NodeAdminService.MAX_CONSOLE_CHARS);
    }

    @Descriptor("create, start and wait for a micro-VM on a node, then destroy it; prints its console and how it ended")
    public String run(
            @Descriptor(MEMORY_HELP) @Parameter(names = {"-m", "--memory"}, absentValue = "16M") String memory,
            @Descriptor(ARG_HELP) @Parameter(names = {"-a", "--arg"}, absentValue = "0") long arg,
            @Descriptor("stop the guest after this long (at most 10m)") @Parameter(names = {"-t", "--timeout"}, absentValue = "30s") String timeout,
            @Descriptor(NODE_HELP) String node,
            @Descriptor(GUEST_HELP) String guest) throws InterruptedException {
        RemoteRun.Ended r;
        try {
            r = RemoteRun.run(nodes.get(node).admin(), request(guest, memory, arg, timeout), true);
        } catch (IllegalArgumentException | IllegalStateException refused) {
            throw refused;   // the node's own answer, which says why
        } catch (RuntimeException e) {
            throw new IllegalStateException("node " + node + " stopped answering mid-run (" + reason(e) + "); node:list says whether it is still there", e);
        }
        return r.console() + node + "/" + r.vm().id() + " " + r.vm().result() + "\n";
    }

    @Descriptor("stop a VM of a node if needed and release it")
    public String destroy(@Descriptor("NODE/VM") String name) {
        if (!adminOf(name).destroy(vmOf(name))) {
            throw new IllegalArgumentException("no VM " + name + " (node:vms lists them)");
        }
        return name + " destroyed";
    }

    @Descriptor("move a micro-VM to another node: pre-copy where it runs (its RAM sent while it runs, then paused for the"
            + " pages written since), else stop-and-copy; it goes on there where it paused, its copy here is destroyed only once"
            + " the target has started it, and any failure leaves it running where it was")
    public String migrate(
            @Descriptor("pause first and send the whole snapshot (a VM of this node only)") @Parameter(names = {"-s", "--stop-and-copy"},
                    absentValue = "false", presentValue = "true") boolean stopAndCopy,
            @Descriptor("a VM of this node (vm-1), or NODE/VM of another node that other nodes made there") String vm,
            @Descriptor("target node (node:list)") String node) throws IOException {
        if (vm.contains("/") && stopAndCopy) {
            throw new IllegalArgumentException("--stop-and-copy is for a VM of this node; node " + nodeOf(vm) + " chooses how its VMs move");
        }
        Moved m = vm.contains("/")
                ? nodes.get(nodeOf(vm)).admin().migrate(vmOf(vm), node)
                : Migration.move(vms, vm, node, nodes.remote(node).admin(), !stopAndCopy);
        return String.format("%s moved to %s/%s, %s: %s sent (%s while it ran), downtime %.1f ms, total %.1f ms%n", vm, m.to().node(),
                m.to().id(), m.how(), mib(m.bytes()), mib(m.sentWhileRunning()), m.downtime().toNanos() / 1e6,
                m.total().toNanos() / 1e6);
    }

    /** Bytes sent, in MiB with one decimal: a move's figures are rarely whole KiB. */
    static String mib(long bytes) {
        return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / (double) (1 << 20));
    }

    /** The admin service of the node a {@code NODE/VM} name names. */
    private NodeAdmin adminOf(String nodeSlashVm) {
        return nodes.get(nodeOf(nodeSlashVm)).admin();
    }

    private static GuestRequest request(String guest, String memory, long arg, String timeout) {
        return new GuestRequest(guest, VmProfile.parseSize(memory), arg, Text.parseDuration(timeout));
    }

    static String nodeOf(String name) {
        int slash = name.indexOf('/');
        if (slash <= 0 || slash == name.length() - 1) {
            throw new IllegalArgumentException("'" + name + "' is not NODE/VM (node:vms lists them)");
        }
        return name.substring(0, slash);
    }

    static String vmOf(String name) {
        nodeOf(name);
        return name.substring(name.indexOf('/') + 1);
    }

    /** The cause a caller can act on: RSA wraps a refused connection or a timeout. */
    static String reason(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String message = root.getMessage();
        return root.getClass().getSimpleName() + (message == null ? "" : ": " + message);
    }
}
