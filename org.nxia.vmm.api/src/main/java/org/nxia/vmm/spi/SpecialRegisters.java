package org.nxia.vmm.spi;

import java.util.Objects;

/** Segment, descriptor-table and control registers of one vCPU. */
public record SpecialRegisters(
        Segment cs, Segment ds, Segment es, Segment fs, Segment gs, Segment ss, Segment tr, Segment ldt,
        DescriptorTable gdt, DescriptorTable idt,
        long cr0, long cr2, long cr3, long cr4, long cr8, long efer, long apicBase) {

    public SpecialRegisters {
        Objects.requireNonNull(cs, "cs");
        Objects.requireNonNull(ds, "ds");
        Objects.requireNonNull(es, "es");
        Objects.requireNonNull(fs, "fs");
        Objects.requireNonNull(gs, "gs");
        Objects.requireNonNull(ss, "ss");
        Objects.requireNonNull(tr, "tr");
        Objects.requireNonNull(ldt, "ldt");
        Objects.requireNonNull(gdt, "gdt");
        Objects.requireNonNull(idt, "idt");
    }
}
