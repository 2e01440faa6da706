/*
 * kvm-floor - a minimal C KVM VMM: the benchmark floor for NXIA.
 *
 * It loads a guest-kit image exactly per docs/guest-abi.md (one RAM slot at
 * 0 backed by a memfd, identity page tables at the top of RAM, GDT/TSS, boot
 * block) and runs it on one vCPU with the least user-space work a VMM can do
 * per exit. It has no host functions: every host call answers
 * NXIA_HC_ENOENT.
 *
 *   kvm-floor run IMAGE [--ram MIB] [--arg N] [--input FILE] [--timeout SEC]
 *   kvm-floor exits IMAGE N [--ram MIB] [--samples FILE]
 *   kvm-floor sandbox IMAGE RUNS [--ram MIB] [--samples FILE]
 *   kvm-floor tsc
 *   kvm-floor layout IMAGE [--ram MIB] [--arg N] [--input FILE] [--dump FILE]
 *             (no KVM: build guest memory in a plain buffer, verify it, and
 *             optionally write it to FILE; for host tests)
 *
 * Result lines (one each, key=value):
 *   run:     stderr  "floor run status=<n> reason=<reason>"
 *   exits:   stdout  "floor exits n=<N> guest_ticks=<t> samples=<k>"
 *   sandbox: stdout  "floor sandbox runs=<n> seconds=<s> samples=<k>"
 *   tsc:     stdout  "floor tsc hz=<x>"
 * exits: guest_ticks is the exits guest's own TSC span (its output), from
 * before its first benchmark exit to after its last. --samples writes the raw
 * samples, little-endian u32 nanoseconds (saturated): exits, the user-space
 * time of each exit; sandbox, each create -> run -> destroy cycle. The floor
 * computes no percentiles: NXIA's bench computes both sides' with one
 * definition.
 *   layout:  stdout  "floor layout ram=<bytes> entry=<hex> ..."
 * Exit codes: run: the guest's status when it is 0..255; 125 when the guest
 * stopped without a status (halt, shutdown, bad port, timeout, ...) or with
 * one above 255 (the result line has the real value); 126 for VMM errors
 * (no KVM, bad image, bad arguments). Other modes: 0 ok, 1 failed.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nxia.h"

#define KIB ((uint64_t)1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define PAGE ((uint64_t)4096)

#define PTE_P   0x001ull
#define PTE_RW  0x002ull
#define PTE_US  0x004ull
#define PTE_PWT 0x008ull
#define PTE_PCD 0x010ull
#define PTE_TABLE (PTE_P | PTE_RW | PTE_US)
#define PTE_MMIO  (PTE_P | PTE_RW | PTE_US | PTE_PWT | PTE_PCD)

#define PVM_SYSFS      "/sys/module/kvm_pvm"
#define PVM_MSR        0x4b564d10u

#define EXIT_NO_STATUS 125
#define EXIT_VMM_ERROR 126

#define MAX_PHDRS 64
#define MAX_SAMPLES (1u << 24)

static const char *prog = "kvm-floor";

static void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- image -------------------------------------------------------------- */

struct image {
    const char *path;
    uint8_t *data;
    size_t size;
    uint64_t entry;
    uint64_t lo, hi;                 /* lowest / highest address of any PT_LOAD */
    unsigned nload;
    Elf64_Phdr load[MAX_PHDRS];
};

