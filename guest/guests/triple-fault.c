/*
 * triple-fault (hostile) - loads an empty IDT and executes ud2: #UD cannot be
 * delivered, nor can #DF, so the CPU shuts down. Under PVM any guest
 * exception ends in KVM_EXIT_SHUTDOWN anyway.
 */
#include "nxia.h"

int main(const struct nxia_boot *boot)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } idtr = { 0, 0 };

    (void)boot;
    nxia_puts("triple-fault: empty IDT, then ud2\n");
    nxia_flush();
    __asm__ volatile("lidt %0\n\tud2" : : "m"(idtr) : "memory");
    nxia_puts("triple-fault: still running\n");
    return 1;
}
