/*
 * portal.c - the C side of docs/portal-abi.md (same layouts and memory
 * orders as org.nxia.portal.internal), and the guest's portal table lookup.
 */
#include "nxia_portal.h"

#ifdef NXIA_GUEST
#include "nxia.h"
#else
#include <string.h>
#endif

#define LD_ACQ64(p)       __atomic_load_n((uint64_t *)(p), __ATOMIC_ACQUIRE)
#define ST_REL64(p, v)    __atomic_store_n((uint64_t *)(p), (v), __ATOMIC_RELEASE)
#define LD_ACQ32(p)       __atomic_load_n((uint32_t *)(p), __ATOMIC_ACQUIRE)
#define ST_REL32(p, v)    __atomic_store_n((uint32_t *)(p), (v), __ATOMIC_RELEASE)
#define LD32(p)           __atomic_load_n((uint32_t *)(p), __ATOMIC_RELAXED)
#define ST32(p, v)        __atomic_store_n((uint32_t *)(p), (v), __ATOMIC_RELAXED)
#define ST64(p, v)        __atomic_store_n((uint64_t *)(p), (v), __ATOMIC_RELAXED)

static int pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static uint64_t align64(uint64_t v)
{
    return (v + 63) & ~(uint64_t)63;
}

/* ---- block arena ------------------------------------------------------------ */

static uint64_t arena_bitmap(uint64_t n)
{
    return align64(64 + 4 * n);
}

static uint64_t arena_data(uint64_t n)
{
    return align64(arena_bitmap(n) + 8 * ((n + 63) / 64));
}

int nxia_arena_attach(struct nxia_arena *a, void *mem, uint64_t len)
{
    uint8_t *b = mem;
    if (((uintptr_t)mem & 7) != 0 || len < 64 || LD_ACQ32(b) != NXIA_ARENA_MAGIC || LD32(b + 4) != NXIA_ARENA_VERSION)
        return NXIA_PORTAL_ECORRUPT;
    uint64_t bs = LD32(b + 8), n = LD32(b + 12);
    if (!pow2(bs) || bs < 64 || bs > (1u << 30) || n == 0 || n > 0x7fffffffu)
        return NXIA_PORTAL_ECORRUPT;
    if (arena_data(n) + bs * n > len)
        return NXIA_PORTAL_ECORRUPT;
    a->base = b;
    a->block_size = (uint32_t)bs;
    a->block_count = (uint32_t)n;
    a->bitmap = arena_bitmap(n);
    a->data = arena_data(n);
    a->end = a->data + bs * n;
    return NXIA_PORTAL_OK;
}

static uint64_t valid_mask(const struct nxia_arena *a, uint64_t word)
{
    uint64_t last = (a->block_count + 63) / 64 - 1;
    uint32_t spare = a->block_count & 63;
    return word == last && spare != 0 ? ~(~(uint64_t)0 << spare) : ~(uint64_t)0;
}

