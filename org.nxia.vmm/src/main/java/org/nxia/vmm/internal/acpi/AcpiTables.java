package org.nxia.vmm.internal.acpi;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The ACPI tables of a hardware-reduced x86 machine (ACPI 6.3 §4.1), laid
 * out one after the other from {@code address}, each on a 16-byte boundary:
 * RSDP (revision 2), XSDT, FADT, MADT, DSDT. The RSDP comes first, so a
 * kernel that scans 0xE0000–0xFFFFF finds it too when the tables sit there.
 *
 * @param address     guest-physical address of the first byte
 * @param bytes       the tables as they go into guest memory
 * @param rsdpAddress where the RSDP is (for boot_params.acpi_rsdp_addr)
 * @param xsdtAddress where the XSDT is
 * @param fadtAddress where the FADT is
 * @param madtAddress where the MADT is
 * @param dsdtAddress where the DSDT is
 */
public record AcpiTables(long address, byte[] bytes, long rsdpAddress, long xsdtAddress, long fadtAddress,
                         long madtAddress, long dsdtAddress) {

    public static final int RSDP_SIZE = 36;
    public static final int RSDP_REVISION = 2;
    /** The RSDP's checksum covers its ACPI 1.0 part; the extended checksum all of it. */
    public static final int RSDP_V1_SIZE = 20;
    public static final int RSDP_CHECKSUM = 8;
    public static final int RSDP_EXTENDED_CHECKSUM = 32;
    public static final int ALIGN = 16;

    public static final int FADT_REVISION = 6;
    public static final int FADT_MINOR_REVISION = 3;
    public static final int FADT_SIZE = 276;
    public static final int FADT_IAPC_BOOT_ARCH = 109;
    public static final int FADT_FLAGS = 112;
    public static final int FADT_MINOR_VERSION = 131;
    public static final int FADT_X_DSDT = 140;
    /** The hardware-reduced sleep registers (ACPI 6.3 §4.8.3.7), generic addresses in the FADT. */
    public static final int FADT_SLEEP_CONTROL = 244;
    public static final int FADT_SLEEP_STATUS = 256;
    /** Where the VMM serves them: a byte port each (LinuxVm). */
    public static final int SLEEP_CONTROL_PORT = 0x600;
    public static final int SLEEP_STATUS_PORT = 0x601;
    /** A sleep control write: SLP_TYPx in bits 2-4, SLP_EN bit 5. */
    public static final int SLEEP_TYPE_SHIFT = 2;
    public static final int SLEEP_TYPE_MASK = 7;
    public static final int SLEEP_ENABLE = 1 << 5;
    /** The SLP_TYP of S5 (soft off) that the DSDT's {@code \_S5} gives; the only sleep state offered. */
    public static final int S5_SLEEP_TYPE = 5;
    static final int GAS_SYSTEM_IO = 1;
    static final int GAS_BYTE_ACCESS = 1;
    /** IA-PC boot architecture flags: an i8042 on ports 0x60/0x64, no VGA. */
    public static final int BOOT_ARCH_8042 = 1 << 1;
    public static final int BOOT_ARCH_NO_VGA = 1 << 2;
    public static final int HW_REDUCED_ACPI = 1 << 20;

    public static final int MADT_REVISION = 5;
    public static final int MADT_PCAT_COMPAT = 1;
    /** The MADT's fields before its entries: the local APIC address and the flags. */
    static final int MADT_FIXED_SIZE = 8;
    /** MADT entry types and their lengths. */
    static final int MADT_LOCAL_APIC = 0;
    static final int MADT_LOCAL_APIC_SIZE = 8;
    static final int MADT_IO_APIC = 1;
    static final int MADT_IO_APIC_SIZE = 12;
    static final int MADT_INTERRUPT_OVERRIDE = 2;
    static final int MADT_INTERRUPT_OVERRIDE_SIZE = 10;
    static final int MADT_LOCAL_APIC_NMI = 4;
    static final int MADT_LOCAL_APIC_NMI_SIZE = 6;
    static final int LOCAL_APIC_ENABLED = 1;
    /** Processor UID 0xff in a local APIC NMI entry: every processor. */
    static final int ALL_PROCESSORS = 0xff;
    static final int LINT1 = 1;

    public static final int DSDT_REVISION = 2;   // 64-bit integers
    public static final int XSDT_REVISION = 1;
    /** Linux's virtio-mmio driver matches this _HID (drivers/virtio/virtio_mmio.c). */
    public static final String VIRTIO_MMIO_HID = "LNRO0005";
    /** The VMBus's ACPI id, as Hyper-V and QEMU name it. */
    public static final String VMBUS_HID = "VMBus";
    /** The VMBus's name under \\_SB. */
    public static final String VMBUS_NAME = "VMBS";

    public AcpiTables {
        bytes = bytes.clone();
    }

    /** The tables' bytes (a copy). */
    @Override
    public byte[] bytes() {
        return bytes.clone();
    }

    /** Builds every table for {@code platform}, to be placed at {@code address}. */
    public static AcpiTables build(long address, AcpiPlatform platform) {
        if (address < 0 || address % ALIGN != 0) {
            throw new IllegalArgumentException("the ACPI tables start on a 16-byte boundary, not at 0x" + Long.toHexString(address));
        }
        byte[] dsdt = dsdt(platform.isaDevices(), platform.virtioMmio(), platform.vmbus());
        byte[] madt = madt(platform);
        long xsdtAddress = address + align(RSDP_SIZE);
        int xsdtSize = SystemDescriptionTable.HEADER_SIZE + 2 * Long.BYTES;
        long fadtAddress = xsdtAddress + align(xsdtSize);
        long madtAddress = fadtAddress + align(FADT_SIZE);
        long dsdtAddress = madtAddress + align(madt.length);
        byte[] fadt = fadt(dsdtAddress);
        byte[] xsdt = xsdt(List.of(fadtAddress, madtAddress));
        long end = dsdtAddress + dsdt.length;
        if (end > 1L << 32) {
            throw new IllegalArgumentException("the ACPI tables must end below 4 GiB, not at 0x" + Long.toHexString(end));
        }
        byte[] bytes = new byte[(int) (end - address)];
        System.arraycopy(rsdp(xsdtAddress), 0, bytes, 0, RSDP_SIZE);
        System.arraycopy(xsdt, 0, bytes, (int) (xsdtAddress - address), xsdt.length);
        System.arraycopy(fadt, 0, bytes, (int) (fadtAddress - address), fadt.length);
        System.arraycopy(madt, 0, bytes, (int) (madtAddress - address), madt.length);
        System.arraycopy(dsdt, 0, bytes, (int) (dsdtAddress - address), dsdt.length);
        return new AcpiTables(address, bytes, address, xsdtAddress, fadtAddress, madtAddress, dsdtAddress);
    }

    /** One table's bytes, {@code length} from its address. */
    public byte[] table(long tableAddress, int length) {
        if (length < 0 || tableAddress < address || tableAddress - address > bytes.length - length) {
            throw new IndexOutOfBoundsException("0x%x + %d is outside the tables".formatted(tableAddress, length));
        }
        int from = (int) (tableAddress - address);
        return Arrays.copyOfRange(bytes, from, from + length);
    }

    /** The table with the SDT header at {@code tableAddress}, as long as its length field says. */
    public byte[] table(long tableAddress) {
        long at = tableAddress - address;
        if (at < 0 || at > bytes.length - SystemDescriptionTable.HEADER_SIZE) {
            throw new IndexOutOfBoundsException("no table header at 0x" + Long.toHexString(tableAddress));
        }
        return table(tableAddress, ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getInt((int) at + SystemDescriptionTable.LENGTH));
    }

    /** Root System Description Pointer, revision 2: no RSDT, the XSDT's 64-bit address. */
    static byte[] rsdp(long xsdtAddress) {
        ByteBuffer b = ByteBuffer.allocate(RSDP_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.put(SystemDescriptionTable.ascii("RSD PTR ")).put((byte) 0).put(SystemDescriptionTable.ascii(SystemDescriptionTable.NXIA_OEM_ID))
                .put((byte) RSDP_REVISION).putInt(0).putInt(RSDP_SIZE).putLong(xsdtAddress).put((byte) 0).put(new byte[3]);
        byte[] rsdp = b.array();
        rsdp[RSDP_CHECKSUM] = SystemDescriptionTable.checksum(rsdp, 0, RSDP_V1_SIZE);
        rsdp[RSDP_EXTENDED_CHECKSUM] = SystemDescriptionTable.checksum(rsdp, 0, RSDP_SIZE);
        return rsdp;
    }

    /** Extended System Description Table: the 64-bit addresses of the other tables (the DSDT is the FADT's). */
    static byte[] xsdt(List<Long> tables) {
        ByteBuffer b = ByteBuffer.allocate(Long.BYTES * tables.size()).order(ByteOrder.LITTLE_ENDIAN);
        tables.forEach(b::putLong);
        return SystemDescriptionTable.of("XSDT", XSDT_REVISION, b.array());
    }

    /**
     * Fixed ACPI Description Table, revision 6.3, hardware-reduced: no SCI,
     * no PM1/PM2/GPE blocks or PM timer, no reset register; X_DSDT, the boot
     * architecture flags, HW_REDUCED_ACPI, and the sleep control and status
     * registers (byte ports), through which the guest powers off.
     */
    static byte[] fadt(long dsdtAddress) {
        ByteBuffer b = ByteBuffer.allocate(FADT_SIZE - SystemDescriptionTable.HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        int h = SystemDescriptionTable.HEADER_SIZE;
        b.putShort(FADT_IAPC_BOOT_ARCH - h, (short) (BOOT_ARCH_8042 | BOOT_ARCH_NO_VGA));
        b.putInt(FADT_FLAGS - h, HW_REDUCED_ACPI);
        b.put(FADT_MINOR_VERSION - h, (byte) FADT_MINOR_REVISION);
        b.putLong(FADT_X_DSDT - h, dsdtAddress);
        gas(b, FADT_SLEEP_CONTROL - h, SLEEP_CONTROL_PORT);
        gas(b, FADT_SLEEP_STATUS - h, SLEEP_STATUS_PORT);
        return SystemDescriptionTable.of("FACP", FADT_REVISION, b.array());
    }

    /** A Generic Address Structure at {@code at}: an 8-bit register at I/O port {@code port}, byte access. */
    private static void gas(ByteBuffer b, int at, int port) {
        b.put(at, (byte) GAS_SYSTEM_IO).put(at + 1, (byte) 8).put(at + 2, (byte) 0).put(at + 3, (byte) GAS_BYTE_ACCESS).putLong(at + 4, port);
    }

    /**
     * Multiple APIC Description Table: a local APIC per vCPU (UID and APIC id
     * = vCPU index), the IO-APIC at GSI base 0, the overrides, and LINT1 as
     * NMI on every CPU, as the MP table's local interrupt entry says.
     */
    static byte[] madt(AcpiPlatform p) {
        int size = MADT_FIXED_SIZE + p.cpus() * MADT_LOCAL_APIC_SIZE + MADT_IO_APIC_SIZE
                + p.overrides().size() * MADT_INTERRUPT_OVERRIDE_SIZE + MADT_LOCAL_APIC_NMI_SIZE;
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt((int) p.localApicAddress()).putInt(MADT_PCAT_COMPAT);
        for (int cpu = 0; cpu < p.cpus(); cpu++) {
            b.put((byte) MADT_LOCAL_APIC).put((byte) MADT_LOCAL_APIC_SIZE).put((byte) cpu).put((byte) cpu).putInt(LOCAL_APIC_ENABLED);
        }
        // GSI base 0: the IO-APIC's pins are GSIs 0 to pins - 1
        b.put((byte) MADT_IO_APIC).put((byte) MADT_IO_APIC_SIZE).put((byte) p.ioApicId()).put((byte) 0)
                .putInt((int) p.ioApicAddress()).putInt(0);
        for (InterruptOverride o : p.overrides()) {
            // bus 0 (ISA), its IRQ, the GSI, MPS INTI flags
            b.put((byte) MADT_INTERRUPT_OVERRIDE).put((byte) MADT_INTERRUPT_OVERRIDE_SIZE).put((byte) 0).put((byte) o.isaIrq())
                    .putInt(o.gsi()).putShort((short) o.flags());
        }
        // processor UID 0xff (all), flags 0 (conforming: edge, active high, as the MP table's entry), LINT1
        b.put((byte) MADT_LOCAL_APIC_NMI).put((byte) MADT_LOCAL_APIC_NMI_SIZE).put((byte) ALL_PROCESSORS).putShort((short) 0)
                .put((byte) LINT1);
        return SystemDescriptionTable.of("APIC", MADT_REVISION, b.array());
    }

    /**
     * Differentiated System Description Table: under {@code \_SB}, each ISA
     * device with its EISA id, ports and IRQ, then each virtio-mmio device as
     * {@code VRnn} with _HID LNRO0005, _UID its index and _CRS its window and
     * its edge-triggered, active-high interrupt. _UID 0 for each ISA device:
     * each has a _HID of its own. With a VMBus, {@code VMBS} with _HID
     * {@value #VMBUS_HID} (what Linux's hv_vmbus matches, as on Hyper-V) and
     * an empty _CRS: no MMIO ranges for its channels yet, and on x86 its
     * interrupt is the hypervisor callback vector, not an IRQ. Then
     * {@code \_S5}: soft off is the one sleep state, SLP_TYP {@value #S5_SLEEP_TYPE}.
     */
    static byte[] dsdt(List<IsaDevice> isaDevices, List<VirtioMmioDevice> virtioMmio, boolean vmbus) {
        if (virtioMmio.size() > AcpiPlatform.MAX_DEVICES) {
            throw new IllegalArgumentException("the DSDT names at most " + AcpiPlatform.MAX_DEVICES + " virtio-mmio devices");
        }
        List<byte[]> named = new ArrayList<>();
        for (IsaDevice d : isaDevices) {
            List<byte[]> resources = new ArrayList<>();
            d.ports().forEach(p -> resources.add(ResourceTemplate.io(p)));
            resources.add(ResourceTemplate.interrupt(d.irq(), ResourceTemplate.Trigger.EDGE, ResourceTemplate.Polarity.ACTIVE_HIGH));
            named.add(Aml.device(d.name(),
                    Aml.name("_HID", Aml.eisaId(d.eisaId())),
                    Aml.name("_UID", Aml.integer(0)),
                    Aml.name("_CRS", ResourceTemplate.of(resources.toArray(byte[][]::new)))));
        }
        for (int i = 0; i < virtioMmio.size(); i++) {
            VirtioMmioDevice d = virtioMmio.get(i);
            named.add(Aml.device("VR%02X".formatted(i),
                    Aml.name("_HID", Aml.string(VIRTIO_MMIO_HID)),
                    Aml.name("_UID", Aml.integer(i)),
                    Aml.name("_CRS", ResourceTemplate.of(
                            ResourceTemplate.memory32Fixed(d.base(), d.size()),
                            ResourceTemplate.interrupt(d.gsi(), ResourceTemplate.Trigger.EDGE, ResourceTemplate.Polarity.ACTIVE_HIGH)))));
        }
        if (vmbus) {
            named.add(Aml.device(VMBUS_NAME,
                    Aml.name("_HID", Aml.string(VMBUS_HID)),
                    Aml.name("_UID", Aml.integer(0)),
                    Aml.name("_CRS", ResourceTemplate.of())));
        }
        // "_SB", not "\_SB": the same object seen from the root, and what iasl emits for Scope (\_SB)
        return SystemDescriptionTable.of("DSDT", DSDT_REVISION, Aml.concat(Aml.scope("_SB", named.toArray(byte[][]::new)),
                Aml.name("_S5", Aml.pack(Aml.integer(S5_SLEEP_TYPE), Aml.integer(S5_SLEEP_TYPE), Aml.integer(0), Aml.integer(0)))));
    }

    private static long align(long size) {
        return (size + ALIGN - 1) & -ALIGN;
    }
}
