/* spin - loops forever without a single exit: for testing VM timeouts. */
#include "nxia.h"

int main(const struct nxia_boot *boot)
{
    (void)boot;
    for (;;)
        __asm__ volatile("" ::: "memory");
}
