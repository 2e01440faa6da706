package org.nxia.vmm.internal.bus;

/** A VM's port and MMIO address spaces. */
public final class Bus {

    private final AddressMap<PortHandler> ports = new AddressMap<>();
    private final AddressMap<MmioHandler> mmio = new AddressMap<>();

    public void addPorts(int first, int count, PortHandler handler) {
        if (first < 0 || count <= 0 || first > 0xffff || count > 0x10000 - first) {
            throw new IllegalArgumentException("ports [0x%x, +%d) are outside the 64 Ki port space".formatted(first, count));
        }
        ports.add(first, count, handler, "ports");
    }

    public void addMmio(long base, long length, MmioHandler handler) {
        mmio.add(base, length, handler, "MMIO");
    }

    /** The handler for {@code port}, or null when no device claims it. */
    public PortHandler port(int port) {
        return ports.find(port);
    }

    /** The handler for {@code address}, or null when no device claims it. */
    public MmioHandler mmio(long address) {
        return mmio.find(address);
    }
}
