/* root-check: the agent's reading of nxia.root=, nxia.upper= and
 * nxia.rootfstype= from the kernel command line (root.c). */
#include <stdio.h>
#include <string.h>

#include "root.h"

static int failures;

static void expect(const char *cmdline, int want, const char *root, const char *upper, const char *fstype)
{
    struct root_args a;
    const char *why = NULL;
    int r = root_parse(cmdline, strlen(cmdline), &a, &why);

    if (r != want || (r > 0 && (strcmp(a.root, root) || strcmp(a.upper, upper) || strcmp(a.fstype, fstype))) ||
        (r < 0 && !why)) {
        printf("FAIL: '%s': got %d root='%s' upper='%s' fstype='%s' (%s); want %d root='%s' upper='%s' fstype='%s'\n",
               cmdline, r, a.root, a.upper, a.fstype, why ? why : "-", want, root, upper, fstype);
        failures++;
    }
}

int main(void)
{
    char longdev[ROOT_DEV_MAX + 16] = "nxia.root=/dev/";
    char nul[] = "nxia.root=/dev/vda\0nxia.upper=/dev/vdb";

    expect("", 0, "", "", "");
    expect("console=ttyS0 reboot=k panic=-1", 0, "", "", "");
    expect("console=ttyS0 nxia.root=/dev/vda", 1, "/dev/vda", "", "ext4");
    expect("nxia.root=/dev/vda nxia.upper=/dev/vdb\n", 1, "/dev/vda", "/dev/vdb", "ext4");
    expect("nxia.rootfstype=ext2 nxia.root=/dev/vdc", 1, "/dev/vdc", "", "ext2");
    expect("xnxia.root=/dev/vda", 0, "", "", "");             /* only whole words */
    expect("nxia.rootx=/dev/vda", 0, "", "", "");
    expect("nxia.root=/dev/vda nxia.root=/dev/vdb", -1, "", "", "");
    expect("nxia.root=vda", -1, "", "", "");
    expect("nxia.root=/dev/", -1, "", "", "");
    expect("nxia.root=", -1, "", "", "");
    expect("nxia.root=/dev/../etc/x", -1, "", "", "");
    expect("nxia.root=/dev/vda,upperdir=/", -1, "", "", "");
    expect("nxia.root=/dev/vda nxia.rootfstype=ext4,x", -1, "", "", "");
    expect("nxia.upper=/dev/vdb", -1, "", "", "");            /* an upper layer needs a base */
    expect("nxia.rootfstype=ext4", -1, "", "", "");
    memset(longdev + strlen(longdev), 'a', ROOT_DEV_MAX);
    longdev[sizeof longdev - 1] = 0;
    expect(longdev, -1, "", "", "");
    /* /proc/cmdline ends in a newline; NULs and tabs separate too */
    {
        struct root_args a;
        const char *why;
        if (root_parse(nul, sizeof nul - 1, &a, &why) != 1 || strcmp(a.upper, "/dev/vdb")) {
            printf("FAIL: NUL-separated words\n");
            failures++;
        }
    }
    if (failures)
        return 1;
    printf("root-check: all cases pass\n");
    return 0;
}
