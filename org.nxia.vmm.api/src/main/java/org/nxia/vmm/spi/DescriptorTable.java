package org.nxia.vmm.spi;

/** GDTR or IDTR: base and limit. */
public record DescriptorTable(long base, int limit) {
}
