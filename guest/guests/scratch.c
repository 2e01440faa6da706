/*
 * scratch - the guest of the template-restore (in-place reset) tests: prints
 * "scratch: boot", spins (boot->arg >> 16) turns of a busy loop (the window in
 * which a test pauses and saves it), prints "spun" (a pause after it did not land
 * in the spin), then counts one run in a global, writes
 * one byte into each of (boot->arg & 0xffff) pages of a static buffer (at most
 * 64), prints "run N" and exits with N. Cold, and after every in-place reset
 * to a snapshot taken before the count, N is 1; a reset that left any of its
 * writes behind would show 2 or more.
 */
#include "nxia.h"

#define MAX_PAGES 64

static volatile unsigned long runs;
static volatile unsigned char pages[MAX_PAGES][4096] __attribute__((aligned(4096)));

int main(const struct nxia_boot *boot)
{
    unsigned long spin = boot->arg >> 16;
    unsigned long count = boot->arg & 0xffff;

    if (count > MAX_PAGES)
        count = MAX_PAGES;
    nxia_puts("scratch: boot\n");
    nxia_flush();
    for (volatile unsigned long i = 0; i < spin; i++)
        ;
    nxia_puts("spun\n");
    nxia_flush();
    runs++;
    for (unsigned long p = 0; p < count; p++)
        pages[p][0] = (unsigned char)runs;
    nxia_puts("run ");
    nxia_put_u64(runs);
    nxia_putc('\n');
    nxia_flush();
    nxia_exit((unsigned int)runs);
}
