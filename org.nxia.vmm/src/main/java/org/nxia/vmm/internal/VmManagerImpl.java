package org.nxia.vmm.internal;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.vmm.api.HostFunction;
import org.nxia.vmm.spi.Hypervisor;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VmSpec;
import org.nxia.vmm.spi.RamFile;
import org.nxia.vmm.api.Sandbox;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;

/**
 * The platform's VM manager: builds micro-VMs on the best-ranked hypervisor
 * backend and offers them every {@link HostFunction} service, including ones
 * registered later.
 */
@Component(service = VmManager.class)
public final class VmManagerImpl implements VmManager {

    private final Hypervisor hypervisor;
    private final HostCalls hostCalls = new HostCalls();
    private final Map<String, DeviceFactory> deviceFactories = new ConcurrentHashMap<>();
    private final Map<String, ManagedVm> vms = new ConcurrentHashMap<>();
    private final AtomicLong ids = new AtomicLong();
    private final ImageCache images = new ImageCache();
    /** vCPUs run on platform threads; pooled, so a sandbox cycle does not pay for a thread start. */
    private final ExecutorService vcpuThreads =
            Executors.newCachedThreadPool(Thread.ofPlatform().name("nxia-vcpu-pool-", 0).daemon(true).factory());

    @Activate
    public VmManagerImpl(@Reference(policyOption = ReferencePolicyOption.GREEDY) Hypervisor hypervisor) {
        this.hypervisor = hypervisor;
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            target = "(" + HostFunction.NAME_PROPERTY + "=*)")
    void addHostFunction(HostFunction function, Map<String, Object> properties) {
        hostCalls.add(String.valueOf(properties.get(HostFunction.NAME_PROPERTY)), function,
                HostFunction.POLICES_ITSELF.equals(properties.get(HostFunction.POLICY_PROPERTY)));
    }

    void removeHostFunction(HostFunction function, Map<String, Object> properties) {
        hostCalls.remove(String.valueOf(properties.get(HostFunction.NAME_PROPERTY)), function);
    }

    /** Host calls pass the call policy; while none is registered they are refused. */
    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void setCallPolicy(CallPolicy policy) {
        hostCalls.policy(policy);
    }

    void unsetCallPolicy(CallPolicy policy) {
        hostCalls.removePolicy(policy);
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            target = "(" + DeviceFactory.TYPE_PROPERTY + "=*)")
    void addDeviceFactory(DeviceFactory factory, Map<String, Object> properties) {
        deviceFactories.put(String.valueOf(properties.get(DeviceFactory.TYPE_PROPERTY)), factory);
    }

    /**
     * A device type goes away (its bundle stopped or was uninstalled): new VMs no longer get it, and
     * each VM holding one of its devices stops with that reason and is destroyed, so no device runs
     * code of a bundle that is gone and nothing of the bundle stays reachable from a VM. A device is
     * the factory's when it has the type and comes from the factory's class loader (its bundle).
     */
    void removeDeviceFactory(DeviceFactory factory, Map<String, Object> properties) {
        String type = String.valueOf(properties.get(DeviceFactory.TYPE_PROPERTY));
        deviceFactories.remove(type, factory);
        ClassLoader bundle = factory.getClass().getClassLoader();
        for (ManagedVm vm : List.copyOf(vms.values())) {
            if (vm.devices().stream().anyMatch(d -> d.type().equals(type) && d.getClass().getClassLoader() == bundle)) {
                vm.stopWith(VmResult.Reason.STOPPED, "device type '" + type + "' was undeployed: its bundle stopped");
                destroy(vm.id());
            }
        }
    }

    @Deactivate
    void deactivate() {
        for (String id : List.copyOf(vms.keySet())) {
            destroy(id);
        }
        vcpuThreads.shutdownNow();
    }

    @Override
    public VirtualMachine create(VmProfile profile) {
        String id = "vm-" + ids.incrementAndGet();
        VmCore vm = new VmCore(id, new MicroVm(profile, images.load(profile.image()), hostCalls), hypervisor, vcpuThreads,
                Map.copyOf(deviceFactories));
        vms.put(id, vm);
        return vm;
    }

    @Override
    public VirtualMachine create(LinuxProfile profile) {
        String id = "vm-" + ids.incrementAndGet();
        VmCore vm = new VmCore(id, new LinuxVm(profile, hypervisor.info()), hypervisor, vcpuThreads, Map.copyOf(deviceFactories));
        vms.put(id, vm);
        return vm;
    }

    @Override
    public VirtualMachine restore(VmSnapshot snapshot) {
        return started(snapshot, null);
    }

    @Override
    public VirtualMachine clone(VmSnapshot snapshot, RamFile ram) {
        VmSpec spec = snapshot.spec();
        if (!snapshot.ram().isEmpty()) {
            throw new IllegalArgumentException("a clone's RAM is the file's; the snapshot holds " + snapshot.ram().size()
                    + " RAM chunks of its own (restore copies them: VmManager.restore)");
        }
        if (ram.ramBytes() != spec.memoryBytes()) {
            throw new IllegalArgumentException("the RAM file describes " + ram.ramBytes() + " bytes of RAM; the snapshot's VM has "
                    + spec.memoryBytes());
        }
        if (spec.placement().hugePages() || !spec.placement().overcommit()) {
            throw new IllegalArgumentException("a clone's RAM is the snapshot file's pages, mapped copy-on-write: it cannot be"
                    + " placed on huge pages or allocated up front (no overcommit); vm:restore copies RAM placed as asked");
        }
        return started(snapshot, ram);
    }

