/**
 * The VMM's client API: what shells, tools and other bundles use to make and
 * run VMs — {@link org.nxia.vmm.api.VmManager}, {@link org.nxia.vmm.api.VirtualMachine},
 * the specs a VM is made from ({@link org.nxia.vmm.api.VmSpec}), its results,
 * snapshots and sandboxes — and the {@link org.nxia.vmm.api.HostFunction}s that
 * guests call. What a hypervisor backend implements is the SPI,
 * {@link org.nxia.vmm.spi}; this package depends on it, never the reverse.
 *
 * <p>No backend type (KVM, WHP, HVF) appears here.
 *
 * <p>3.0: the backend SPI (hypervisor, partition, vCPUs, registers and state, exits,
 * interrupts, doorbells, guest memory, placement) moved to {@code org.nxia.vmm.spi}.
 *
 * <p>2.0: {@code VirtualMachine.spec()}, a sealed {@link org.nxia.vmm.api.VmSpec}, replaces
 * {@code profile()}, which showed a Linux VM as a micro-VM profile; the benchmark hooks moved
 * off {@code VirtualMachine} and {@code org.nxia.vmm.spi.Vcpu} to {@code org.nxia.vmm.bench}.
 *
 * <p>2.1: pause and resume ({@code VirtualMachine.pause()/resume()}, {@code org.nxia.vmm.spi.Vcpu.clearStopRequest()}) and the
 * full vCPU and partition state for snapshots ({@link org.nxia.vmm.spi.VcpuState},
 * {@link org.nxia.vmm.spi.PartitionState}, {@link org.nxia.vmm.spi.StatePart}); a paused VM saved whole
 * ({@code VirtualMachine.snapshot()}, {@link org.nxia.vmm.api.VmSnapshot}) and restored into a new VM
 * ({@code VmManager.restore}); {@code org.nxia.vmm.spi.Partition.populatedRam()}.
 *
 * <p>2.2: host placement: a spec's {@link org.nxia.vmm.spi.HostPlacement} (vCPUs pinned to host CPUs,
 * huge pages, no overcommit), what took effect as {@link org.nxia.vmm.spi.PlacementOutcome}s
 * ({@code VirtualMachine.placement()}, {@code org.nxia.vmm.spi.Partition.placement()}), and the backend's
 * {@code createPartition(long, HostPlacement)} and {@link org.nxia.vmm.spi.HostAffinity}.
 * Also 2.2: {@code org.nxia.vmm.spi.Partition.startDirtyLog()} and {@link org.nxia.vmm.spi.DirtyLog}: which RAM pages the vCPUs wrote;
 * {@link org.nxia.vmm.api.Sandbox} ({@code VmManager.sandbox}): a micro-VM reset in place to a snapshot for each run.
 *
 * <p>2.3: copy-on-write clones: {@code VmManager.clone(VmSnapshot, RamFile)} restores a micro-VM whose RAM is a
 * {@link org.nxia.vmm.spi.RamFile}'s pages mapped {@code MAP_PRIVATE}, through the backend's
 * {@code org.nxia.vmm.spi.Partition.mapRamFrom(RamFile)}; since 3.5 a Linux VM's snapshot too.
 *
 * <p>3.1: {@link org.nxia.vmm.api.LinuxProfile#acpi()}: a Linux VM with ACPI tables.
 *
 * <p>3.6: {@code VmResult.Reason.POWERED_OFF}: a Linux VM whose guest powered off through ACPI;
 * {@code VmSnapshot.withoutRam()} and {@code withSpec(VmSpec)}.
 *
 * <p>3.7: {@link org.nxia.vmm.api.LiveRam} ({@code VirtualMachine.liveRam()}): a running VM's RAM read out round
 * after round with the pages written since, for pre-copy migration.
 *
 * <p>3.8: {@code LinuxProfile.hyperv()}: a Linux VM that sees a Hyper-V partition.
 *
 * <p>3.2: {@link org.nxia.vmm.api.LinuxProfile#NO_TIMEOUT}: a Linux VM without a time limit (a
 * profile's timeout may be zero, which {@code VmManager.run} and the System VM launcher read as none).
 */
@Export
@Version("3.9.0")
package org.nxia.vmm.api;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
