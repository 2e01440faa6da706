/* hello - the smallest useful guest: one line on the console, status 0. */
#include "nxia.h"

int main(const struct nxia_boot *boot)
{
    (void)boot;
    nxia_puts("hello from an NXIA micro-VM\n");
    return 0;
}
