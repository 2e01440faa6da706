package org.nxia.portal.api;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import org.nxia.vmm.spi.InterruptLine;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The platform's Portal regions and their mappings into VMs. A VM may map a
 * region only when its profile lists the device {@code portal:name=<region>,rights=ro|rw}
 * (the capability); the region is then mapped when the VM is created, and can
 * be unmapped and mapped again with {@link #unmap} and {@link #map}.
 */
@ProviderType
public interface Portals {

    /** Region names: 1 to 15 of {@code [a-z0-9_-]}, starting with a letter or digit. */
    String NAME_PATTERN = "[a-z0-9][a-z0-9_-]{0,14}";

    /**
     * Where Linux processes' view of a region begins when a System VM shows it as device DAX
     * ({@code virtio-pmem:region=NAME,dax=true}): the first 2 MiB hold Linux's info block and
     * alignment, so structures the host shares with Linux processes start at or after it
     * (docs/linux-vm.md, "Portal regions in Linux processes").
     *
     * @since 3.1
     */
    long LINUX_DAX_OFFSET = 2L << 20;

    /**
     * Creates a region. With a {@code file}, the region is that file mapped
     * shared: an existing file of exactly {@code size} bytes keeps its content
     * (persistence), a missing one is created zero-filled. Without, the region
     * is anonymous shared memory.
     *
     * @throws IllegalArgumentException for a bad name or size, a name in use, or
     *                                  an existing file of another size
     */
    PortalRegion create(String name, long size, String owner, Rights rights, Path file);

    Optional<PortalRegion> find(String name);

    List<PortalRegion> list();

    /**
     * Deletes a region: unmaps it from the host (the file, if any, stays).
     *
     * @throws IllegalStateException while a VM has it mapped
     * @return whether it existed
     */
    boolean delete(String name);

    /** Every VM grant, mapped or not. */
    List<PortalMapping> mappings();

    /**
     * Maps {@code region} into VM {@code vmId} with the rights its profile grants.
     *
     * @throws IllegalArgumentException when the VM has no grant for the region,
     *                                  the region does not exist, or it is mapped already
     */
    PortalMapping map(String vmId, String region);

    /**
     * Removes {@code region} from VM {@code vmId}; guest accesses then stop the VM.
     *
     * @throws IllegalArgumentException when the VM has no grant for the region
     */
    PortalMapping unmap(String vmId, String region);

    /**
     * Names {@code line} as {@code region}'s interrupt in VM {@code vmId}: the
     * line of the device that shows the region to the guest (virtio-pmem),
     * which {@link #connect} raises when another VM rings. Called by that
     * device; closing the result withdraws it (the device's close).
     *
     * @throws IllegalArgumentException when the VM has no grant for the region or the region has an interrupt there already
     */
    AutoCloseable attachInterrupt(String vmId, String region, InterruptLine line);

    /**
     * Connects {@code fromVm}'s doorbell for {@code region} to the region's
     * interrupt in {@code toVm}: each ring in {@code fromVm} raises it. Inside
     * the hypervisor where the backend can (KVM: one eventfd is both the
     * doorbell's ioeventfd and the other VM's irqfd); otherwise the vCPU
     * thread that takes the doorbell's exit raises it.
     *
     * @throws IllegalArgumentException when a VM has no grant for the region, {@code toVm} has no
     *                                  interrupt for it (a micro-VM, whose guest polls), or the two are connected already
     */
    DoorbellLink connect(String fromVm, String toVm, String region);

    /** The doorbell links now connected. */
    List<DoorbellLink> links();

    /**
     * Rings {@code region}'s doorbell in VM {@code vmId} from the host: raises the region's
     * interrupt there (its virtio-pmem line), which a System VM's Linux process waiting on the
     * region wakes from (docs/linux-vm.md, "Portal regions in Linux processes").
     *
     * @throws IllegalArgumentException when the VM has no grant for the region or no interrupt for it
     * @since 3.1
     */
    void ring(String vmId, String region);
}
