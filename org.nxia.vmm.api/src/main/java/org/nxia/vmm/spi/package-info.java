/**
 * The hypervisor backend SPI: what a backend (KVM here; WHP and HVF later)
 * implements and registers as a {@link org.nxia.vmm.spi.Hypervisor} service —
 * partitions, vCPUs and their registers and saved state, exits, interrupt
 * controllers and lines, doorbells, the dirty log, host placement — and
 * {@link org.nxia.vmm.spi.GuestMemory}, through which all guest memory is
 * accessed (devices and host functions use it too). It depends on nothing of
 * the client API ({@code org.nxia.vmm.api}).
 *
 * <p>No backend type (KVM, WHP, HVF) appears here.
 *
 * <p>1.0: split from {@code org.nxia.vmm.api} 2.3; new in it, {@code Partition.sharedRam()}:
 * guest RAM as files a vhost-user back-end maps ({@link org.nxia.vmm.spi.SharedRam}).
 *
 * <p>1.1: {@code Partition.enableHyperV()}: a partition the guest sees as Hyper-V's.
 */
@Export
@Version("1.2.0")
package org.nxia.vmm.spi;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
