/* nxia.c - the guest kit runtime: console, exit, host calls, string helpers. */
#include "nxia.h"

/* Set by _start before main runs. */
const struct nxia_boot *nxia_boot_ptr;

static uint32_t console_pos;
static struct nxia_hostcall hostcall_block __attribute__((aligned(8)));

const struct nxia_boot *nxia_boot(void)
{
    return nxia_boot_ptr;
}

static inline char *console_buf(void)
{
    return (char *)(uintptr_t)nxia_boot_ptr->console_gpa;
}

static inline uint32_t console_cap(void)
{
    uint32_t cap = nxia_boot_ptr->console_cap;
    return cap ? cap : 1; /* never divide the world by a zero-sized buffer */
}

void nxia_flush(void)
{
    if (console_pos) {
        nxia_outl(NXIA_PORT_CONSOLE, console_pos);
        console_pos = 0;
    }
}

void nxia_putc(char c)
{
    if (console_pos >= console_cap())
        nxia_flush();
    ((volatile char *)console_buf())[console_pos++] = c;
}

void nxia_write(const void *data, unsigned long len)
{
    const char *p = data;
    uint32_t cap = console_cap();

    while (len) {
        if (console_pos >= cap)
            nxia_flush();
        unsigned long room = cap - console_pos;
        unsigned long n = len < room ? len : room;
        memcpy(console_buf() + console_pos, p, n);
        console_pos += (uint32_t)n;
        p += n;
        len -= n;
    }
}

void nxia_puts(const char *s)
{
    nxia_write(s, strlen(s));
}

void nxia_put_u64(unsigned long value)
{
    char buf[20];
    int i = (int)sizeof buf;

    do {
        buf[--i] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    nxia_write(buf + i, sizeof buf - (unsigned long)i);
}

void nxia_put_i64(long value)
{
    if (value < 0) {
        nxia_putc('-');
        nxia_put_u64(0ul - (unsigned long)value);
    } else {
        nxia_put_u64((unsigned long)value);
    }
}

void nxia_put_hex(const void *data, unsigned long len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;

    for (unsigned long i = 0; i < len; i++) {
        nxia_putc(digits[p[i] >> 4]);
        nxia_putc(digits[p[i] & 15]);
    }
}

_Noreturn void nxia_exit(unsigned int status)
{
    nxia_flush();
    nxia_outl(NXIA_PORT_EXIT, status);
    for (;;)
        __asm__ volatile("hlt" ::: "memory");
}

int nxia_hostcall(const char *name, const void *arg, unsigned long arg_len,
                  void *ret, unsigned long ret_cap, unsigned long *ret_len)
{
    struct nxia_hostcall *hc = &hostcall_block;
    size_t n = strlen(name);

    if (ret_len)
        *ret_len = 0;
    if (n == 0 || n >= NXIA_HC_NAME_MAX)
        return NXIA_HC_EINVAL;
    if (arg_len > NXIA_HC_ARG_MAX)
        return NXIA_HC_E2BIG;

    memset(hc, 0, sizeof *hc);
    hc->magic = NXIA_HC_MAGIC;
    hc->version = NXIA_HC_VERSION;
    memcpy(hc->name, name, n);
    hc->arg_gpa = arg_len ? (uint64_t)(uintptr_t)arg : 0;
    hc->arg_len = arg_len;
    hc->ret_gpa = ret_cap ? (uint64_t)(uintptr_t)ret : 0;
    hc->ret_cap = ret_cap;
    hc->status = NXIA_HC_EINVAL; /* what we report if the host never answers */

    nxia_outl(NXIA_PORT_HOSTCALL, (uint32_t)(uintptr_t)hc);

    int status = ((volatile struct nxia_hostcall *)hc)->status;
    if (ret_len) {
        uint64_t got = ((volatile struct nxia_hostcall *)hc)->ret_len;
        *ret_len = got <= ret_cap ? got : ret_cap;
    }
    return status;
}

void nxia_bench_exit(void)
{
    nxia_outl(NXIA_PORT_BENCH, 0);
}

/* ---- string helpers (gcc may emit calls to these) --------------------- */

void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    if (d <= s || d >= s + n)
        return memcpy(dst, src, n);
    /* overlapping, copy backwards */
    d += n - 1;
    s += n - 1;
    __asm__ volatile("std\n\trep movsb\n\tcld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *p = a, *q = b;

    for (size_t i = 0; i < n; i++)
        if (p[i] != q[i])
            return p[i] < q[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;

    while (s[n])
        n++;
    return n;
}
