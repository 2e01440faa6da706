/**
 * ACPI tables for Linux VMs: an RSDP, XSDT, hardware-reduced FADT, MADT and
 * a DSDT whose AML names each virtio-mmio device, built byte for byte in
 * Java (tests compare them with iasl's output for the same ASL).
 */
package org.nxia.vmm.internal.acpi;
