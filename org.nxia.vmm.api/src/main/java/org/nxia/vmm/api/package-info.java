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
 *
 * <p>2.1: pause and resume ({@code VirtualMachine.pause()/resume()}, {@code Vcpu.clearStopRequest()}) and the
 * full vCPU and partition state for snapshots ({@link org.nxia.vmm.api.VcpuState},
 * {@link org.nxia.vmm.api.PartitionState}, {@link org.nxia.vmm.api.StatePart}); a paused VM saved whole
 * ({@code VirtualMachine.snapshot()}, {@link org.nxia.vmm.api.VmSnapshot}) and restored into a new VM
 * ({@code VmManager.restore}); {@code Partition.populatedRam()}.
 *
 * <p>2.2: host placement: a spec's {@link org.nxia.vmm.api.HostPlacement} (vCPUs pinned to host CPUs,
 * huge pages, no overcommit), what took effect as {@link org.nxia.vmm.api.PlacementOutcome}s
 * ({@code VirtualMachine.placement()}, {@code Partition.placement()}), and the backend's
 * {@code createPartition(long, HostPlacement)} and {@link org.nxia.vmm.api.HostAffinity}.
 * Also 2.2: {@code Partition.startDirtyLog()} and {@link org.nxia.vmm.api.DirtyLog}: which RAM pages the vCPUs wrote;
 * {@link org.nxia.vmm.api.Sandbox} ({@code VmManager.sandbox}): a micro-VM reset in place to a snapshot for each run.
 *
 * <p>2.3: copy-on-write clones: {@code VmManager.clone(VmSnapshot, RamFile)} restores a micro-VM whose RAM is a
 * {@link org.nxia.vmm.api.RamFile}'s pages mapped {@code MAP_PRIVATE}, through the backend's
 * {@code Partition.mapRamFrom(RamFile)}.
 */
@Export
@Version("2.3.0")
package org.nxia.vmm.api;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
