/* regions-check: the agent's reading of nxia.portal=NAME@0xGPA from the kernel command line (regions.c). */
#include <stdio.h>
#include <string.h>

#include "regions.h"

static int failures;

/* want: the count, or -1; names/gpas: the first two regions expected */
static void expect(const char *cmdline, int want, const char *name0, unsigned long long gpa0, const char *name1)
{
    struct region_arg r[3];
    const char *why = NULL;
    int n = regions_parse(cmdline, strlen(cmdline), r, 3, &why);

    if (n != want || (n < 0 && !why) || (n > 0 && (strcmp(r[0].name, name0) || r[0].gpa != gpa0)) ||
        (n > 1 && strcmp(r[1].name, name1))) {
        printf("FAIL: '%s': got %d (%s) %s@%llx; want %d %s@%llx\n", cmdline, n, why ? why : "-", n > 0 ? r[0].name : "-",
               n > 0 ? (unsigned long long)r[0].gpa : 0, want, name0 ? name0 : "-", gpa0);
        failures++;
    }
}

int main(void)
{
    expect("", 0, NULL, 0, NULL);
    expect("console=ttyS0 virtio_mmio.device=4K@0xd0000000:5", 0, NULL, 0, NULL);
    expect("console=ttyS0 nxia.portal=px@0x100000000 quiet", 1, "px", 0x100000000ull, NULL);
    expect("nxia.portal=a-1@0x100000000\nnxia.portal=b_2@0x108000000", 2, "a-1", 0x100000000ull, "b_2");
    expect("nxia.portal=abcdefghijklmno@0xFFFFFFFFFFFFFFFF", 1, "abcdefghijklmno", 0xffffffffffffffffull, NULL);
    expect("nxia.portal=abcdefghijklmnop@0x1", -1, NULL, 0, NULL);          /* 16 characters */
    expect("nxia.portal=Px@0x1", -1, NULL, 0, NULL);                         /* not a Portal name */
    expect("nxia.portal=-x@0x1", -1, NULL, 0, NULL);
    expect("nxia.portal=px@0x", -1, NULL, 0, NULL);
    expect("nxia.portal=px@100", -1, NULL, 0, NULL);
    expect("nxia.portal=px@0x1g", -1, NULL, 0, NULL);
    expect("nxia.portal=px@0x11111111111111111", -1, NULL, 0, NULL);         /* 17 digits */
    expect("nxia.portal=px", -1, NULL, 0, NULL);
    expect("nxia.portal=@0x1", -1, NULL, 0, NULL);
    expect("nxia.portal=px@0x1 nxia.portal=px@0x2", -1, NULL, 0, NULL);      /* twice */
    expect("nxia.portal=a@0x1 nxia.portal=b@0x2 nxia.portal=c@0x3 nxia.portal=d@0x4", -1, NULL, 0, NULL);   /* over max */
    expect("nxia.portal=", 0, NULL, 0, NULL);                                /* the bare key is no region */
    expect("xnxia.portal=px@0x1", 0, NULL, 0, NULL);
    {
        char nul[] = "nxia.portal=px@0x1\0nxia.portal=py@0x2";
        struct region_arg r[3];
        const char *why = NULL;
        if (regions_parse(nul, sizeof nul - 1, r, 3, &why) != 2 || strcmp(r[1].name, "py") || r[1].gpa != 2) {
            printf("FAIL: a NUL separates words\n");
            failures++;
        }
    }
    if (failures)
        return 1;
    printf("regions-check: nxia.portal= parsing passed\n");
    return 0;
}