static int read_file(const char *path, uint8_t **data, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;

    if (fd < 0) {
        err("%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        err("%s: not a regular file", path);
        close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        err("%s: out of memory", path);
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            err("%s: read: %s", path, r < 0 ? strerror(errno) : "short read");
            free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *size = n;
    return 0;
}

/* The checks of docs/guest-abi.md "Image" that do not depend on RAM size. */
static int image_load(struct image *im, const char *path)
{
    memset(im, 0, sizeof *im);
    im->path = path;
    if (read_file(path, &im->data, &im->size) < 0)
        return -1;

    const uint8_t *d = im->data;
    if (im->size < EI_NIDENT || memcmp(d, ELFMAG, SELFMAG) != 0) {
        err("%s: not an ELF file", path);
        return -1;
    }
    if (d[EI_CLASS] != ELFCLASS64) {
        err("%s: ELF class %u is not ELF64 (a 32-bit image?)", path, d[EI_CLASS]);
        return -1;
    }
    if (d[EI_DATA] != ELFDATA2LSB) {
        err("%s: not a little-endian ELF (EI_DATA %u)", path, d[EI_DATA]);
        return -1;
    }
    if (im->size < sizeof(Elf64_Ehdr)) {
        err("%s: truncated ELF header", path);
        return -1;
    }
    Elf64_Ehdr eh;
    memcpy(&eh, d, sizeof eh);
    if (eh.e_machine != EM_X86_64) {
        err("%s: e_machine %u is not EM_X86_64 (62)", path, eh.e_machine);
        return -1;
    }
    if (eh.e_type != ET_EXEC) {
        err("%s: e_type %u is not ET_EXEC (2); link a static, non-PIE executable", path, eh.e_type);
        return -1;
    }
    if (eh.e_phnum == 0) {
        err("%s: no program headers", path);
        return -1;
    }
    if (eh.e_phnum > MAX_PHDRS) {
        err("%s: %u program headers, at most %u allowed", path, eh.e_phnum, MAX_PHDRS);
        return -1;
    }
    if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
        err("%s: e_phentsize %u, expected %zu", path, eh.e_phentsize, sizeof(Elf64_Phdr));
        return -1;
    }
    uint64_t ph_end = eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr);
    if (eh.e_phoff > im->size || ph_end < eh.e_phoff || ph_end > im->size) {
        err("%s: program header table (offset 0x%" PRIx64 ", %u entries) is outside the file (%zu bytes)",
            path, (uint64_t)eh.e_phoff, eh.e_phnum, im->size);
        return -1;
    }

    im->entry = eh.e_entry;
    im->lo = UINT64_MAX;
    bool entry_ok = false;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, d + eh.e_phoff + i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_LOAD)
            continue;
        uint64_t fend = ph.p_offset + ph.p_filesz;
        if (fend < ph.p_offset || fend > im->size) {
            err("%s: PT_LOAD %u: file range 0x%" PRIx64 "+0x%" PRIx64 " is outside the file (%zu bytes)",
                path, i, (uint64_t)ph.p_offset, (uint64_t)ph.p_filesz, im->size);
            return -1;
        }
        if (ph.p_filesz > ph.p_memsz) {
            err("%s: PT_LOAD %u: p_filesz 0x%" PRIx64 " > p_memsz 0x%" PRIx64,
                path, i, (uint64_t)ph.p_filesz, (uint64_t)ph.p_memsz);
            return -1;
        }
        uint64_t mend = ph.p_vaddr + ph.p_memsz;
        if (mend < ph.p_vaddr) {
            err("%s: PT_LOAD %u: address range 0x%" PRIx64 "+0x%" PRIx64 " overflows",
                path, i, (uint64_t)ph.p_vaddr, (uint64_t)ph.p_memsz);
            return -1;
        }
        if (ph.p_vaddr != ph.p_paddr) {
            err("%s: PT_LOAD %u: p_vaddr 0x%" PRIx64 " != p_paddr 0x%" PRIx64
                "; micro-VM images are identity-mapped", path, i,
                (uint64_t)ph.p_vaddr, (uint64_t)ph.p_paddr);
            return -1;
        }
        if (ph.p_vaddr < NXIA_IMAGE_BASE) {
            err("%s: PT_LOAD %u at 0x%" PRIx64 " is below the image base 0x%x",
                path, i, (uint64_t)ph.p_vaddr, NXIA_IMAGE_BASE);
            return -1;
        }
        if ((ph.p_flags & PF_X) && im->entry >= ph.p_vaddr && im->entry < mend)
            entry_ok = true;
        if (ph.p_vaddr < im->lo)
            im->lo = ph.p_vaddr;
        if (mend > im->hi)
            im->hi = mend;
        im->load[im->nload++] = ph;
    }
    if (im->nload == 0) {
        err("%s: no PT_LOAD segment", path);
        return -1;
    }
    if (!entry_ok) {
        err("%s: entry point 0x%" PRIx64 " is not inside an executable PT_LOAD", path, im->entry);
        return -1;
    }
    return 0;
}

/* ---- guest memory layout ------------------------------------------------- */

struct config {
    uint64_t ram;                    /* bytes */
    uint64_t arg;
    const uint8_t *input;
    uint64_t input_len;
    uint64_t output_cap;
    bool pvm;
};

struct layout {
    uint64_t pt_base, pt_pages;      /* page tables: [pt_base, ram) */
    uint64_t pml4;
    uint64_t stack_top, image_limit;
    uint64_t input_gpa, output_gpa, heap_gpa, heap_size;
};

static int ram_ok(uint64_t ram)
{
    return ram >= 2 * MIB && ram <= 3 * GIB && ram % (2 * MIB) == 0;
}

/*
 * Build guest memory in `mem` (ram bytes, already zero): page tables, GDT,
 * TSS, image, input, boot block. Returns 0, or -1 with a message.
 */
static int build_memory(uint8_t *mem, const struct config *c, const struct image *im,
                        struct layout *l)
{
    uint64_t ram = c->ram;
    uint64_t n_pt = ram / (2 * MIB);                /* PTs for RAM */
    uint64_t n_pd = (ram + GIB - 1) / GIB;          /* PDs for RAM */
    uint64_t mmio_pdpt_i = NXIA_MMIO_BASE / GIB;    /* 3 */
    uint64_t mmio_pd_i = (NXIA_MMIO_BASE / (2 * MIB)) % 512;

    memset(l, 0, sizeof *l);
    if (!ram_ok(ram)) {
        err("RAM size %" PRIu64 " bytes is not allowed: a multiple of 2 MiB from 2 MiB to 3 GiB", ram);
        return -1;
    }
    /* RAM never reaches the MMIO window's GiB (ram <= 3 GiB), so that PD is its own. */
    l->pt_pages = 2 + n_pd + n_pt + 2;
    l->pt_base = ram - l->pt_pages * PAGE;
    l->pml4 = l->pt_base;
    l->stack_top = l->pt_base;
    l->image_limit = l->stack_top - NXIA_STACK_SIZE;

    if (im->hi > l->image_limit) {
        err("%s: image ends at 0x%" PRIx64 ", beyond the image limit 0x%" PRIx64
            " for %" PRIu64 " MiB of RAM", im->path, im->hi, l->image_limit, ram / MIB);
        return -1;
    }
    l->input_gpa = align_up(im->hi, PAGE);
    l->output_gpa = align_up(l->input_gpa + c->input_len, PAGE);
    l->heap_gpa = align_up(l->output_gpa + c->output_cap, PAGE);
    if (l->input_gpa + c->input_len > l->image_limit || l->heap_gpa > l->image_limit) {
        err("input (%" PRIu64 " bytes) and output (%" PRIu64 " bytes) do not fit in %" PRIu64
            " MiB of RAM after the image", c->input_len, c->output_cap, ram / MIB);
        return -1;
    }
    l->heap_size = l->image_limit - l->heap_gpa;

    /* page tables: PML4, PDPT, RAM PDs, RAM PTs, MMIO PD, MMIO PT */
    uint64_t pml4 = l->pt_base;
    uint64_t pdpt = pml4 + PAGE;
    uint64_t pd0 = pdpt + PAGE;
    uint64_t pt0 = pd0 + n_pd * PAGE;
    uint64_t mmio_pd = pt0 + n_pt * PAGE;
    uint64_t mmio_pt = mmio_pd + PAGE;
    uint64_t *e;

