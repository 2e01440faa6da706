package org.nxia.vmm.spi;

/** The x86-64 general-purpose registers, RIP and RFLAGS. */
public record Registers(
        long rax, long rbx, long rcx, long rdx, long rsi, long rdi, long rsp, long rbp,
        long r8, long r9, long r10, long r11, long r12, long r13, long r14, long r15,
        long rip, long rflags) {

    /** All zero except RFLAGS bit 1, which is always set. */
    public static final Registers RESET = new Registers(
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x2);

    /** A copy for entering at {@code rip} with stack {@code rsp} and first argument {@code rdi}. */
    public Registers withEntry(long rip, long rsp, long rdi) {
        return new Registers(rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp,
                r8, r9, r10, r11, r12, r13, r14, r15, rip, rflags);
    }
}
