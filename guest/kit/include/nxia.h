/*
 * nxia.h - the NXIA micro-VM guest kit (guest ABI version 1).
 *
 * The layouts below are the contract in docs/guest-abi.md; the static
 * assertions pin every offset so a change shows up at compile time.
 * This header is also included by host programs (the C floor), so it uses
 * only <stdint.h>/<stddef.h> and declares the runtime API only for guests.
 */
#ifndef NXIA_H
#define NXIA_H

#include <stddef.h>
#include <stdint.h>

/* ---- boot block ------------------------------------------------------- */

#define NXIA_BOOT_GPA        0x1000u
#define NXIA_BOOT_MAGIC      0x4149584eu /* "NXIA" */
#define NXIA_BOOT_VERSION    1u
#define NXIA_BOOT_PVM        0x0001u     /* flags bit 0 */

#define NXIA_PVCS_GPA        0x2000u
#define NXIA_GDT_GPA         0x3000u
#define NXIA_TSS_GPA         0x3800u
#define NXIA_CONSOLE_GPA     0x8000u
#define NXIA_CONSOLE_CAP     32768u
#define NXIA_IMAGE_BASE      0x100000u
#define NXIA_STACK_SIZE      0x10000u    /* 64 KiB below stack_top */
#define NXIA_MMIO_BASE       0xd0000000u
#define NXIA_MMIO_SIZE       0x200000u
#define NXIA_MMIO_WINDOW     0x1000u     /* one device window */
#define NXIA_MMIO_MAX        32u         /* entries in boot->mmio_base */

#define NXIA_SEL_CODE        0x10u
#define NXIA_SEL_DATA        0x18u
#define NXIA_SEL_TSS         0x20u

struct nxia_boot {
    uint32_t magic;          /*   0 */
    uint16_t version;        /*   4 */
    uint16_t flags;          /*   6 */
    uint32_t pvm_msr;        /*   8 */
    uint32_t vcpu_id;        /*  12 */
    uint64_t pvm_msr_value;  /*  16 */
    uint64_t ram_size;       /*  24 */
    uint64_t console_gpa;    /*  32 */
    uint32_t console_cap;    /*  40 */
    uint32_t reserved;       /*  44 */
    uint64_t input_gpa;      /*  48 */
    uint64_t input_len;      /*  56 */
    uint64_t output_gpa;     /*  64 */
    uint64_t output_cap;     /*  72 */
    uint64_t output_len;     /*  80 */
    uint64_t heap_gpa;       /*  88 */
    uint64_t heap_size;      /*  96 */
    uint64_t stack_top;      /* 104 */
    uint64_t arg;            /* 112 */
    uint32_t mmio_count;     /* 120 number of MMIO device windows (<= 32) */
    uint32_t reserved1;      /* 124 */
    uint64_t mmio_base[32];  /* 128 window bases, profile order, 4 KiB each */
};

_Static_assert(offsetof(struct nxia_boot, magic) == 0, "boot.magic");
_Static_assert(offsetof(struct nxia_boot, version) == 4, "boot.version");
_Static_assert(offsetof(struct nxia_boot, flags) == 6, "boot.flags");
_Static_assert(offsetof(struct nxia_boot, pvm_msr) == 8, "boot.pvm_msr");
_Static_assert(offsetof(struct nxia_boot, vcpu_id) == 12, "boot.vcpu_id");
_Static_assert(offsetof(struct nxia_boot, pvm_msr_value) == 16, "boot.pvm_msr_value");
_Static_assert(offsetof(struct nxia_boot, ram_size) == 24, "boot.ram_size");
_Static_assert(offsetof(struct nxia_boot, console_gpa) == 32, "boot.console_gpa");
_Static_assert(offsetof(struct nxia_boot, console_cap) == 40, "boot.console_cap");
_Static_assert(offsetof(struct nxia_boot, reserved) == 44, "boot.reserved");
_Static_assert(offsetof(struct nxia_boot, input_gpa) == 48, "boot.input_gpa");
_Static_assert(offsetof(struct nxia_boot, input_len) == 56, "boot.input_len");
_Static_assert(offsetof(struct nxia_boot, output_gpa) == 64, "boot.output_gpa");
_Static_assert(offsetof(struct nxia_boot, output_cap) == 72, "boot.output_cap");
_Static_assert(offsetof(struct nxia_boot, output_len) == 80, "boot.output_len");
_Static_assert(offsetof(struct nxia_boot, heap_gpa) == 88, "boot.heap_gpa");
_Static_assert(offsetof(struct nxia_boot, heap_size) == 96, "boot.heap_size");
_Static_assert(offsetof(struct nxia_boot, stack_top) == 104, "boot.stack_top");
_Static_assert(offsetof(struct nxia_boot, arg) == 112, "boot.arg");
_Static_assert(offsetof(struct nxia_boot, mmio_count) == 120, "boot.mmio_count");
_Static_assert(offsetof(struct nxia_boot, reserved1) == 124, "boot.reserved1");
_Static_assert(offsetof(struct nxia_boot, mmio_base) == 128, "boot.mmio_base");
_Static_assert(sizeof(struct nxia_boot) == 384, "boot size");

