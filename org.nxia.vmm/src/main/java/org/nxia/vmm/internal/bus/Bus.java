package org.nxia.vmm.internal.bus;

import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;

/**
 * A VM's port and MMIO address spaces. MMIO devices see offsets into their
 * window; the lookup and the offset cost no allocation.
 */
public final class Bus {

    /** An MMIO window: the device and where the window starts. */
    public record MmioRoute(long base, MmioDevice device) {
    }

    private final AddressMap<PortDevice> ports = new AddressMap<>();
    private final AddressMap<MmioRoute> mmio = new AddressMap<>();

    public void addPorts(int first, int count, PortDevice device) {
        if (first < 0 || count <= 0 || first > 0xffff || count > 0x10000 - first) {
            throw new IllegalArgumentException("ports [0x%x, +%d) are outside the 64 Ki port space".formatted(first, count));
        }
        ports.add(first, count, device, "ports");
    }

    public void addMmio(long base, long length, MmioDevice device) {
        mmio.add(base, length, new MmioRoute(base, device), "MMIO");
    }

    /** The device for {@code port}, or null when none claims it. */
    public PortDevice port(int port) {
        return ports.find(port);
    }

    /** The window holding {@code address}, or null when none claims it. */
    public MmioRoute mmio(long address) {
        return mmio.find(address);
    }
}
