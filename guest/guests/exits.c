/* exits - boot->arg outs to port 0x70c (the benchmark no-op), then status 0. */
#include "nxia.h"

int main(const struct nxia_boot *boot)
{
    uint64_t n = boot->arg;

    if (n)
        __asm__ volatile("1:\n\t"
                         "outl %%eax, %%dx\n\t"
                         "dec %%rcx\n\t"
                         "jnz 1b"
                         : "+c"(n)
                         : "a"(0), "d"(NXIA_PORT_BENCH)
                         : "memory", "cc");
    return 0;
}
