/*
 * The DSDT AcpiTablesIaslTest expects from the Java builder for three
 * virtio-mmio devices: 4 KiB windows at 0xd0000000, 0xd0001000 and
 * 0xd0002000 on GSIs 5, 6 and 16 (edge-triggered, active high: the
 * transport pulses its line).
 */
DefinitionBlock ("", "DSDT", 2, "NXIA  ", "NXIADSDT", 1)
{
    Scope (\_SB)
    {
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
    }
}