int nxia_arena_alloc(struct nxia_arena *a, uint64_t length, struct nxia_ref *out)
{
    if (length == 0 || length > a->block_size)
        return NXIA_PORTAL_E2BIG;
    uint64_t words = (a->block_count + 63) / 64;
    for (uint64_t w = 0; w < words; w++) {
        uint64_t *word = (uint64_t *)(a->base + a->bitmap + 8 * w);
        uint64_t cur = __atomic_load_n(word, __ATOMIC_SEQ_CST), free_bits;
        while ((free_bits = ~cur & valid_mask(a, w)) != 0) {
            uint64_t bit = free_bits & -free_bits;
            if (__atomic_compare_exchange_n(word, &cur, cur | bit, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
                uint64_t i = w * 64 + (uint64_t)__builtin_ctzll(bit);
                out->offset = a->data + i * a->block_size;
                out->length = length;
                out->generation = LD_ACQ32(a->base + 64 + 4 * i);
                return NXIA_PORTAL_OK;
            }
        }
    }
    return NXIA_PORTAL_ENOMEM;
}

/* Checks 1-5 of portal-abi.md "Deref"; returns the block index or -1. */
static int64_t arena_check(const struct nxia_arena *a, const struct nxia_ref *ref)
{
    if (ref->offset < a->data || ref->offset >= a->end)
        return -1;
    uint64_t rel = ref->offset - a->data;
    if ((rel & (a->block_size - 1)) != 0 || ref->length == 0 || ref->length > a->block_size)
        return -1;
    uint64_t i = rel / a->block_size;
    if ((LD_ACQ64(a->base + a->bitmap + 8 * (i / 64)) & ((uint64_t)1 << (i & 63))) == 0)
        return -1;
    if (LD_ACQ32(a->base + 64 + 4 * i) != ref->generation)
        return -1;
    return (int64_t)i;
}

void *nxia_arena_deref(struct nxia_arena *a, const struct nxia_ref *ref, int *err)
{
    if (arena_check(a, ref) < 0) {
        *err = NXIA_PORTAL_ESTALE;
        return NULL;
    }
    *err = NXIA_PORTAL_OK;
    return a->base + ref->offset;
}

int nxia_arena_free(struct nxia_arena *a, const struct nxia_ref *ref)
{
    int64_t i = arena_check(a, ref);
    if (i < 0)
        return NXIA_PORTAL_ESTALE;
    uint32_t gen = ref->generation;
    if (!__atomic_compare_exchange_n((uint32_t *)(a->base + 64 + 4 * i), &gen, ref->generation + 1, 0,
                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        return NXIA_PORTAL_ESTALE;
    uint64_t *word = (uint64_t *)(a->base + a->bitmap + 8 * ((uint64_t)i / 64));
    uint64_t bit = (uint64_t)1 << (i & 63);
    __atomic_fetch_and(word, ~bit, __ATOMIC_SEQ_CST);
    return NXIA_PORTAL_OK;
}

/* ---- SPSC ring ---------------------------------------------------------------- */

static int spsc_capacity_ok(uint64_t c)
{
    return pow2(c) && c >= 64 && c <= (1u << 30);
}

int nxia_spsc_format(struct nxia_spsc *r, void *mem, uint64_t len, uint32_t capacity)
{
    uint8_t *b = mem;
    if (((uintptr_t)mem & 7) != 0 || !spsc_capacity_ok(capacity) || len < NXIA_SPSC_DATA + (uint64_t)capacity)
        return NXIA_PORTAL_ECORRUPT;
    memset(b, 0, NXIA_SPSC_DATA);
    ST32(b + 4, NXIA_SPSC_VERSION);
    ST32(b + 8, capacity);
    ST_REL32(b, NXIA_SPSC_MAGIC);
    r->base = b;
    r->capacity = capacity;
    r->producer = r->consumer = 0;
    return NXIA_PORTAL_OK;
}

int nxia_spsc_attach(struct nxia_spsc *r, void *mem, uint64_t len)
{
    uint8_t *b = mem;
    if (((uintptr_t)mem & 7) != 0 || len < NXIA_SPSC_DATA || LD_ACQ32(b) != NXIA_SPSC_MAGIC
        || LD32(b + 4) != NXIA_SPSC_VERSION)
        return NXIA_PORTAL_ECORRUPT;
    uint32_t c = LD32(b + 8);
    if (!spsc_capacity_ok(c) || len < NXIA_SPSC_DATA + (uint64_t)c)
        return NXIA_PORTAL_ECORRUPT;
    uint64_t p = LD_ACQ64(b + 64), q = LD_ACQ64(b + 128);
    if (((p | q) & 7) != 0 || p - q > c)
        return NXIA_PORTAL_ECORRUPT;
    r->base = b;
    r->capacity = c;
    r->producer = p;
    r->consumer = q;
    return NXIA_PORTAL_OK;
}

int nxia_spsc_offer(struct nxia_spsc *r, const void *msg, uint32_t len)
{
    uint64_t c = r->capacity;
    if (len > c - 4)
        return NXIA_PORTAL_E2BIG;
    uint64_t rec = (4 + (uint64_t)len + 7) & ~(uint64_t)7;
    uint64_t used = r->producer - LD_ACQ64(r->base + 128);
    if (used > c)
        return NXIA_PORTAL_ECORRUPT;
    uint64_t free_bytes = c - used, pos = r->producer & (c - 1), tail = c - pos;
    uint8_t *data = r->base + NXIA_SPSC_DATA;
    if (rec > tail) {
        if (free_bytes < tail)
            return NXIA_PORTAL_AGAIN;
        ST32(data + pos, 0xffffffffu);
        r->producer += tail;
        ST_REL64(r->base + 64, r->producer);
        free_bytes -= tail;
        pos = 0;
    }
    if (rec > free_bytes)
        return NXIA_PORTAL_AGAIN;
    ST32(data + pos, len);
    memcpy(data + pos + 4, msg, len);
    r->producer += rec;
    ST_REL64(r->base + 64, r->producer);
    return NXIA_PORTAL_OK;
}

int64_t nxia_spsc_poll(struct nxia_spsc *r, void *into, uint32_t cap)
{
    uint64_t c = r->capacity;
    uint64_t avail = LD_ACQ64(r->base + 64) - r->consumer;
    uint8_t *data = r->base + NXIA_SPSC_DATA;
    if (avail > c)
        return NXIA_PORTAL_ECORRUPT;
    while (avail != 0) {
        uint64_t pos = r->consumer & (c - 1), tail = c - pos;
        uint32_t raw = LD32(data + pos);
        if (raw == 0xffffffffu) {
            if (tail > avail)
                return NXIA_PORTAL_ECORRUPT;
            r->consumer += tail;
            ST_REL64(r->base + 128, r->consumer);
            avail -= tail;
            continue;
        }
        uint64_t rec = (4 + (uint64_t)raw + 7) & ~(uint64_t)7;
        if (raw > c - 4 || rec > tail || rec > avail)
            return NXIA_PORTAL_ECORRUPT;
        if (raw > cap)
            return NXIA_PORTAL_E2BIG;
        memcpy(into, data + pos + 4, raw);
        r->consumer += rec;
        ST_REL64(r->base + 128, r->consumer);
        return raw;
    }
    return NXIA_PORTAL_AGAIN;
}

/* ---- MPMC ring (Vyukov bounded queue) ------------------------------------------ */

static int mpmc_geometry_ok(uint64_t slots, uint64_t slot_size)
{
    return pow2(slots) && slots >= 2 && slots <= (1u << 20)
        && slot_size >= 64 && slot_size <= (1u << 20) && slot_size % 64 == 0;
}

int nxia_mpmc_format(struct nxia_mpmc *r, void *mem, uint64_t len, uint32_t slots, uint32_t slot_size)
{
    uint8_t *b = mem;
    if (((uintptr_t)mem & 7) != 0 || !mpmc_geometry_ok(slots, slot_size)
        || len < NXIA_MPMC_DATA + (uint64_t)slots * slot_size)
        return NXIA_PORTAL_ECORRUPT;
    memset(b, 0, NXIA_MPMC_DATA + (uint64_t)slots * slot_size);
    for (uint64_t i = 0; i < slots; i++)
        ST64(b + NXIA_MPMC_DATA + i * slot_size, i);
    ST32(b + 4, NXIA_MPMC_VERSION);
    ST32(b + 8, slots);
    ST32(b + 12, slot_size);
    ST_REL32(b, NXIA_MPMC_MAGIC);
    r->base = b;
    r->slots = slots;
    r->slot_size = slot_size;
    return NXIA_PORTAL_OK;
}

int nxia_mpmc_attach(struct nxia_mpmc *r, void *mem, uint64_t len)
{
    uint8_t *b = mem;
    if (((uintptr_t)mem & 7) != 0 || len < NXIA_MPMC_DATA || LD_ACQ32(b) != NXIA_MPMC_MAGIC
        || LD32(b + 4) != NXIA_MPMC_VERSION)
        return NXIA_PORTAL_ECORRUPT;
    uint32_t slots = LD32(b + 8), slot_size = LD32(b + 12);
    if (!mpmc_geometry_ok(slots, slot_size) || len < NXIA_MPMC_DATA + (uint64_t)slots * slot_size)
        return NXIA_PORTAL_ECORRUPT;
    r->base = b;
    r->slots = slots;
    r->slot_size = slot_size;
    return NXIA_PORTAL_OK;
}

#define MPMC_MAX_RETRIES (1u << 20)

int nxia_mpmc_offer(struct nxia_mpmc *r, const void *msg, uint32_t len)
{
    if (len > r->slot_size - NXIA_MPMC_SLOT_HEADER)
        return NXIA_PORTAL_E2BIG;
    uint64_t *enq = (uint64_t *)(r->base + 64);
    uint64_t pos = LD_ACQ64(enq);
    for (uint32_t retry = 0; retry < MPMC_MAX_RETRIES; retry++) {
        uint8_t *slot = r->base + NXIA_MPMC_DATA + (pos & (r->slots - 1)) * r->slot_size;
        int64_t dif = (int64_t)(LD_ACQ64(slot) - pos);
        if (dif == 0) {
            if (__atomic_compare_exchange_n(enq, &pos, pos + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
                ST32(slot + 8, len);
                memcpy(slot + NXIA_MPMC_SLOT_HEADER, msg, len);
                ST_REL64(slot, pos + 1);
                return NXIA_PORTAL_OK;
            }
        } else if (dif < 0) {
            return NXIA_PORTAL_AGAIN;
        } else {
            pos = LD_ACQ64(enq);
        }
    }
    return NXIA_PORTAL_ECORRUPT;
}

int64_t nxia_mpmc_poll(struct nxia_mpmc *r, void *into, uint32_t cap)
{
    uint64_t *deq = (uint64_t *)(r->base + 128);
    uint64_t pos = LD_ACQ64(deq);
    for (uint32_t retry = 0; retry < MPMC_MAX_RETRIES; retry++) {
        uint8_t *slot = r->base + NXIA_MPMC_DATA + (pos & (r->slots - 1)) * r->slot_size;
        int64_t dif = (int64_t)(LD_ACQ64(slot) - (pos + 1));
        if (dif == 0) {
            uint32_t len = LD32(slot + 8); /* before the claim: see portal-abi.md */
            if (len > r->slot_size - NXIA_MPMC_SLOT_HEADER)
                return NXIA_PORTAL_ECORRUPT;
            if (len > cap)
                return NXIA_PORTAL_E2BIG;
            if (__atomic_compare_exchange_n(deq, &pos, pos + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
                memcpy(into, slot + NXIA_MPMC_SLOT_HEADER, len);
                ST_REL64(slot, pos + r->slots);
                return len;
            }
        } else if (dif < 0) {
            return NXIA_PORTAL_AGAIN;
        } else {
            pos = LD_ACQ64(deq);
        }
    }
    return NXIA_PORTAL_ECORRUPT;
}

/* ---- portal table ------------------------------------------------------------------ */

#ifdef NXIA_GUEST
const struct nxia_portal *nxia_portal_find(const char *name)
{
    const struct nxia_portal_table *t = (const struct nxia_portal_table *)(uintptr_t)NXIA_PORTAL_TABLE_GPA;
    uint32_t n = __atomic_load_n(&t->count, __ATOMIC_ACQUIRE);
    size_t len = strlen(name);
    if (n > NXIA_PORTAL_MAX)
        n = NXIA_PORTAL_MAX;
    if (len >= NXIA_PORTAL_NAME)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        const struct nxia_portal *p = &t->entry[i];
        if ((__atomic_load_n(&p->flags, __ATOMIC_ACQUIRE) & NXIA_PORTAL_MAPPED) != 0
            && memcmp(p->name, name, len) == 0 && p->name[len] == '\0')
            return p;
    }
    return NULL;
}
#endif
