/*
 * nxia_portal.h - Portal shared memory for guests and host programs:
 * the boot block's portal table (docs/guest-abi.md, "Portals") and the
 * structures of docs/portal-abi.md (block arena, SPSC ring, MPMC ring).
 *
 * Everything in shared memory is untrusted: attach validates a header once
 * and keeps the geometry in the handle; indices and lengths written by a
 * peer are checked before use. Host programs (the vector test) include this
 * too, so only the portal table helpers need NXIA_GUEST.
 */
#ifndef NXIA_PORTAL_H
#define NXIA_PORTAL_H

#include <stddef.h>
#include <stdint.h>

/* ---- portal table (boot block + 384) ----------------------------------- */

#define NXIA_PORTAL_TABLE_GPA  (0x1000u + 384u)
#define NXIA_PORTAL_MAX        16u
#define NXIA_PORTAL_NAME       16u
#define NXIA_PORTAL_MAPPED     0x1u  /* flags: the region is mapped now */
#define NXIA_PORTAL_WRITABLE   0x2u  /* flags: guest writes allowed     */
#define NXIA_PORTAL_WINDOW     0xc0000000u
#define NXIA_PORTAL_WINDOW_SIZE 0x10000000u

struct nxia_portal {
    uint64_t gpa;           /*  0 where the region is                    */
    uint64_t size;          /*  8 its bytes                              */
    uint64_t doorbell;      /* 16 write any u32 here to ring the host    */
    uint32_t flags;         /* 24 NXIA_PORTAL_*; written last by the VMM */
    uint32_t name_hash;     /* 28 FNV-1a 32 of the name                  */
    char     name[16];      /* 32 NUL-padded                             */
};

struct nxia_portal_table {
    uint32_t count;         /* entries in use (<= 16) */
    uint32_t reserved;
    struct nxia_portal entry[16];
};

_Static_assert(offsetof(struct nxia_portal, doorbell) == 16, "portal.doorbell");
_Static_assert(offsetof(struct nxia_portal, flags) == 24, "portal.flags");
_Static_assert(offsetof(struct nxia_portal, name) == 32, "portal.name");
_Static_assert(sizeof(struct nxia_portal) == 48, "portal size");
_Static_assert(offsetof(struct nxia_portal_table, entry) == 8, "portal table entry");

/* ---- errors -------------------------------------------------------------- */

#define NXIA_PORTAL_OK        0
#define NXIA_PORTAL_AGAIN     (-1)  /* ring full (offer) or empty (poll)        */
#define NXIA_PORTAL_ECORRUPT  (-2)  /* a header, index or length is impossible */
#define NXIA_PORTAL_E2BIG     (-3)  /* message larger than the ring or buffer  */
#define NXIA_PORTAL_ESTALE    (-4)  /* reference stale, forged or out of range  */
#define NXIA_PORTAL_ENOMEM    (-5)  /* arena full                               */

/* ---- block arena ("NXPA") ------------------------------------------------ */

#define NXIA_ARENA_MAGIC      0x4150584eu
#define NXIA_ARENA_VERSION    1u

struct nxia_ref {
    uint64_t offset;        /* from the start of the arena's region */
    uint64_t length;
    uint32_t generation;
};

struct nxia_arena {
    uint8_t *base;
    uint32_t block_size;
    uint32_t block_count;
    uint64_t bitmap;        /* offsets from base */
    uint64_t data;
    uint64_t end;
};

int nxia_arena_attach(struct nxia_arena *a, void *mem, uint64_t len);
int nxia_arena_alloc(struct nxia_arena *a, uint64_t length, struct nxia_ref *out);
int nxia_arena_free(struct nxia_arena *a, const struct nxia_ref *ref);
/* The block's bytes, or NULL (with *err set) after the checks of portal-abi.md. */
void *nxia_arena_deref(struct nxia_arena *a, const struct nxia_ref *ref, int *err);

/* ---- SPSC ring ("NXPR") ---------------------------------------------------- */

#define NXIA_SPSC_MAGIC       0x5250584eu
#define NXIA_SPSC_VERSION     1u
#define NXIA_SPSC_DATA        192u

struct nxia_spsc {
    uint8_t *base;
    uint32_t capacity;
    uint64_t producer;      /* own indices, never re-read from shared memory */
    uint64_t consumer;
};

int nxia_spsc_format(struct nxia_spsc *r, void *mem, uint64_t len, uint32_t capacity);
int nxia_spsc_attach(struct nxia_spsc *r, void *mem, uint64_t len);
/* 0, NXIA_PORTAL_AGAIN when full, or an error. */
int nxia_spsc_offer(struct nxia_spsc *r, const void *msg, uint32_t len);
/* The message length, NXIA_PORTAL_AGAIN when empty, or an error. */
int64_t nxia_spsc_poll(struct nxia_spsc *r, void *into, uint32_t cap);

/* ---- MPMC ring ("NXPM") ---------------------------------------------------- */

#define NXIA_MPMC_MAGIC       0x4d50584eu
#define NXIA_MPMC_VERSION     1u
#define NXIA_MPMC_DATA        192u
#define NXIA_MPMC_SLOT_HEADER 16u

struct nxia_mpmc {
    uint8_t *base;
    uint32_t slots;
    uint32_t slot_size;
};

int nxia_mpmc_format(struct nxia_mpmc *r, void *mem, uint64_t len, uint32_t slots, uint32_t slot_size);
int nxia_mpmc_attach(struct nxia_mpmc *r, void *mem, uint64_t len);
int nxia_mpmc_offer(struct nxia_mpmc *r, const void *msg, uint32_t len);
int64_t nxia_mpmc_poll(struct nxia_mpmc *r, void *into, uint32_t cap);

/* ---- guests: find a region, ring its doorbell ------------------------------ */

#ifdef NXIA_GUEST
/* The mapped region called `name`, or NULL. Re-read it to see later (un)mapping. */
const struct nxia_portal *nxia_portal_find(const char *name);

static inline void nxia_portal_ring(const struct nxia_portal *p)
{
    *(volatile uint32_t *)(uintptr_t)p->doorbell = 1;
}
#endif

#endif /* NXIA_PORTAL_H */
