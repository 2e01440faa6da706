/*
 * portal-bench - bulk copies between the first Portal region in the boot
 * block's portal table and the guest's own heap, for bench:portal.
 * boot->arg: mode (low byte) and repetitions (arg >> 8).
 *
 *   1 in    copy the whole region into the heap, repetitions times
 *   2 out   copy the heap into the whole region, repetitions times
 *
 * The host times runs with 0 and n repetitions and takes the difference.
 * Exits 0, or 2 when there is no region or the heap is too small.
 */
#include "nxia.h"
#include "nxia_portal.h"

int main(const struct nxia_boot *boot)
{
    const struct nxia_portal_table *t = (const struct nxia_portal_table *)(uintptr_t)NXIA_PORTAL_TABLE_GPA;
    if (t->count == 0 || (t->entry[0].flags & NXIA_PORTAL_MAPPED) == 0) {
        nxia_puts("portal-bench: no portal mapped\n");
        return 2;
    }
    const struct nxia_portal *p = &t->entry[0];
    if (boot->heap_size < p->size) {
        nxia_puts("portal-bench: the heap is smaller than the region\n");
        return 2;
    }
    void *region = (void *)(uintptr_t)p->gpa;
    void *heap = (void *)(uintptr_t)boot->heap_gpa;
    uint64_t mode = boot->arg & 0xff, reps = boot->arg >> 8;
    for (uint64_t i = 0; i < reps; i++) {
        if (mode == 1)
            memcpy(heap, region, p->size);
        else
            memcpy(region, heap, p->size);
    }
    return 0;
}
