/*
 * The DSDT AcpiTablesIaslTest expects from the Java builder for COM1
 * (a 16550, PNP0501), the i8042's keyboard port (PNP0303) and three
 * virtio-mmio devices: 4 KiB windows at 0xd0000000, 0xd0001000 and
 * 0xd0002000 on GSIs 5, 6 and 16. Every interrupt is edge-triggered and
 * active high: ISA's (as the MP table says), and virtio-mmio's because
 * the transport pulses its line. VMBS: a Hyper-V partition's VMBus, with
 * no resources (on x86 its interrupt is the hypervisor callback vector).
 * \_S5: soft off, the one sleep state,
 * SLP_TYP 5 (what the guest writes to the FADT's sleep control register).
 */
DefinitionBlock ("", "DSDT", 2, "NXIA  ", "NXIADSDT", 1)
{
    Scope (\_SB)
    {
        Device (COM1)
        {
            Name (_HID, EisaId ("PNP0501"))
            Name (_UID, 0)
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
                Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 4 }
            })
        }
        Device (PS2K)
        {
            Name (_HID, EisaId ("PNP0303"))
            Name (_UID, 0)
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x0060, 0x0060, 0x01, 0x01)
                IO (Decode16, 0x0064, 0x0064, 0x01, 0x01)
                Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 1 }
            })
        }
        Device (VR00)
        {
            Name (_HID, "LNRO0005")
            Name (_UID, 0)
            Name (_CRS, ResourceTemplate ()
            {
                Memory32Fixed (ReadWrite, 0xD0000000, 0x00001000)
                Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 5 }
            })
        }
        Device (VR01)
        {
            Name (_HID, "LNRO0005")
            Name (_UID, 1)
            Name (_CRS, ResourceTemplate ()
            {
                Memory32Fixed (ReadWrite, 0xD0001000, 0x00001000)
                Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 6 }
            })
        }
        Device (VR02)
        {
            Name (_HID, "LNRO0005")
            Name (_UID, 2)
            Name (_CRS, ResourceTemplate ()
            {
                Memory32Fixed (ReadWrite, 0xD0002000, 0x00001000)
                Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 16 }
            })
        }
        Device (VMBS)
        {
            Name (_HID, "VMBus")
            Name (_UID, 0)
            Name (_CRS, ResourceTemplate ()
            {
            })
        }
    }
    Name (_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })
}