    /**
     * A new VM of the snapshot's spec, the snapshot put into it (RAM from {@code ram} when not null,
     * else the snapshot's own), started; a part it refuses leaves no VM behind.
     */
    private VmCore started(VmSnapshot snapshot, RamFile ram) {
        VmCore vm = (VmCore) switch (snapshot.spec()) {
            case VmProfile micro -> create(micro);
            case LinuxProfile linux -> create(linux);
        };
        try {
            checkPortalsUnshared(snapshot, vm);
            vm.restoreFrom(snapshot, ram);
            vm.start();
        } catch (RuntimeException e) {
            destroy(vm.id());
            throw e;
        }
        return vm;
    }

    /**
     * A restore puts the saved content back into each anonymous Portal region: refused where another
     * VM has the region mapped, whose view it would change under it (a second clone of the same file
     * too). A file-backed region is not written (its file is checked to hold the saved content), so
     * other VMs may share it.
     */
    private void checkPortalsUnshared(VmSnapshot snapshot, VmCore restored) {
        for (VmSnapshot.SavedPortal p : snapshot.portals()) {
            if (!(p instanceof VmSnapshot.PortalContent)) {
                continue;
            }
            for (ManagedVm other : vms.values()) {
                if (other != restored && other.portalNames().contains(p.name())) {
                    throw new IllegalArgumentException("Portal region '" + p.name() + "' is mapped in " + other.id()
                            + ": restoring the snapshot's content into it would change what " + other.id()
                            + " sees; unmap it there (portal:unmap) or destroy " + other.id() + " first");
                }
            }
        }
    }

    @Override
    public Sandbox sandbox(VmSnapshot template) {
        if (!(template.spec() instanceof VmProfile)) {
            throw new IllegalArgumentException("a sandbox is made of a micro-VM's snapshot; this one is of a Linux VM");
        }
        if (!template.devices().isEmpty()) {
            throw new IllegalArgumentException("the template's VM has " + template.devices().size()
                    + " devices; a sandbox takes a micro-VM without devices (their writes to guest RAM are not tracked yet)");
        }
        VmCore vm = (VmCore) create((VmProfile) template.spec());
        try {
            vm.restoreFrom(template);
        } catch (RuntimeException e) {
            destroy(vm.id());
            throw e;
        }
        return new InPlaceSandbox(vm, template, this::awaitEnd, this::destroy);
    }

    @Override
    public VmResult run(VmProfile profile, Appendable console) throws InterruptedException {
        return runToEnd((ManagedVm) create(profile), console);
    }

    @Override
    public VmResult run(LinuxProfile profile, Appendable console) throws InterruptedException {
        return runToEnd((ManagedVm) create(profile), console);
    }

    private VmResult runToEnd(ManagedVm vm, Appendable console) throws InterruptedException {
        try {
            if (console != null) {
                vm.consoleSink(console);
            }
            return awaitEnd(vm);
        } finally {
            destroy(vm.id());
        }
    }

    /** Starts {@code vm} and waits for its end, stopping it once its timeout has passed (none: LinuxProfile.NO_TIMEOUT). */
    private VmResult awaitEnd(ManagedVm vm) throws InterruptedException {
        vm.start();
        if (vm.timeout().isZero()) {
            while (true) {
                try {
                    return vm.await(Duration.ofHours(1));
                } catch (TimeoutException e) {
                    // no limit: it runs until it stops or is stopped
                }
            }
        }
        try {
            return vm.await(vm.timeout());
        } catch (TimeoutException e) {
            vm.stopWith(VmResult.Reason.TIMEOUT, "the guest ran past its " + vm.timeout().toMillis()
                    + " ms timeout and was stopped; give a longer --timeout if it needs more");
            try {
                return vm.await(Duration.ofSeconds(5));
            } catch (TimeoutException stuck) {
                throw new IllegalStateException(vm.id() + " did not stop within 5 s of its timeout", stuck);
            }
        }
    }

    @Override
    public List<VirtualMachine> list() {
        List<VirtualMachine> out = new ArrayList<>(vms.values());
        out.sort((a, b) -> Long.compare(number(a.id()), number(b.id())));
        return out;
    }

    private static long number(String id) {
        return Long.parseLong(id.substring(id.indexOf('-') + 1));
    }

    @Override
    public Optional<VirtualMachine> find(String id) {
        return Optional.ofNullable(vms.get(id));
    }

    @Override
    public boolean destroy(String id) {
        ManagedVm vm = vms.remove(id);
        if (vm == null) {
            return false;
        }
        vm.destroy();
        return true;
    }

    @Override
    public HypervisorInfo hypervisor() {
        return hypervisor.info();
    }
}
