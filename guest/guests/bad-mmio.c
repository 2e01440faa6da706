/* bad-mmio (hostile) - writes a u32 to 0xd0000100, an address no device claims. */
#include "nxia.h"

int main(const struct nxia_boot *boot)
{
    (void)boot;
    nxia_puts("bad-mmio: writing to 0xd0000100\n");
    nxia_flush();
    *(volatile uint32_t *)(uintptr_t)0xd0000100u = 0xdeadbeef;
    nxia_puts("bad-mmio: the VMM let the access through\n");
    return 1;
}
