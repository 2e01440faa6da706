/*
 * memfill - the migration bench's guest: writes a word into every 4 KiB page of
 * its heap (all of RAM but the image, the stack and the boot pages), prints
 * "memfill: N MiB written", then counts like counter: "tick N" after every
 * boot->arg turns of a busy loop (2^20 when 0), and before each tick checks the
 * next 1024 pages, round and round, so that a VM restored on another node with
 * a page lost or stale ends with "memfill: page P lost" and exit status 1.
 */
#include "nxia.h"

#define PAGE 4096ul
#define CHECK_PER_TICK 1024ul

static uint64_t pattern(uint64_t page)
{
    return (page * 0x9e3779b97f4a7c15ull) ^ 0x6d656d66696c6c00ull;
}

int main(const struct nxia_boot *boot)
{
    unsigned long spin = boot->arg ? boot->arg : 1ul << 20;
    uint64_t base = (boot->heap_gpa + PAGE - 1) & ~(PAGE - 1);
    uint64_t pages = (boot->heap_gpa + boot->heap_size - base) / PAGE;
    uint64_t next = 0;

    for (uint64_t p = 0; p < pages; p++)
        *(volatile uint64_t *)(uintptr_t)(base + p * PAGE) = pattern(p);
    nxia_puts("memfill: ");
    nxia_put_u64(pages * PAGE >> 20);
    nxia_puts(" MiB written\n");
    nxia_flush();
    for (unsigned long tick = 1;; tick++) {
        for (volatile unsigned long i = 0; i < spin; i++)
            ;
        for (uint64_t n = 0; n < CHECK_PER_TICK && pages; n++, next = (next + 1) % pages) {
            if (*(volatile uint64_t *)(uintptr_t)(base + next * PAGE) != pattern(next)) {
                nxia_puts("memfill: page ");
                nxia_put_u64(next);
                nxia_puts(" lost\n");
                nxia_flush();
                return 1;
            }
        }
        nxia_puts("tick ");
        nxia_put_u64(tick);
        nxia_putc('\n');
        nxia_flush();
    }
}
