package org.nxia.vmm.spi;

/**
 * A segment register as the hypervisor sees it (hidden part included).
 *
 * @param type       the 4-bit descriptor type
 * @param present    P
 * @param dpl        descriptor privilege level
 * @param db         D/B (default operation size)
 * @param s          S (code/data rather than system)
 * @param l          L (64-bit code)
 * @param g          G (4 KiB granularity)
 * @param unusable   the register holds a null selector
 */
public record Segment(long base, int limit, int selector, int type, boolean present, int dpl,
                      boolean db, boolean s, boolean l, boolean g, boolean unusable) {

    /** An unusable null segment. */
    public static final Segment NULL = new Segment(0, 0, 0, 0, false, 0, false, false, false, false, true);
}
