/* debug-exit - ends the VM through the "debug-exit" device (port 0xf4) with status 3. */
#include "nxia.h"

int main(const struct nxia_boot *boot)
{
    (void)boot;
    nxia_puts("debug-exit: writing 3 to port 0xf4\n");
    nxia_flush();
    nxia_outl(0xf4, 3);
    nxia_puts("debug-exit: still running: no debug-exit device\n");
    return 1;
}
