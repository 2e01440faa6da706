package org.nxia.vmm.spi;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class RegistersTest {

    @Test
    void resetIsAllZeroExceptReservedRflagsBit() {
        Registers r = Registers.RESET;
        assertEquals(new Registers(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x2), r);
        assertEquals(0x2, r.rflags());
    }

    @Test
    void withEntrySetsRipRspRdiAndKeepsTheRest() {
        Registers r = new Registers(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 0x202);
        Registers e = r.withEntry(0x100000, 0x7f0000, 0x1000);
        assertEquals(new Registers(1, 2, 3, 4, 5, 0x1000, 0x7f0000, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x100000, 0x202), e);
        assertEquals(6, r.rdi());  // the original is unchanged
    }
}
