/*
 * The XSDT AcpiTablesIaslTest expects from the Java builder with the
 * tables from 0xE0000: the FADT at 0xE0070, the MADT at 0xE0190.
 */
[0004]                          Signature : "XSDT"    [Extended System Description Table]
[0004]                       Table Length : 00000000
[0001]                           Revision : 01
[0001]                           Checksum : 00
[0006]                             Oem ID : "NXIA  "
[0008]                       Oem Table ID : "NXIAXSDT"
[0004]                       Oem Revision : 00000001
[0004]                    Asl Compiler ID : "INTL"
[0004]              Asl Compiler Revision : 00000000

[0008]             ACPI Table Address   0 : 00000000000E0070
[0008]             ACPI Table Address   1 : 00000000000E0190
