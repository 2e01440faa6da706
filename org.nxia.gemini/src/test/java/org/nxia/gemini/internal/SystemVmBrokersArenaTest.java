package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import org.junit.jupiter.api.Test;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.Ref;
import org.nxia.portal.internal.Structures;

/** The reference arena the host gives a System VM's broker session in its region "gemini". */
class SystemVmBrokersArenaTest {

    static final long MIB = 1L << 20;

    @Test
    void theBlockIsTheLargestPowerOfTwoOfWhichTwoFit() {
        assertEquals(64 * MIB, SystemVmBrokers.blockSize(130 * MIB), "a 132 MiB region less Linux's 2 MiB");
        assertEquals(2 * MIB, SystemVmBrokers.blockSize(6 * MIB - 4096));
        assertEquals(4096, SystemVmBrokers.blockSize(3 * 4096));
        assertEquals(0, SystemVmBrokers.blockSize(3 * 4096 - 1), "no room for two blocks: no arena");
        assertEquals(1L << 30, SystemVmBrokers.blockSize(64L << 30), "PortalStructures takes an int block size");
    }

    @Test
    void anArenaIsFormattedOnceAndAttachedAfterAndAGarbledOneIsFormattedAgain() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment room = arena.allocate(6 * MIB, 4096);
            Structures st = new Structures();
            PortalArena first = SystemVmBrokers.arenaIn(room, st);
            assertEquals(2, first.capacity() / (2 * MIB), "two 2 MiB blocks");
            Ref held = first.allocate(100);
            PortalArena again = SystemVmBrokers.arenaIn(room, st);
            assertEquals(1, blocksLeft(again), "a second session finds the block the first holds");
            first.free(held);
            room.fill((byte) 0x77);   // a process wrote over the header
            PortalArena fresh = SystemVmBrokers.arenaIn(room, st);
            assertEquals(2, blocksLeft(fresh));
        }
    }

    private static int blocksLeft(PortalArena a) {
        int n = 0;
        try {
            while (n < 10) {
                a.allocate(1);
                n++;
            }
        } catch (PortalException full) {
            // counted
        }
        assertThrows(PortalException.class, () -> a.allocate(1));
        return n;
    }
}
