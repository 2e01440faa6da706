package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.internal.acpi.AcpiTables;
import org.nxia.vmm.internal.acpi.SystemDescriptionTable;
import org.nxia.vmm.internal.acpi.VirtioMmioDevice;
import org.nxia.vmm.internal.linux.BootParams;
import org.nxia.vmm.internal.linux.E820;
import org.nxia.vmm.internal.linux.LinuxBoot;
import org.nxia.vmm.internal.linux.LinuxLayout;
import org.nxia.vmm.internal.linux.TestKernel;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.spi.GuestMemory;

/**
 * Where a Linux VM with {@code acpi} puts its ACPI tables and how its kernel
 * finds them: the zero page's acpi_rsdp_addr, the tables in RAM that e820
 * reserves, every checksum right, the DSDT naming the devices that the
 * command line announces without ACPI.
 */
class LinuxVmAcpiTest {

    private static final int VCPUS = 2;
    private static final Pattern ANNOUNCED = Pattern.compile("virtio_mmio\\.device=(\\d+)K@0x([0-9a-f]+):(\\d+)");

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();
    @TempDir
    Path dir;

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    /** Boots (writes the boot structures of) a Linux VM with two virtio-mmio devices: its guest memory, copied. */
    private GuestMemory booted(boolean acpi) throws Exception {
        Path kernel = Files.write(dir.resolve("bzImage"), TestKernel.image());
        DeviceConfig mmio = new DeviceConfig("mmio", Map.of());
        LinuxProfile profile = LinuxProfile.of(kernel, null).withVcpus(VCPUS).withMemory(LinuxProfile.MIN_MEMORY)
                .withDevices(List.of(mmio, mmio)).withAcpi(acpi);
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        VmCore vm = new VmCore("vm-linux", new LinuxVm(profile, hv.info()), hv, threads, vms.factories(), VmCore.DESTROY_WAIT);
        try {
            GuestMemory memory = hv.partition().memory();
            return GuestMemory.of(0, MemorySegment.ofArray(memory.read(0, (int) LinuxProfile.MIN_MEMORY)));
        } finally {
            vm.destroy();
        }
    }

    @Test
    void withoutAcpiTheCommandLineAnnouncesTheDevicesAndThereIsNoRsdp() throws Exception {
        GuestMemory memory = booted(false);
        assertEquals(0, memory.readLong(LinuxLayout.ZERO_PAGE + BootParams.ACPI_RSDP_ADDR), "acpi_rsdp_addr");
        assertFalse(new String(memory.read(LinuxLayout.ACPI_TABLES, 8), StandardCharsets.US_ASCII).equals("RSD PTR "));
        assertEquals(2, announced(cmdline(memory)).size(), cmdline(memory));
        assertTrue(cmdline(memory).contains(" i8042.nopnp "), cmdline(memory));
        assertEquals(0x5f50_4d5f, memory.readInt(LinuxLayout.EBDA), "the MP tables");
    }

    @Test
    void withAcpiTheZeroPagePointsAtTheRsdpAndTheTablesSitInReservedRam() throws Exception {
        GuestMemory memory = booted(true);
        long rsdp = memory.readLong(LinuxLayout.ZERO_PAGE + BootParams.ACPI_RSDP_ADDR);
        assertEquals(LinuxLayout.ACPI_TABLES, rsdp, "acpi_rsdp_addr");
        assertEquals(0, rsdp % 16, "16-byte aligned, as a scan for it wants");
        byte[] pointer = memory.read(rsdp, AcpiTables.RSDP_SIZE);
        assertEquals("RSD PTR ", new String(pointer, 0, 8, StandardCharsets.US_ASCII));
        assertEquals(2, pointer[15], "RSDP revision");
        assertEquals(0, SystemDescriptionTable.sum(pointer, 0, AcpiTables.RSDP_V1_SIZE), "RSDP checksum");
        assertEquals(0, SystemDescriptionTable.sum(pointer, 0, AcpiTables.RSDP_SIZE), "RSDP extended checksum");
        List<E820.Entry> e820 = e820(memory);
        assertReserved(e820, rsdp, AcpiTables.RSDP_SIZE, "RSDP");

        Map<String, Long> tables = new HashMap<>();
        long xsdt = memory.readLong(rsdp + 24);
        byte[] xsdtBytes = table(memory, xsdt, "XSDT", e820);
        for (int at = SystemDescriptionTable.HEADER_SIZE; at < xsdtBytes.length; at += 8) {
            long address = memory.readLong(xsdt + at);
            tables.put(new String(memory.read(address, 4), StandardCharsets.US_ASCII), address);
        }
        assertEquals(List.of("APIC", "FACP"), tables.keySet().stream().sorted().toList(), "what the XSDT lists");
        byte[] fadt = table(memory, tables.get("FACP"), "FACP", e820);
        assertEquals(AcpiTables.HW_REDUCED_ACPI, memory.readInt(tables.get("FACP") + AcpiTables.FADT_FLAGS) & AcpiTables.HW_REDUCED_ACPI);
        assertEquals(AcpiTables.FADT_SIZE, fadt.length);
        for (int[] reg : new int[][] {{AcpiTables.FADT_SLEEP_CONTROL, AcpiTables.SLEEP_CONTROL_PORT}, {AcpiTables.FADT_SLEEP_STATUS, AcpiTables.SLEEP_STATUS_PORT}}) {
            long gas = tables.get("FACP") + reg[0];
            // a Generic Address Structure: SystemIO, 8 bits at bit 0, byte access, the port
            assertArrayEquals(new byte[] {1, 8, 0, 1}, memory.read(gas, 4), "sleep register at FADT offset " + reg[0]);
            assertEquals(reg[1], memory.readLong(gas + 4));
        }
        long dsdt = memory.readLong(tables.get("FACP") + AcpiTables.FADT_X_DSDT);
        byte[] dsdtBytes = table(memory, dsdt, "DSDT", e820);
        byte[] madt = table(memory, tables.get("APIC"), "APIC", e820);
        int localApics = 0;
        for (int at = SystemDescriptionTable.HEADER_SIZE + 8; at < madt.length; at += madt[at + 1]) {
            localApics += madt[at] == 0 ? 1 : 0;
        }
        assertEquals(VCPUS, localApics, "a local APIC per vCPU");

        // the DSDT names exactly the devices a VM without ACPI announces on its command line
        List<VirtioMmioDevice> devices = announced(cmdline(booted(false)));
        assertEquals(2, devices.size());
        assertArrayEquals(expectedDsdt(devices), dsdtBytes);
        String names = new String(dsdtBytes, StandardCharsets.US_ASCII);
        for (String device : List.of("COM1", "PS2K", "VR00", "VR01")) {
            assertTrue(names.contains(device), "the DSDT names " + device);
        }
        assertFalse(cmdline(memory).contains("virtio_mmio.device"), "with ACPI the DSDT announces them, not the command line");
        assertFalse(cmdline(memory).contains("i8042.nopnp"), "the i8042 finds its IRQ through the DSDT's PNP0303");
        assertTrue(cmdline(memory).startsWith("console=ttyS0 reboot=k"), cmdline(memory));
        assertEquals(0x5f50_4d5f, memory.readInt(LinuxLayout.EBDA), "the MP tables stay");
    }