/* ---- ports ------------------------------------------------------------ */

#define NXIA_PORT_DEBUGCON   0x00e9u /*  8-bit out: one byte, one exit        */
#define NXIA_PORT_EXIT       0x0700u /* 32-bit out: exit status, VM stops     */
#define NXIA_PORT_CONSOLE    0x0704u /* 32-bit out: flush N console bytes     */
#define NXIA_PORT_HOSTCALL   0x0708u /* 32-bit out: GPA of a nxia_hostcall    */
#define NXIA_PORT_BENCH      0x070cu /* 32-bit out: counted no-op             */

/* ---- host calls ------------------------------------------------------- */

#define NXIA_HC_MAGIC        0x4348584eu /* "NXHC" */
#define NXIA_HC_VERSION      1u
#define NXIA_HC_NAME_MAX     32u
#define NXIA_HC_ARG_MAX      (1024u * 1024u)

#define NXIA_HC_OK           0
#define NXIA_HC_EINVAL       (-1)
#define NXIA_HC_ENOENT       (-2)
#define NXIA_HC_EFAULT       (-3)
#define NXIA_HC_E2BIG        (-4)
#define NXIA_HC_EFAIL        (-5)
#define NXIA_HC_EPERM        (-6) /* the call policy denied it (docs/gemini-protocol.md, manifests) */

struct nxia_hostcall {
    uint32_t magic;          /*  0 */
    uint16_t version;        /*  4 */
    uint16_t flags;          /*  6 */
    int32_t  status;         /*  8 out */
    uint32_t reserved;       /* 12 */
    char     name[32];       /* 16 NUL-padded */
    uint64_t arg_gpa;        /* 48 */
    uint64_t arg_len;        /* 56 */
    uint64_t ret_gpa;        /* 64 */
    uint64_t ret_cap;        /* 72 */
    uint64_t ret_len;        /* 80 out */
};

_Static_assert(offsetof(struct nxia_hostcall, magic) == 0, "hc.magic");
_Static_assert(offsetof(struct nxia_hostcall, version) == 4, "hc.version");
_Static_assert(offsetof(struct nxia_hostcall, flags) == 6, "hc.flags");
_Static_assert(offsetof(struct nxia_hostcall, status) == 8, "hc.status");
_Static_assert(offsetof(struct nxia_hostcall, reserved) == 12, "hc.reserved");
_Static_assert(offsetof(struct nxia_hostcall, name) == 16, "hc.name");
_Static_assert(offsetof(struct nxia_hostcall, arg_gpa) == 48, "hc.arg_gpa");
_Static_assert(offsetof(struct nxia_hostcall, arg_len) == 56, "hc.arg_len");
_Static_assert(offsetof(struct nxia_hostcall, ret_gpa) == 64, "hc.ret_gpa");
_Static_assert(offsetof(struct nxia_hostcall, ret_cap) == 72, "hc.ret_cap");
_Static_assert(offsetof(struct nxia_hostcall, ret_len) == 80, "hc.ret_len");
_Static_assert(sizeof(struct nxia_hostcall) == 88, "hc size");

/* ---- guest runtime API (freestanding guests only) ---------------------- */

#ifdef NXIA_GUEST

static inline void nxia_outl(uint16_t port, uint32_t value)
{
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

static inline void nxia_outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

static inline uint8_t nxia_inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

/* The boot block _start was given. */
const struct nxia_boot *nxia_boot(void);

/* Buffered console at boot->console_gpa; one port-0x704 exit per flush. */
void nxia_putc(char c);
void nxia_write(const void *data, unsigned long len);
void nxia_puts(const char *s);                      /* no newline added */
void nxia_put_u64(unsigned long value);             /* decimal */
void nxia_put_i64(long value);                      /* decimal, with a sign */
void nxia_put_hex(const void *data, unsigned long len); /* lowercase hex */
void nxia_flush(void);

/* Flush, write status to port 0x700, never return. */
_Noreturn void nxia_exit(unsigned int status);

/*
 * Call host function `name` (at most 31 characters) with `arg_len` bytes
 * at `arg`; up to `ret_cap` result bytes land in `ret`, their count in
 * *ret_len (may be NULL). Returns an NXIA_HC_* status.
 */
int nxia_hostcall(const char *name, const void *arg, unsigned long arg_len,
                  void *ret, unsigned long ret_cap, unsigned long *ret_len);

/* One out to port 0x70c. */
void nxia_bench_exit(void);

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* The guest's entry point, called by _start. */
int main(const struct nxia_boot *boot);

#endif /* NXIA_GUEST */

#endif /* NXIA_H */
