package org.nxia.vmm.internal;

import java.util.function.Consumer;

import org.nxia.vmm.api.Sandbox;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmSnapshot;

/**
 * A {@link Sandbox} over one VM restored from its template, with its write
 * log on: each run after the first {@link VmCore#rearm rearms} it first.
 */
final class InPlaceSandbox implements Sandbox {

    /** Runs a started VM to its end within its timeout (the manager's policy, shared with {@code VmManager.run}). */
    interface Runner {
        VmResult runToEnd(ManagedVm vm) throws InterruptedException;
    }

    private final VmCore vm;
    private final VmSnapshot template;
    private final RamReset ram;
    private final Runner runner;
    private final Consumer<String> destroy;
    private boolean ran;
    private boolean closed;
    private long pagesRewritten;

    /** Takes {@code vm}, restored from {@code template} and not started; destroys it if the write log cannot start. */
    InPlaceSandbox(VmCore vm, VmSnapshot template, Runner runner, Consumer<String> destroy) {
        this.vm = vm;
        this.template = template;
        this.runner = runner;
        this.destroy = destroy;
        this.ram = new RamReset(template.ram(), template.spec().memoryBytes());
        try {
            vm.startWriteLog();
        } catch (RuntimeException e) {
            destroy.accept(vm.id());
            throw e;
        }
    }

    @Override
    public String vmId() {
        return vm.id();
    }

    @Override
    public synchronized VmResult run(Appendable console) throws InterruptedException {
        if (closed) {
            throw new IllegalStateException("sandbox " + vm.id() + " is closed");
        }
        if (ran) {
            pagesRewritten = vm.rearm(template, ram);
        }
        ran = true;
        vm.consoleSink(console);
        return runner.runToEnd(vm);
    }

    @Override
    public synchronized long pagesRewritten() {
        return pagesRewritten;
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            destroy.accept(vm.id());
        }
    }
}
