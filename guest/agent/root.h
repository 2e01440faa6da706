/* The System VM's root file system (docs/linux-vm.md, "Root file system"):
 * a read-only base on virtio-blk under an overlay whose upper layer is the
 * VM's own (tmpfs, or a second block device), switched to by PID 1. */
#ifndef NXIA_ROOT_H
#define NXIA_ROOT_H

#include <stddef.h>

#define ROOT_DEV_MAX 64          /* "/dev/vda"; longer is not a device this VM has */

struct root_args {
    char root[ROOT_DEV_MAX];     /* nxia.root=: the shared base, "" for none */
    char upper[ROOT_DEV_MAX];    /* nxia.upper=: the VM's writable layer, "" for tmpfs */
    char fstype[16];             /* nxia.rootfstype=, default ext4 (also the upper's) */
};

/* Reads nxia.root=, nxia.upper= and nxia.rootfstype= from a kernel command
 * line of n bytes. Returns 1 when a root is asked for, 0 when not, -1 (with
 * *why set) when a value is malformed: not /dev/NAME of [A-Za-z0-9_-], too long,
 * an upper or file system type without a root, or given twice. */
int root_parse(const char *cmdline, size_t n, struct root_args *a, const char **why);

/* PID 1 only: mounts the base read-only, the upper layer and the overlay,
 * moves /dev, /proc, /sys, /run and /tmp into it and makes it the root.
 * Returns 0, or -1 with the reason logged (the initramfs stays the root). */
int root_switch(const struct root_args *a);

/* PID 1: root_parse of /proc/cmdline, then root_switch when asked. */
void root_from_cmdline(void);

#endif
