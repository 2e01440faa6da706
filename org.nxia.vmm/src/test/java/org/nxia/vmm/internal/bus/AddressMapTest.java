package org.nxia.vmm.internal.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

class AddressMapTest {

    private record Range(long start, long end, String handler) {
        boolean holds(long address) {
            return address >= start && address < end;
        }
    }

    @Test
    void findsAcrossInsertionsInAnyOrder() {
        AddressMap<String> map = new AddressMap<>();
        map.add(300, 10, "c", "t");
        map.add(100, 10, "a", "t");
        map.add(200, 10, "b", "t");
        assertEquals(3, map.size());
        assertNull(map.find(99));
        assertSame("a", map.find(100));
        assertSame("a", map.find(109));
        assertNull(map.find(110));
        assertSame("b", map.find(205));
        assertSame("c", map.find(309));
        assertNull(map.find(310));
        assertNull(map.find(Long.MIN_VALUE));
        assertNull(map.find(Long.MAX_VALUE));
    }

    @Test
    void refusalNamesTheSpaceAndRange() {
        AddressMap<String> map = new AddressMap<>();
        map.add(0x100, 0x10, "a", "MMIO");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> map.add(0x108, 0x10, "b", "MMIO"));
        assertEquals("MMIO: range [0x108, 0x118) overlaps one already registered", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> map.add(0x20, 0, "b", "ports"));
        assertEquals("ports: bad range 0x20 +0", e.getMessage());
        assertEquals(1, map.size());
    }

    /** Many random ranges, checked against a naive list: the same overlap decisions and the same lookups. */
    @Test
    void agreesWithNaiveListOnRandomRanges() {
        Random random = new Random(42);
        for (int trial = 0; trial < 10; trial++) {
            AddressMap<String> map = new AddressMap<>();
            List<Range> naive = new ArrayList<>();
            long space = trial % 2 == 0 ? 1 << 16 : 1L << 40;
            for (int i = 0; i < 2000; i++) {
                long start = random.nextLong(space);
                long length = 1 + (random.nextInt(4) == 0 ? random.nextLong(space / 16) : random.nextInt(64));
                String handler = "h" + i;
                boolean overlaps = naive.stream().anyMatch(r -> start < r.end() && r.start() < start + length);
                try {
                    map.add(start, length, handler, "t");
                    if (overlaps) {
                        fail("accepted overlapping [" + start + ", +" + length + ")");
                    }
                    naive.add(new Range(start, start + length, handler));
                } catch (IllegalArgumentException refused) {
                    if (!overlaps) {
                        fail("refused free range [" + start + ", +" + length + "): " + refused.getMessage());
                    }
                }
            }
            assertEquals(naive.size(), map.size());
            assertTrue(naive.size() > 10);
            for (int q = 0; q < 5_000; q++) {
                long address;
                if (q % 3 == 0) {
                    Range r = naive.get(random.nextInt(naive.size()));
                    long[] edges = {r.start() - 1, r.start(), r.end() - 1, r.end()};
                    address = edges[random.nextInt(edges.length)];
                } else {
                    address = random.nextLong(space + 10) - 5;
                }
                String expected = naive.stream().filter(r -> r.holds(address)).map(Range::handler).findFirst().orElse(null);
                assertEquals(expected, map.find(address), "address " + address);
            }
        }
    }
}