    memset(mem + l->pt_base, 0, l->pt_pages * PAGE);
    e = (uint64_t *)(mem + pml4);
    e[0] = pdpt | PTE_TABLE;
    e = (uint64_t *)(mem + pdpt);
    for (uint64_t i = 0; i < n_pd; i++)
        e[i] = (pd0 + i * PAGE) | PTE_TABLE;
    e[mmio_pdpt_i] = mmio_pd | PTE_TABLE;
    e = (uint64_t *)(mem + pd0);         /* the RAM PDs are contiguous */
    for (uint64_t i = 0; i < n_pt; i++)
        e[i] = (pt0 + i * PAGE) | PTE_TABLE;
    e = (uint64_t *)(mem + pt0);         /* and so are the RAM PTs */
    for (uint64_t i = 1; i < ram / PAGE; i++) /* page 0: null guard */
        e[i] = (i * PAGE) | PTE_TABLE;
    e = (uint64_t *)(mem + mmio_pd);
    e[mmio_pd_i] = mmio_pt | PTE_TABLE;
    e = (uint64_t *)(mem + mmio_pt);
    for (uint64_t i = 0; i < NXIA_MMIO_SIZE / PAGE; i++)
        e[i] = (NXIA_MMIO_BASE + i * PAGE) | PTE_MMIO;

    /* GDT: null, -, code64 0x10, data 0x18, 64-bit TSS 0x20 (16 bytes) */
    uint64_t *gdt = (uint64_t *)(mem + NXIA_GDT_GPA);
    gdt[0] = 0;
    gdt[1] = 0;
    gdt[2] = 0x00af9b000000ffffull;  /* P, DPL 0, S, type 11, L, G */
    gdt[3] = 0x00cf93000000ffffull;  /* P, DPL 0, S, type 3, DB, G */
    uint64_t tss = NXIA_TSS_GPA, tss_limit = 0x67;
    gdt[4] = (tss_limit & 0xffff) | ((tss & 0xffffff) << 16) | (0x8bull << 40) |
             (((tss_limit >> 16) & 0xf) << 48) | (((tss >> 24) & 0xff) << 56);
    gdt[5] = tss >> 32;
    memset(mem + NXIA_TSS_GPA, 0, 0x68);
    uint16_t iomap = 0x68;                       /* no I/O permission bitmap */
    memcpy(mem + NXIA_TSS_GPA + 102, &iomap, sizeof iomap);

