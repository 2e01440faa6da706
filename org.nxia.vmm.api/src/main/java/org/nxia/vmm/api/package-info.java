/**
 * The backend-neutral VMM API: the {@link org.nxia.vmm.api.Hypervisor} SPI that
 * backends implement, {@link org.nxia.vmm.api.GuestMemory} through which all
 * guest memory is accessed, the VM lifecycle seen by shells and tools, and
 * {@link org.nxia.vmm.api.HostFunction}s that guests call.
 *
 * <p>No backend type (KVM, WHP, HVF) appears here.
 *
 * <p>2.0: {@code VirtualMachine.spec()}, a sealed {@link org.nxia.vmm.api.VmSpec}, replaces
 * {@code profile()}, which showed a Linux VM as a micro-VM profile; the benchmark hooks moved
 * off {@code VirtualMachine} and {@code Vcpu} to {@code org.nxia.vmm.bench}.
 */
@Export
@Version("2.0.0")
package org.nxia.vmm.api;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
