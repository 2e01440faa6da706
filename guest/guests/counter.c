/*
 * counter - counts for the snapshot tests: prints "counter: boot" once, then
 * "tick N" (N = 1, 2, ...) after every boot->arg turns of a busy loop (2^20
 * when 0), each line flushed at once. Paused, it prints nothing; restored from
 * a snapshot it goes on with the tick after the last one and never prints the
 * boot line again.
 */
#include "nxia.h"

int main(const struct nxia_boot *boot)
{
    unsigned long spin = boot->arg ? boot->arg : 1ul << 20;

    nxia_puts("counter: boot\n");
    nxia_flush();
    for (unsigned long tick = 1;; tick++) {
        for (volatile unsigned long i = 0; i < spin; i++)
            ;
        nxia_puts("tick ");
        nxia_put_u64(tick);
        nxia_putc('\n');
        nxia_flush();
    }
}
