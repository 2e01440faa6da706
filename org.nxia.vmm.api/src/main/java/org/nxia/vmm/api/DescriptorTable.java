package org.nxia.vmm.api;

/** GDTR or IDTR: base and limit. */
public record DescriptorTable(long base, int limit) {
}
