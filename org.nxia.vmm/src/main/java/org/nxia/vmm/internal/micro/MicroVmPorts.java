package org.nxia.vmm.internal.micro;

/** The micro-VM port map (docs/guest-abi.md, "Ports"). */
public final class MicroVmPorts {
    public static final int DEBUG_PUTC = 0x00e9;
    public static final int EXIT = 0x0700;
    public static final int CONSOLE_FLUSH = 0x0704;
    public static final int HOSTCALL = 0x0708;
    public static final int BENCH = 0x070c;

    private MicroVmPorts() {
    }
}