    /* image */
    for (unsigned i = 0; i < im->nload; i++) {
        const Elf64_Phdr *ph = &im->load[i];
        memcpy(mem + ph->p_vaddr, im->data + ph->p_offset, ph->p_filesz);
        memset(mem + ph->p_vaddr + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
    }
    if (c->input_len)
        memcpy(mem + l->input_gpa, c->input, c->input_len);

    /* boot block */
    struct nxia_boot b;
    memset(&b, 0, sizeof b);
    b.magic = NXIA_BOOT_MAGIC;
    b.version = NXIA_BOOT_VERSION;
    b.flags = c->pvm ? NXIA_BOOT_PVM : 0;
    b.pvm_msr = c->pvm ? PVM_MSR : 0;
    b.vcpu_id = 0;
    b.pvm_msr_value = c->pvm ? NXIA_PVCS_GPA : 0;
    b.ram_size = ram;
    b.console_gpa = NXIA_CONSOLE_GPA;
    b.console_cap = NXIA_CONSOLE_CAP;
    b.input_gpa = l->input_gpa;
    b.input_len = c->input_len;
    b.output_gpa = l->output_gpa;
    b.output_cap = c->output_cap;
    b.output_len = 0;
    b.heap_gpa = l->heap_gpa;
    b.heap_size = l->heap_size;
    b.stack_top = l->stack_top;
    b.arg = c->arg;
    b.mmio_count = 0;   /* the floor has no devices */
    memcpy(mem + NXIA_BOOT_GPA, &b, sizeof b);
    return 0;
}

/* ---- layout self-check (no KVM) ------------------------------------------ */

/* Walk the guest page tables; returns the leaf entry or 0, and the AND of all levels' flags. */
static uint64_t walk(const uint8_t *mem, uint64_t ram, uint64_t cr3, uint64_t va, uint64_t *and_flags)
{
    uint64_t table = cr3, ent = 0, acc = ~0ull;

    for (int level = 3; level >= 0; level--) {
        unsigned idx = (unsigned)(va >> (12 + 9 * level)) & 511;
        if (table + PAGE > ram)
            return 0;
        memcpy(&ent, mem + table + idx * 8, 8);
        if (!(ent & PTE_P))
            return 0;
        acc &= ent;
        table = ent & 0x000ffffffffff000ull;
    }
    *and_flags = acc & 0xfff;
    return ent;
}

static int layout_check(const uint8_t *mem, const struct config *c, const struct image *im,
                        const struct layout *l)
{
    uint64_t f;
    int bad = 0;

#define CHECK(cond, ...) do { if (!(cond)) { err(__VA_ARGS__); if (++bad > 10) return -1; } } while (0)
    CHECK(walk(mem, c->ram, l->pml4, 0, &f) == 0, "page 0 is mapped");
    CHECK(walk(mem, c->ram, l->pml4, 0xfff, &f) == 0, "page 0 is mapped");
    for (uint64_t a = PAGE; a < c->ram; a += PAGE) {
        uint64_t e = walk(mem, c->ram, l->pml4, a, &f);
        CHECK(e && (e & ~0xfffull) == a && f == PTE_TABLE,
              "RAM page 0x%" PRIx64 ": entry 0x%" PRIx64 " flags 0x%" PRIx64, a, e, f);
    }
    CHECK(walk(mem, c->ram, l->pml4, c->ram, &f) == 0 || c->ram == NXIA_MMIO_BASE,
          "address 0x%" PRIx64 " past RAM is mapped", c->ram);
    for (uint64_t a = NXIA_MMIO_BASE; a < NXIA_MMIO_BASE + NXIA_MMIO_SIZE; a += PAGE) {
        uint64_t e = walk(mem, c->ram, l->pml4, a, &f);
        CHECK(e && (e & ~0xfffull) == a && (e & 0xfff) == PTE_MMIO && f == PTE_TABLE,
              "MMIO page 0x%" PRIx64 ": entry 0x%" PRIx64, a, e);
    }
    CHECK(walk(mem, c->ram, l->pml4, NXIA_MMIO_BASE + NXIA_MMIO_SIZE, &f) == 0, "page after MMIO window mapped");
    CHECK(walk(mem, c->ram, l->pml4, NXIA_MMIO_BASE - PAGE, &f) == 0, "page before MMIO window mapped");
    CHECK(walk(mem, c->ram, l->pml4, 1ull << 39, &f) == 0, "address 512 GiB mapped");

    struct nxia_boot b;
    memcpy(&b, mem + NXIA_BOOT_GPA, sizeof b);
    CHECK(b.magic == NXIA_BOOT_MAGIC && b.version == 1 && b.ram_size == c->ram, "boot block header");
    CHECK(b.console_gpa == NXIA_CONSOLE_GPA && b.console_cap == NXIA_CONSOLE_CAP, "boot block console");
    CHECK(b.stack_top == l->stack_top && b.stack_top % PAGE == 0 && b.stack_top - NXIA_STACK_SIZE >= b.heap_gpa + b.heap_size,
          "stack");
    CHECK(b.input_gpa >= im->hi && b.input_gpa % PAGE == 0, "input placement");
    CHECK(b.output_gpa >= b.input_gpa + b.input_len && b.heap_gpa >= b.output_gpa + b.output_cap, "output/heap placement");
    CHECK(b.arg == c->arg, "arg");
    CHECK(b.mmio_count == 0 && b.reserved1 == 0, "boot block mmio table");
    CHECK(b.input_len == 0 || memcmp(mem + b.input_gpa, c->input, b.input_len) == 0, "input bytes");
    for (unsigned i = 0; i < im->nload; i++) {
        const Elf64_Phdr *ph = &im->load[i];
        CHECK(memcmp(mem + ph->p_vaddr, im->data + ph->p_offset, ph->p_filesz) == 0,
              "PT_LOAD %u contents", i);
    }
    const uint64_t *gdt = (const uint64_t *)(mem + NXIA_GDT_GPA);
    CHECK(gdt[4] == 0x00008b0038000067ull && gdt[5] == 0, "TSS descriptor 0x%016" PRIx64, gdt[4]);
#undef CHECK
    return bad ? -1 : 0;
}

/* ---- KVM ------------------------------------------------------------------ */

enum reason {
    R_EXIT, R_HALT, R_SHUTDOWN, R_FAIL_ENTRY, R_INTERNAL_ERROR, R_BAD_PORT,
    R_BAD_MMIO, R_BAD_CONSOLE, R_BAD_HOSTCALL, R_TIMEOUT, R_UNEXPECTED_EXIT, R_KVM_ERROR,
};

static const char *const reason_names[] = {
    [R_EXIT] = "exit", [R_HALT] = "halt", [R_SHUTDOWN] = "shutdown",
    [R_FAIL_ENTRY] = "fail_entry", [R_INTERNAL_ERROR] = "internal_error",
    [R_BAD_PORT] = "bad_port", [R_BAD_MMIO] = "bad_mmio", [R_BAD_CONSOLE] = "bad_console",
    [R_BAD_HOSTCALL] = "bad_hostcall", [R_TIMEOUT] = "timeout",
    [R_UNEXPECTED_EXIT] = "unexpected_exit", [R_KVM_ERROR] = "kvm_error",
};

struct kvm {
    int fd;
    int run_size;
    bool pvm;
    struct kvm_cpuid2 *cpuid;        /* NULL if unavailable */
};

struct vm {
    int fd, vcpu, memfd;
    uint8_t *mem;
    uint64_t ram;
    struct kvm_run *run;
    int run_size;
    struct layout lay;
};

struct result {
    enum reason reason;
    uint32_t status;
    uint64_t bench;                  /* port 0x70c outs */
    uint64_t exits;                  /* KVM_RUN returns */
    double t_first, t_stop;          /* first KVM_RUN, stop */
    char msg[256];
};

struct run_ctl {
    FILE *console;                   /* NULL: discard */
    uint32_t *samples;               /* per-exit user-space ns, or NULL */
    size_t cap, n;
};

static int kvm_open(struct kvm *k)
{
    memset(k, 0, sizeof *k);
    k->fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (k->fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENXIO || e == ENODEV)
            err("/dev/kvm: %s — KVM is not available on this host", strerror(e));
        else if (e == EACCES || e == EPERM)
            err("/dev/kvm: %s — add yourself to the group that owns /dev/kvm (usually 'kvm')", strerror(e));
        else
            err("/dev/kvm: %s", strerror(e));
        return -1;
    }
    int v = ioctl(k->fd, KVM_GET_API_VERSION, 0);
    if (v != KVM_API_VERSION) {
        err("/dev/kvm: KVM API version %d, expected %d", v, KVM_API_VERSION);
        return -1;
    }
    k->run_size = ioctl(k->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (k->run_size < (int)sizeof(struct kvm_run)) {
        err("KVM_GET_VCPU_MMAP_SIZE: %s", k->run_size < 0 ? strerror(errno) : "too small");
        return -1;
    }
    k->pvm = access(PVM_SYSFS, F_OK) == 0;

    for (unsigned nent = 128; nent <= 4096; nent *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof *c + nent * sizeof(struct kvm_cpuid_entry2));
        if (!c)
            break;
        c->nent = nent;
        if (ioctl(k->fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            k->cpuid = c;
            break;
        }
        int e = errno;
        free(c);
        if (e != E2BIG) {
            err("warning: KVM_GET_SUPPORTED_CPUID: %s (continuing without CPUID)", strerror(e));
            break;
        }
    }
    return 0;
}

static void vm_destroy(struct vm *vm)
{
    if (vm->run && vm->run != MAP_FAILED)
        munmap(vm->run, (size_t)vm->run_size);
    if (vm->vcpu >= 0)
        close(vm->vcpu);
    if (vm->mem && vm->mem != MAP_FAILED)
        munmap(vm->mem, vm->ram);
    if (vm->memfd >= 0)
        close(vm->memfd);
    if (vm->fd >= 0)
        close(vm->fd);
    vm->run = NULL;
    vm->mem = NULL;
    vm->vcpu = vm->memfd = vm->fd = -1;
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t db, uint8_t l)
{
    memset(s, 0, sizeof *s);
    s->base = 0;
    s->limit = 0xffffffff;
    s->selector = sel;
    s->type = type;
    s->present = 1;
    s->dpl = 0;
    s->db = db;
    s->s = 1;
    s->l = l;
    s->g = 1;
}

/* Create a VM with its memory built and its vCPU in the ABI entry state. */
static int vm_create(struct vm *vm, const struct kvm *k, const struct config *c, const struct image *im)
{
    memset(vm, 0, sizeof *vm);
    vm->fd = vm->vcpu = vm->memfd = -1;
    vm->ram = c->ram;
    vm->run_size = k->run_size;

    vm->fd = ioctl(k->fd, KVM_CREATE_VM, 0);
    if (vm->fd < 0) {
        err("KVM_CREATE_VM: %s", strerror(errno));
        goto fail;
    }
    vm->memfd = memfd_create("nxia-ram", MFD_CLOEXEC);
    if (vm->memfd < 0) {
        err("memfd_create: %s", strerror(errno));
        goto fail;
    }
    if (ftruncate(vm->memfd, (off_t)c->ram) < 0) {
        err("ftruncate(memfd, %" PRIu64 "): %s", c->ram, strerror(errno));
        goto fail;
    }
    vm->mem = mmap(NULL, c->ram, PROT_READ | PROT_WRITE, MAP_SHARED, vm->memfd, 0);
    if (vm->mem == MAP_FAILED) {
        vm->mem = NULL;
        err("mmap %" PRIu64 " MiB of guest RAM: %s", c->ram / MIB, strerror(errno));
        goto fail;
    }
    if (build_memory(vm->mem, c, im, &vm->lay) < 0)
        goto fail;

    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .flags = 0,
        .guest_phys_addr = 0,
        .memory_size = c->ram,
        .userspace_addr = (uint64_t)(uintptr_t)vm->mem,
    };
    if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        err("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
        goto fail;
    }
    vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
    if (vm->vcpu < 0) {
        err("KVM_CREATE_VCPU: %s", strerror(errno));
        goto fail;
    }
    vm->run = mmap(NULL, (size_t)k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
    if (vm->run == MAP_FAILED) {
        vm->run = NULL;
        err("mmap kvm_run: %s", strerror(errno));
        goto fail;
    }

    /* the order measured on the PVM bench: SREGS, REGS, then CPUID */
    struct kvm_sregs sregs;
    if (ioctl(vm->vcpu, KVM_GET_SREGS, &sregs) < 0) {
        err("KVM_GET_SREGS: %s", strerror(errno));
        goto fail;
    }
    set_seg(&sregs.cs, NXIA_SEL_CODE, 11, 0, 1);
    set_seg(&sregs.ds, NXIA_SEL_DATA, 3, 1, 0);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    memset(&sregs.tr, 0, sizeof sregs.tr);
    sregs.tr.base = NXIA_TSS_GPA;
    sregs.tr.limit = 0x67;
    sregs.tr.selector = NXIA_SEL_TSS;
    sregs.tr.type = 11;
    sregs.tr.present = 1;
    memset(&sregs.ldt, 0, sizeof sregs.ldt);
    sregs.ldt.unusable = 1;
    sregs.gdt.base = NXIA_GDT_GPA;
    sregs.gdt.limit = 6 * 8 - 1;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = 0x80050033;
    sregs.cr3 = vm->lay.pml4;
    sregs.cr4 = 0x20;
    sregs.efer = 0xd01;
    if (ioctl(vm->vcpu, KVM_SET_SREGS, &sregs) < 0) {
        err("KVM_SET_SREGS: %s", strerror(errno));
        goto fail;
    }
    struct kvm_regs regs;
    memset(&regs, 0, sizeof regs);
    regs.rip = im->entry;
    regs.rsp = vm->lay.stack_top;
    regs.rdi = NXIA_BOOT_GPA;
    regs.rflags = 0x2;
    if (ioctl(vm->vcpu, KVM_SET_REGS, &regs) < 0) {
        err("KVM_SET_REGS: %s", strerror(errno));
        goto fail;
    }
    if (k->cpuid && ioctl(vm->vcpu, KVM_SET_CPUID2, k->cpuid) < 0)
        err("warning: KVM_SET_CPUID2: %s (continuing)", strerror(errno));
    return 0;
fail:
    vm_destroy(vm);
    return -1;
}

static volatile sig_atomic_t timed_out;
static struct kvm_run *volatile alarm_run;

static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
    if (alarm_run)
        alarm_run->immediate_exit = 1;
}

