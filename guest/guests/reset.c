/* reset - asks the i8042 to pulse the reset line (command 0xfe on port 0x64), as Linux's reboot=k does. */
#include "nxia.h"

int main(const struct nxia_boot *boot)
{
    (void)boot;
    nxia_puts("reset: i8042 command 0xfe\n");
    nxia_flush();
    nxia_outb(0x64, 0xfe);
    nxia_puts("reset: still running: no i8042 device\n");
    return 1;
}
