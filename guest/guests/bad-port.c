/* bad-port (hostile) - writes to port 0x1234, which no device claims. */
#include "nxia.h"

int main(const struct nxia_boot *boot)
{
    (void)boot;
    nxia_puts("bad-port: writing to port 0x1234\n");
    nxia_flush();
    nxia_outl(0x1234, 0xdeadbeef);
    nxia_puts("bad-port: the VMM let the access through\n");
    return 1;
}