static void stop(struct result *r, enum reason why, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void stop(struct result *r, enum reason why, const char *fmt, ...)
{
    va_list ap;

    r->reason = why;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
}

/* Answer a host call: the floor has no host functions. Returns false to stop. */
static bool hostcall(struct vm *vm, uint32_t gpa, struct result *r)
{
    struct nxia_hostcall hc;

    if (gpa < PAGE || (uint64_t)gpa + sizeof hc > vm->ram) {
        stop(r, R_BAD_HOSTCALL, "host call block at 0x%" PRIx32 " is outside guest RAM", gpa);
        return false;
    }
    memcpy(&hc, vm->mem + gpa, sizeof hc);
    int32_t status = NXIA_HC_ENOENT;
    if (hc.magic != NXIA_HC_MAGIC || hc.version != NXIA_HC_VERSION || (gpa & 7))
        status = NXIA_HC_EINVAL;
    uint64_t zero = 0;
    memcpy(vm->mem + gpa + offsetof(struct nxia_hostcall, status), &status, sizeof status);
    memcpy(vm->mem + gpa + offsetof(struct nxia_hostcall, ret_len), &zero, sizeof zero);
    return true;
}

/* Handle one KVM_EXIT_IO. Returns false when the VM stops. */
static bool port_io(struct vm *vm, struct run_ctl *ctl, struct result *r)
{
    struct kvm_run *run = vm->run;
    uint16_t port = run->io.port;
    uint32_t size = run->io.size, count = run->io.count;
    uint64_t off = run->io.data_offset;

    if (off > (uint64_t)vm->run_size || (uint64_t)size * count > (uint64_t)vm->run_size - off) {
        stop(r, R_KVM_ERROR, "KVM_EXIT_IO data (offset %" PRIu64 ", %u x %u bytes) outside kvm_run", off, count, size);
        return false;
    }
    const uint8_t *data = (const uint8_t *)run + off;

    if (run->io.direction != KVM_EXIT_IO_OUT) {
        stop(r, R_BAD_PORT, "guest read from port 0x%x (%u bytes), which no device claims", port, size);
        return false;
    }
    if (port == NXIA_PORT_BENCH && size == 4) {
        r->bench += count;
        return true;
    }
    if (port == NXIA_PORT_DEBUGCON && size == 1) {
        if (ctl->console)
            fwrite(data, 1, count, ctl->console);
        return true;
    }
    if ((port == NXIA_PORT_EXIT || port == NXIA_PORT_CONSOLE || port == NXIA_PORT_HOSTCALL) &&
        size == 4 && count == 1) {
        uint32_t v;
        memcpy(&v, data, 4);
        if (port == NXIA_PORT_EXIT) {
            r->status = v;
            r->reason = R_EXIT;
            return false;
        }
        if (port == NXIA_PORT_CONSOLE) {
            if (v > NXIA_CONSOLE_CAP || NXIA_CONSOLE_GPA + (uint64_t)v > vm->ram) {
                stop(r, R_BAD_CONSOLE, "console flush of %" PRIu32 " bytes exceeds the %u-byte buffer",
                     v, NXIA_CONSOLE_CAP);
                return false;
            }
            if (ctl->console && v)
                fwrite(vm->mem + NXIA_CONSOLE_GPA, 1, v, ctl->console);
            return true;
        }
        return hostcall(vm, v, r);
    }
    uint64_t v = 0;
    memcpy(&v, data, size <= 8 ? size : 8);
    stop(r, R_BAD_PORT, "guest wrote 0x%" PRIx64 " to port 0x%x (%u bytes x %u), which no device claims",
         v, port, size, count);
    return false;
}

/* Run until the VM stops. */
static void vm_run(struct vm *vm, struct run_ctl *ctl, struct result *r)
{
    struct kvm_run *run = vm->run;
    uint64_t t_back = 0;
    bool first = true;

    memset(r, 0, sizeof *r);
    alarm_run = run;
    r->t_first = now_s();
    for (;;) {
        if (ctl->samples && !first && ctl->n < ctl->cap)
            ctl->samples[ctl->n++] = (uint32_t)(now_ns() - t_back);
        first = false;
        int rc = ioctl(vm->vcpu, KVM_RUN, 0);
        if (ctl->samples)
            t_back = now_ns();
        if (rc < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                if (timed_out) {
                    stop(r, R_TIMEOUT, "timed out");
                    break;
                }
                continue;
            }
            stop(r, R_KVM_ERROR, "KVM_RUN: %s", strerror(errno));
            break;
        }
        r->exits++;
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            if (port_io(vm, ctl, r))
                continue;
            break;
        case KVM_EXIT_MMIO:
            stop(r, R_BAD_MMIO, "guest %s %u bytes at 0x%" PRIx64 ", an address no device claims",
                 run->mmio.is_write ? "wrote" : "read", run->mmio.len, (uint64_t)run->mmio.phys_addr);
            break;
        case KVM_EXIT_HLT:
            stop(r, R_HALT, "guest halted without an exit status");
            break;
        case KVM_EXIT_SHUTDOWN:
            stop(r, R_SHUTDOWN, "guest shut down (triple fault, or an exception under PVM)");
            break;
        case KVM_EXIT_FAIL_ENTRY:
            stop(r, R_FAIL_ENTRY, "VM entry failed: hardware reason 0x%llx",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            stop(r, R_INTERNAL_ERROR, "KVM internal error, suberror %u", run->internal.suberror);
            break;
        case KVM_EXIT_INTR:
            if (timed_out) {
                stop(r, R_TIMEOUT, "timed out");
                break;
            }
            continue;
        default:
            stop(r, R_UNEXPECTED_EXIT, "unexpected KVM exit reason %u", run->exit_reason);
            break;
        }
        break;
    }
    r->t_stop = now_s();
    alarm_run = NULL;
    if (ctl->console)
        fflush(ctl->console);
}

