/* Portal regions by name (docs/linux-vm.md, "Portal regions in Linux processes"):
 * the VMM names each region it maps on the kernel command line
 * (nxia.portal=NAME@0xGPA); PID 1 links /run/nxia/portal/NAME to the region's
 * device, /dev/daxN.0 (virtio-pmem:...,dax=true) or /dev/pmemN. */
#ifndef NXIA_REGIONS_H
#define NXIA_REGIONS_H

#include <stddef.h>
#include <stdint.h>

#define REGIONS_MAX      16      /* as many as a VM's portal window takes names for */
#define REGION_NAME_MAX  16      /* Portal names: [a-z0-9][a-z0-9_-]{0,14} and the NUL */
#define REGIONS_DIR      "/run/nxia/portal"

struct region_arg {
    char name[REGION_NAME_MAX];
    uint64_t gpa;
};

/* Reads the nxia.portal= words of a command line of n bytes into out (at most
 * max). Returns how many, or -1 with *why set when one is malformed (a name
 * that is not a Portal name, an address that is not 0x and 1-16 hex digits,
 * a name given twice) or there are more than max. */
int regions_parse(const char *cmdline, size_t n, struct region_arg *out, int max, const char **why);

/* PID 1: regions_parse of /proc/cmdline, then a link per region whose device
 * Linux made; what it did (or why not) goes to the console. */
void regions_link(void);

#endif
