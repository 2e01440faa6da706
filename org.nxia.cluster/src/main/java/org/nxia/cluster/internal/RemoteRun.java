package org.nxia.cluster.internal;

import java.time.Duration;

import org.nxia.cluster.api.GuestRequest;
import org.nxia.cluster.api.NodeAdmin;
import org.nxia.cluster.api.VmSummary;

/**
 * A micro-VM run on another node: create, start, then {@link NodeAdmin#info} until it has a
 * result, then destroy. No call waits on the guest, so a node that dies mid-run fails the next
 * call within its timeout.
 */
final class RemoteRun {

    /** How often a run asks the node how its VM is doing: each ask is one short RSA call. */
    static final Duration POLL = Duration.ofMillis(2);

    /** How it ended, and its console when asked for. */
    record Ended(VmSummary vm, String console) {
    }

    private RemoteRun() {
    }

    static Ended run(NodeAdmin admin, GuestRequest request, boolean withConsole) throws InterruptedException {
        VmSummary vm = admin.create(request);
        try {
            admin.start(vm.id());
            while ((vm = admin.info(vm.id())).result().isEmpty()) {
                Thread.sleep(POLL);
            }
            return new Ended(vm, withConsole ? admin.console(vm.id(), NodeAdminService.MAX_CONSOLE_CHARS) : "");
        } finally {
            try {
                admin.destroy(vm.id());
            } catch (RuntimeException e) {
                // the node is gone: its VMs went with it
            }
        }
    }
}
