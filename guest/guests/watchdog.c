/*
 * watchdog - the guest of the third-party "watchdog" device (examples/watchdog, port 0x600):
 * pets it arg times (3 when arg is 0), reads back the count the device kept, then stops
 * petting and waits. With the device the VM is reset within the watchdog's timeout; without
 * it the first pet is a write to a port nobody serves and the VM stops with a guest error.
 */
#include "nxia.h"

#define WATCHDOG_PORT 0x600

int main(const struct nxia_boot *boot)
{
    unsigned pets = boot->arg ? (unsigned)(boot->arg & 0xff) : 3;
    for (unsigned i = 0; i < pets; i++)
        nxia_outb(WATCHDOG_PORT, 1);
    nxia_puts("watchdog: the device counted ");
    nxia_put_u64(nxia_inb(WATCHDOG_PORT));
    nxia_puts(" pets; no more pets\n");
    nxia_flush();
    for (;;)
        __asm__ volatile("pause" ::: "memory");
}
