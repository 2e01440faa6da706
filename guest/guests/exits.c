/*
 * exits - boot->arg outs to port 0x70c (the benchmark no-op), then status 0.
 * The output is {u64 exits, u64 TSC ticks from before the first out to after
 * the last}: the span bench:exits times on NXIA and on the C floor alike, the
 * same instructions on both sides.
 */
#include "nxia.h"

int main(const struct nxia_boot *boot)
{
    uint64_t n = boot->arg, exits = n;
    uint64_t start = __builtin_ia32_rdtsc();

    if (n)
        __asm__ volatile("1:\n\t"
                         "outl %%eax, %%dx\n\t"
                         "dec %%rcx\n\t"
                         "jnz 1b"
                         : "+c"(n)
                         : "a"(0), "d"(NXIA_PORT_BENCH)
                         : "memory", "cc");
    uint64_t ticks = __builtin_ia32_rdtsc() - start;
    if (boot->output_cap >= 16) {
        uint64_t *out = (uint64_t *)(uintptr_t)boot->output_gpa;
        out[0] = exits;
        out[1] = ticks;
        ((volatile struct nxia_boot *)boot)->output_len = 16;
    }
    return 0;
}