/* ---- command line ---------------------------------------------------------- */

static int parse_u64(const char *s, const char *what, uint64_t *out)
{
    char *end;

    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-') {
        err("%s: '%s' is not a number", what, s);
        return -1;
    }
    *out = v;
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s run IMAGE [--ram MIB] [--arg N] [--input FILE] [--timeout SEC]\n"
            "       %s exits IMAGE N [--ram MIB] [--samples FILE]\n"
            "       %s sandbox IMAGE RUNS [--ram MIB] [--samples FILE]\n"
            "       %s tsc\n"
            "       %s layout IMAGE [--ram MIB] [--arg N] [--input FILE] [--dump FILE]\n",
            prog, prog, prog, prog, prog);
}

struct opts {
    uint64_t ram_mib, arg, timeout;
    const char *input;
    const char *dump;                /* layout: write guest RAM here */
    const char *samples;             /* exits, sandbox: write the raw samples here */
};

/* Parse the options after the positional arguments. */
static int parse_opts(int argc, char **argv, int first, struct opts *o, bool allow_arg)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            err("%s: missing value or unknown option", a);
            return -1;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--ram")) {
            if (parse_u64(v, "--ram", &o->ram_mib) < 0)
                return -1;
            if (o->ram_mib > 3072 || !ram_ok(o->ram_mib * MIB)) {
                err("--ram %s: give a multiple of 2 MiB from 2 to 3072", v);
                return -1;
            }
        } else if (allow_arg && !strcmp(a, "--arg")) {
            if (parse_u64(v, "--arg", &o->arg) < 0)
                return -1;
        } else if (allow_arg && !strcmp(a, "--input")) {
            o->input = v;
        } else if (allow_arg && !strcmp(a, "--dump")) {
            o->dump = v;
        } else if (!allow_arg && !strcmp(a, "--samples")) {
            o->samples = v;
        } else if (allow_arg && !strcmp(a, "--timeout")) {
            if (parse_u64(v, "--timeout", &o->timeout) < 0)
                return -1;
        } else {
            err("unknown option %s", a);
            return -1;
        }
    }
    return 0;
}

