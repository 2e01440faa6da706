package org.nxia.shell.systemvm.internal;

import java.io.PrintStream;
import java.nio.file.Path;

import org.apache.felix.service.command.CommandSession;
import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.control.api.ExitStatus;
import org.nxia.control.api.Execution;
import org.nxia.control.api.ProcessCheckpoints;
import org.nxia.control.api.ProcessCheckpoints.ProcessCheckpoint;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.shell.support.Text;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code vm:checkpoint} and {@code vm:restore-process}: CRIU checkpoints of a process tree in a
 * kept System VM (on its Debian root, where {@code criu} is), kept as a file on the host.
 */
@Component(service = ProcessCheckpointCommands.class,
        property = {"osgi.command.scope=vm", "osgi.command.function=checkpoint", "osgi.command.function=restoreProcess"})
public final class ProcessCheckpointCommands {

    private final SystemVms systemVms;
    private final ProcessCheckpoints checkpoints;

    @Activate
    public ProcessCheckpointCommands(@Reference SystemVms systemVms, @Reference ProcessCheckpoints checkpoints) {
        this.systemVms = systemVms;
        this.checkpoints = checkpoints;
    }

    private SystemVm find(String id) {
        return systemVms.find(id).orElseThrow(() -> new IllegalArgumentException("no System VM " + id
                + " (control:vms lists them; vm:exec --keep --rootfs IMAGE keeps one)"));
    }

    @Descriptor("checkpoint a process tree of a System VM with CRIU into a file on the host (it stops unless --leave-running)")
    public void checkpoint(CommandSession session,
            @Descriptor("the process goes on running") @Parameter(names = {"--leave-running"}, presentValue = "true", absentValue = "false")
            boolean leaveRunning,
            @Descriptor("the longest the checkpoint may take (30s, 5m)") @Parameter(names = {"-t", "--timeout"}, absentValue = "5m") String timeout,
            @Descriptor("the System VM's id") String id,
            @Descriptor("the tree's root process id in the guest") int pid,
            @Descriptor("the file on the host (written only when whole)") String file) throws Exception {
        ProcessCheckpoint c = checkpoints.checkpoint(find(id).session(), pid, Path.of(file), leaveRunning, Text.parseDuration(timeout));
        System.out.println("checkpoint of pid " + pid + " in " + id + ": " + c.file() + ", " + c.bytes() + " bytes, "
                + Text.duration(c.took()) + (leaveRunning ? "; the process runs on" : "; the process ended"));
        session.put(Text.EXIT_CODE, 0);
    }

    @Descriptor("restore a process tree from a vm:checkpoint file in a System VM; its output shows here until it ends")
    public void restoreProcess(CommandSession session,
            @Descriptor("the System VM's id") String id,
            @Descriptor("the checkpoint file") String file) throws Exception {
        PrintStream out = System.out;
        PrintStream err = System.err;
        Execution restored = checkpoints.restore(find(id).session(), Path.of(file), (stderr, data, offset, length) -> {
            PrintStream to = stderr ? err : out;
            to.write(data, offset, length);
            to.flush();
        });
        ExitStatus status = restored.exit().get();
        session.put(Text.EXIT_CODE, status.signaled() ? 128 + status.code() : status.code());
    }
}