    /** The DSDT the builder makes for these devices (AcpiTablesIaslTest checks the builder against iasl). */
    private static byte[] expectedDsdt(List<VirtioMmioDevice> devices) {
        AcpiTables expected = LinuxBoot.acpiTables(VCPUS, devices);
        return expected.table(expected.dsdtAddress());
    }

    /** The table at {@code address}: its signature, checksum, and place inside a reserved e820 entry checked. */
    private static byte[] table(GuestMemory memory, long address, String signature, List<E820.Entry> e820) {
        int length = memory.readInt(address + SystemDescriptionTable.LENGTH);
        assertTrue(length >= SystemDescriptionTable.HEADER_SIZE && length < LinuxLayout.ACPI_TABLES_MAX, signature + " length " + length);
        byte[] bytes = memory.read(address, length);
        assertEquals(signature, new String(bytes, 0, 4, StandardCharsets.US_ASCII));
        assertEquals(0, SystemDescriptionTable.sum(bytes, 0, length), signature + " checksum");
        assertEquals("NXIA  ", new String(bytes, SystemDescriptionTable.OEM_ID, 6, StandardCharsets.US_ASCII), signature + " OEM id");
        assertReserved(e820, address, length, signature);
        return bytes;
    }

    /** {@code [address, address + length)} lies in guest RAM, inside one e820 entry of type reserved. */
    private static void assertReserved(List<E820.Entry> e820, long address, long length, String what) {
        assertTrue(address + length <= LinuxProfile.MIN_MEMORY, what + " inside guest RAM");
        assertTrue(e820.stream().anyMatch(e -> e.type() == E820.RESERVED && e.address() <= address && address + length <= e.end()),
                what + " at 0x" + Long.toHexString(address) + " in a reserved e820 entry: " + e820);
    }

    private static List<E820.Entry> e820(GuestMemory memory) {
        int count = Byte.toUnsignedInt(memory.readByte(LinuxLayout.ZERO_PAGE + BootParams.E820_ENTRIES));
        List<E820.Entry> map = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long at = LinuxLayout.ZERO_PAGE + BootParams.E820_TABLE + (long) i * E820.ENTRY_SIZE;
            map.add(new E820.Entry(memory.readLong(at), memory.readLong(at + 8), memory.readInt(at + 16)));
        }
        return map;
    }

    private static String cmdline(GuestMemory memory) {
        byte[] area = memory.read(LinuxLayout.CMDLINE, (int) LinuxLayout.CMDLINE_MAX);
        int end = 0;
        while (end < area.length && area[end] != 0) {
            end++;
        }
        return new String(area, 0, end, StandardCharsets.US_ASCII);
    }

    private static List<VirtioMmioDevice> announced(String cmdline) {
        List<VirtioMmioDevice> devices = new ArrayList<>();
        Matcher m = ANNOUNCED.matcher(cmdline);
        while (m.find()) {
            devices.add(new VirtioMmioDevice(Long.parseLong(m.group(2), 16), Long.parseLong(m.group(1)) << 10, Integer.parseInt(m.group(3))));
        }
        return devices;
    }
}
