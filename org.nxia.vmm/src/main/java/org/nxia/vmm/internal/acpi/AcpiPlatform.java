package org.nxia.vmm.internal.acpi;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What the ACPI tables describe: the vCPUs (APIC id = ACPI processor UID =
 * vCPU index), the local APICs' and the IO-APIC's addresses, the ISA IRQs
 * that do not reach the same-numbered GSI, the legacy ISA devices and the
 * virtio-mmio devices.
 *
 * @param cpus             1 to 255 (processor UID 0xff means "all" in the MADT)
 * @param localApicAddress where every local APIC answers, below 4 GiB
 * @param ioApicAddress    the IO-APIC's registers, below 4 GiB
 * @param ioApicId         its APIC id, not one of the CPUs'
 * @param ioApicPins       its inputs: GSIs 0 to pins - 1
 * @param overrides        interrupt source overrides, at most one per ISA IRQ
 * @param isaDevices       legacy devices, each name once and none of the form VRnn
 * @param virtioMmio       devices, named VR00, VR01... in this order
 * @param vmbus            whether a VMBus is there (a Hyper-V partition's, served by the VMM), named VMBS
 */
public record AcpiPlatform(int cpus, long localApicAddress, long ioApicAddress, int ioApicId, int ioApicPins,
                           List<InterruptOverride> overrides, List<IsaDevice> isaDevices, List<VirtioMmioDevice> virtioMmio,
                           boolean vmbus) {

    /** Devices are named VR00 to VRFF. */
    public static final int MAX_DEVICES = 256;

    /** A platform without a VMBus. */
    public AcpiPlatform(int cpus, long localApicAddress, long ioApicAddress, int ioApicId, int ioApicPins,
                        List<InterruptOverride> overrides, List<IsaDevice> isaDevices, List<VirtioMmioDevice> virtioMmio) {
        this(cpus, localApicAddress, ioApicAddress, ioApicId, ioApicPins, overrides, isaDevices, virtioMmio, false);
    }

    public AcpiPlatform {
        overrides = List.copyOf(overrides);
        isaDevices = List.copyOf(isaDevices);
        virtioMmio = List.copyOf(virtioMmio);
        if (cpus < 1 || cpus > 255) {
            throw new IllegalArgumentException("the MADT describes 1 to 255 CPUs, not " + cpus);
        }
        if (ioApicId < cpus || ioApicId > 255) {
            throw new IllegalArgumentException("IO-APIC id %d: between the CPUs' ids (0 to %d) and 255".formatted(ioApicId, cpus - 1));
        }
        if (ioApicPins < 1 || ioApicPins > 240) {
            throw new IllegalArgumentException("an IO-APIC has 1 to 240 pins, not " + ioApicPins);
        }
        for (long address : new long[] {localApicAddress, ioApicAddress}) {
            if (address < 0 || address >= 1L << 32) {
                throw new IllegalArgumentException("APIC addresses lie below 4 GiB: 0x" + Long.toHexString(address));
            }
        }
        boolean[] overridden = new boolean[16];
        for (InterruptOverride o : overrides) {
            if (overridden[o.isaIrq()]) {
                throw new IllegalArgumentException("two interrupt source overrides for ISA IRQ " + o.isaIrq());
            }
            overridden[o.isaIrq()] = true;
            requirePin(o.gsi(), ioApicPins, "ISA IRQ " + o.isaIrq());
        }
        Set<String> names = new HashSet<>();
        for (IsaDevice d : isaDevices) {
            if (!names.add(d.name()) || d.name().matches("VR[0-9A-F]{2}") || d.name().equals(AcpiTables.VMBUS_NAME)) {
                throw new IllegalArgumentException("ISA device name " + d.name() + " is taken (VRnn are the virtio-mmio devices', "
                        + AcpiTables.VMBUS_NAME + " the VMBus's)");
            }
            requirePin(d.irq(), ioApicPins, "ISA device " + d.name());
        }
        if (virtioMmio.size() > MAX_DEVICES) {
            throw new IllegalArgumentException("the DSDT names at most %d virtio-mmio devices, not %d".formatted(MAX_DEVICES, virtioMmio.size()));
        }
        for (VirtioMmioDevice d : virtioMmio) {
            requirePin(d.gsi(), ioApicPins, "the virtio-mmio device at 0x" + Long.toHexString(d.base()));
        }
    }

    private static void requirePin(int gsi, int pins, String what) {
        if (gsi >= pins) {
            throw new IllegalArgumentException("%s is on GSI %d, but the IO-APIC has pins 0 to %d".formatted(what, gsi, pins - 1));
        }
    }
}
