/*
 * The RSDP AcpiTablesIaslTest expects from the Java builder with the
 * tables from 0xE0000: revision 2, no RSDT, the XSDT at 0xE0030.
 */
[0008]                          Signature : "RSD PTR "
[0001]                           Checksum : 00
[0006]                             Oem ID : "NXIA  "
[0001]                           Revision : 02
[0004]                       RSDT Address : 00000000
[0004]                             Length : 00000024
[0008]                       XSDT Address : 00000000000E0030
[0001]                  Extended Checksum : 00
[0003]                           Reserved : 000000