/* Write n samples as little-endian u32 (x86 is little-endian) to path, when one is given. */
static int write_samples(const char *path, const uint32_t *samples, size_t n)
{
    FILE *f;

    if (!path)
        return 0;
    if (!(f = fopen(path, "wb")) || fwrite(samples, sizeof *samples, n, f) != n || fclose(f) != 0) {
        err("%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void report_stop(const struct result *r)
{
    if (r->reason != R_EXIT && r->msg[0])
        err("%s", r->msg);
}

/* Write guest RAM to a (sparse) file: for tests that run the image in an emulator. */
static int dump_ram(const char *path, const uint8_t *mem, uint64_t ram)
{
    static const uint8_t zero[PAGE];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0 || ftruncate(fd, (off_t)ram) < 0) {
        err("%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    for (uint64_t a = 0; a < ram; a += PAGE) {
        if (!memcmp(mem + a, zero, PAGE))
            continue;
        if (pwrite(fd, mem + a, PAGE, (off_t)a) != (ssize_t)PAGE) {
            err("%s: write: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return close(fd);
}

static int cmd_run(const char *path, const struct opts *o, bool layout_only)
{
    struct image im;
    struct config c = { .ram = o->ram_mib * MIB, .arg = o->arg, .output_cap = 64 * KIB };
    uint8_t *input = NULL;
    size_t input_len = 0;

    if (image_load(&im, path) < 0)
        return EXIT_VMM_ERROR;
    if (o->input) {
        if (read_file(o->input, &input, &input_len) < 0)
            return EXIT_VMM_ERROR;
        c.input = input;
        c.input_len = input_len;
    }

    if (layout_only) {
        c.pvm = false;
        uint8_t *mem = mmap(NULL, c.ram, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        struct layout l;
        if (mem == MAP_FAILED) {
            err("mmap: %s", strerror(errno));
            return 1;
        }
        if (build_memory(mem, &c, &im, &l) < 0 || layout_check(mem, &c, &im, &l) < 0)
            return 1;
        printf("floor layout ram=%" PRIu64 " entry=0x%" PRIx64 " image=0x%" PRIx64 "-0x%" PRIx64
               " input=0x%" PRIx64 " output=0x%" PRIx64 " heap=0x%" PRIx64 "+0x%" PRIx64
               " stack_top=0x%" PRIx64 " pt=0x%" PRIx64 "+%" PRIu64 "pages\n",
               c.ram, im.entry, im.lo, im.hi, l.input_gpa, l.output_gpa, l.heap_gpa, l.heap_size,
               l.stack_top, l.pt_base, l.pt_pages);
        if (o->dump && dump_ram(o->dump, mem, c.ram) < 0)
            return 1;
        munmap(mem, c.ram);
        return 0;
    }

    struct kvm k;
    struct vm vm;
    struct result r;
    struct run_ctl ctl = { .console = stdout };

    if (kvm_open(&k) < 0)
        return EXIT_VMM_ERROR;
    c.pvm = k.pvm;
    if (vm_create(&vm, &k, &c, &im) < 0)
        return EXIT_VMM_ERROR;
    if (o->timeout) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;    /* no SA_RESTART: KVM_RUN returns EINTR */
        sigaction(SIGALRM, &sa, NULL);
        alarm((unsigned)o->timeout);
    }
    vm_run(&vm, &ctl, &r);
    alarm(0);
    report_stop(&r);
    if (r.reason == R_EXIT)
        fprintf(stderr, "floor run status=%" PRIu32 " reason=exit\n", r.status);
    else
        fprintf(stderr, "floor run status=-1 reason=%s\n", reason_names[r.reason]);
    vm_destroy(&vm);
    return r.reason == R_EXIT && r.status <= 255 ? (int)r.status : EXIT_NO_STATUS;
}

static int cmd_exits(const char *path, uint64_t n, const struct opts *o)
{
    struct image im;
    struct config c = { .ram = o->ram_mib * MIB, .arg = n, .output_cap = 64 * KIB };
    struct kvm k;
    struct vm vm;
    struct result r;
    struct run_ctl ctl = { .console = NULL };

    if (image_load(&im, path) < 0 || kvm_open(&k) < 0)
        return 1;
    c.pvm = k.pvm;

    ctl.cap = n + 16 < MAX_SAMPLES ? (size_t)n + 16 : MAX_SAMPLES;
    ctl.samples = malloc(ctl.cap * sizeof *ctl.samples);
    if (!ctl.samples) {
        err("out of memory for %zu samples", ctl.cap);
        return 1;
    }
    memset(ctl.samples, 0, ctl.cap * sizeof *ctl.samples); /* fault the pages in now */

    if (vm_create(&vm, &k, &c, &im) < 0)
        return 1;
    vm_run(&vm, &ctl, &r);
    /* the guest's output: {u64 exits, u64 TSC ticks of its loop} */
    struct nxia_boot b;
    uint64_t out[2] = { 0, 0 };
    memcpy(&b, vm.mem + NXIA_BOOT_GPA, sizeof b);
    if (b.output_len == sizeof out && b.output_gpa == vm.lay.output_gpa)
        memcpy(out, vm.mem + b.output_gpa, sizeof out);
    uint64_t guest_ticks = out[0] == n ? out[1] : 0;
    vm_destroy(&vm);
    if (r.reason != R_EXIT) {
        report_stop(&r);
        err("%s: stopped with reason %s, expected an exit", path, reason_names[r.reason]);
        return 1;
    }
    if (r.status != 0 || r.bench != n) {
        err("%s: exit status %" PRIu32 " after %" PRIu64 " benchmark exits; expected status 0 after %" PRIu64
            " (is this the 'exits' guest?)", path, r.status, r.bench, n);
        return 1;
    }
    if (write_samples(o->samples, ctl.samples, ctl.n) < 0)
        return 1;
    printf("floor exits n=%" PRIu64 " guest_ticks=%" PRIu64 " samples=%zu\n", r.bench, guest_ticks, ctl.n);
    free(ctl.samples);
    return 0;
}

static int cmd_sandbox(const char *path, uint64_t runs, const struct opts *o)
{
    struct image im;
    struct config c = { .ram = o->ram_mib * MIB, .arg = o->arg, .output_cap = 64 * KIB };
    struct kvm k;
    struct run_ctl ctl = { .console = NULL };

    if (runs == 0 || runs > 100000000) {
        err("RUNS must be from 1 to 100000000");
        return 1;
    }
    if (image_load(&im, path) < 0 || kvm_open(&k) < 0)
        return 1;
    c.pvm = k.pvm;
    uint32_t *ns = malloc(runs * sizeof *ns);
    if (!ns) {
        err("out of memory");
        return 1;
    }
    double t_all = now_s();
    for (uint64_t i = 0; i < runs; i++) {
        struct vm vm;
        struct result r;
        uint64_t t0 = now_ns();
        if (vm_create(&vm, &k, &c, &im) < 0)
            return 1;
        vm_run(&vm, &ctl, &r);
        vm_destroy(&vm);
        uint64_t took = now_ns() - t0;
        ns[i] = took > UINT32_MAX ? UINT32_MAX : (uint32_t)took;
        if (r.reason != R_EXIT) {
            report_stop(&r);
            err("%s: run %" PRIu64 " stopped with reason %s, expected an exit", path, i, reason_names[r.reason]);
            return 1;
        }
    }
    double total = now_s() - t_all;
    if (write_samples(o->samples, ns, runs) < 0)
        return 1;
    printf("floor sandbox runs=%" PRIu64 " seconds=%.6f samples=%" PRIu64 "\n", runs, total, runs);
    free(ns);
    return 0;
}

/* The TSC's rate against CLOCK_MONOTONIC over 200 ms: what converts a guest's TSC ticks to time. */
static int cmd_tsc(void)
{
    struct timespec pause = { 0, 200 * 1000 * 1000 };
    uint64_t n0 = now_ns(), t0 = __builtin_ia32_rdtsc();

    while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
        ;
    uint64_t t1 = __builtin_ia32_rdtsc(), n1 = now_ns();
    printf("floor tsc hz=%.0f\n", (double)(t1 - t0) * 1e9 / (double)(n1 - n0));
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = { .ram_mib = 16 };
    uint64_t n;

    if (argc == 2 && !strcmp(argv[1], "tsc"))
        return cmd_tsc();
    if (argc < 3) {
        usage();
        return EXIT_VMM_ERROR;
    }
    const char *cmd = argv[1], *image = argv[2];
    if (!strcmp(cmd, "run") || !strcmp(cmd, "layout")) {
        if (parse_opts(argc, argv, 3, &o, true) < 0)
            return EXIT_VMM_ERROR;
        int rc = cmd_run(image, &o, cmd[0] == 'l');
        return cmd[0] == 'l' && rc ? 1 : rc;
    }
    if (!strcmp(cmd, "exits") || !strcmp(cmd, "sandbox")) {
        if (argc < 4) {
            usage();
            return 1;
        }
        if (parse_u64(argv[3], cmd[0] == 'e' ? "N" : "RUNS", &n) < 0 ||
            parse_opts(argc, argv, 4, &o, false) < 0)
            return 1;
        return cmd[0] == 'e' ? cmd_exits(image, n, &o) : cmd_sandbox(image, n, &o);
    }
    usage();
    return EXIT_VMM_ERROR;
}
