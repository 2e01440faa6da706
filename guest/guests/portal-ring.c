/*
 * portal-ring - moves checksummed messages through Portal rings in the
 * region named by the input (the first one in the boot block's portal
 * table when there is no input). The host formats the
 * region: ring 0 at offset 0, ring 1 at offset size/2, each an SPSC or an
 * MPMC ring (told apart by magic). boot->arg selects the mode (low byte)
 * and a count (arg >> 8):
 *
 *   1 echo      copy every message from ring 0 to ring 1 until an empty one
 *               (copied too); ring the doorbell whenever ring 0 runs dry,
 *               unless count is 1 (the host polls)
 *   2 produce   send count messages into ring 0, then an empty one
 *   3 consume   take messages from ring 0 until an empty one
 *   4 write     store to the region (a read-only grant must stop the VM)
 *   5 arena     deref the refs in the input against the arena at offset 0
 *   6 roundtrip send count messages into ring 0 and check count echoes
 *               from ring 1, then send an empty one
 *   7 ping      as 6, but one message in flight at a time (latency); the
 *               output also carries the loop's TSC ticks, then each round
 *               trip's ticks (u32, as many as fit) for percentiles
 *
 * Message i is 8 + (i * 7) % 57 bytes: i (u64), then bytes (i * 31 + j * 7).
 * Modes 2, 3 and 6 write {messages, FNV-1a 64 of all their bytes} to the
 * output; mode 5 writes one s64 per ref (the first 8 bytes of the block,
 * or the error). Exit status 0 means success.
 */
#include "nxia.h"
#include "nxia_portal.h"

struct ring {
    int mpmc;
    struct nxia_spsc s;
    struct nxia_mpmc m;
};

static int attach(struct ring *r, uint8_t *mem, uint64_t len)
{
    r->mpmc = *(volatile uint32_t *)mem == NXIA_MPMC_MAGIC;
    return r->mpmc ? nxia_mpmc_attach(&r->m, mem, len) : nxia_spsc_attach(&r->s, mem, len);
}

static int offer(struct ring *r, const void *msg, uint32_t len)
{
    return r->mpmc ? nxia_mpmc_offer(&r->m, msg, len) : nxia_spsc_offer(&r->s, msg, len);
}

static int64_t poll_ring(struct ring *r, void *into, uint32_t cap)
{
    return r->mpmc ? nxia_mpmc_poll(&r->m, into, cap) : nxia_spsc_poll(&r->s, into, cap);
}

static uint32_t make_message(uint64_t i, uint8_t *m)
{
    uint32_t len = 8 + (uint32_t)((i * 7) % 57);
    memcpy(m, &i, 8);
    for (uint32_t j = 8; j < len; j++)
        m[j] = (uint8_t)(i * 31 + j * 7);
    return len;
}

static uint64_t fnv(uint64_t h, const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

#define FNV_START 0xcbf29ce484222325ull

static _Noreturn void fail(const char *what, int64_t code)
{
    nxia_puts("portal-ring: ");
    nxia_puts(what);
    nxia_puts(" ");
    nxia_put_i64(code);
    nxia_putc('\n');
    nxia_exit(2);
}

static void put_result(const struct nxia_boot *boot, uint64_t count, uint64_t sum)
{
    uint64_t *out = (uint64_t *)(uintptr_t)boot->output_gpa;
    if (boot->output_cap >= 16) {
        out[0] = count;
        out[1] = sum;
        ((struct nxia_boot *)boot)->output_len = 16;
    }
}

static void send(struct ring *r, const uint8_t *m, uint32_t len)
{
    int rc;
    while ((rc = offer(r, m, len)) == NXIA_PORTAL_AGAIN)
        __builtin_ia32_pause();
    if (rc != 0)
        fail("offer failed:", rc);
}

int main(const struct nxia_boot *boot)
{
    static uint8_t msg[4096];
    const struct nxia_portal *p = NULL;
    const struct nxia_portal_table *t = (const struct nxia_portal_table *)(uintptr_t)NXIA_PORTAL_TABLE_GPA;
    if (boot->input_len > 0 && boot->input_len < NXIA_PORTAL_NAME) {
        char name[NXIA_PORTAL_NAME] = {0};
        memcpy(name, (const void *)(uintptr_t)boot->input_gpa, boot->input_len);
        p = nxia_portal_find(name);
    } else if (t->count > 0 && (t->entry[0].flags & NXIA_PORTAL_MAPPED)) {
        p = &t->entry[0];
    }
    if (p == NULL)
        fail("the portal is not mapped; table entries:", t->count);
    uint8_t *base = (uint8_t *)(uintptr_t)p->gpa;
    uint64_t half = p->size / 2, mode = boot->arg & 0xff, count = boot->arg >> 8;
    struct ring in, out;
    int64_t rc;

    if (mode == 4) {
        volatile uint64_t *word = (volatile uint64_t *)base;
        *word = *word + 1;
        nxia_puts("portal-ring: wrote to the region\n");
        return 0;
    }
    if (mode == 5) { /* the input is the refs here, so the region is entry 0 */
        struct nxia_arena a;
        const struct nxia_ref *refs = (const struct nxia_ref *)(uintptr_t)boot->input_gpa;
        uint64_t n = boot->input_len / sizeof *refs;
        int64_t *res = (int64_t *)(uintptr_t)boot->output_gpa;
        if ((rc = nxia_arena_attach(&a, base, p->size)) != 0)
            fail("arena attach failed:", rc);
        if (n * 8 > boot->output_cap)
            fail("output too small for refs:", (int64_t)n);
        for (uint64_t i = 0; i < n; i++) {
            int err;
            const int64_t *block = nxia_arena_deref(&a, &refs[i], &err);
            res[i] = block != NULL ? *block : err;
        }
        ((struct nxia_boot *)boot)->output_len = n * 8;
        return 0;
    }

    if ((rc = attach(&in, base, half)) != 0)
        fail("attach ring 0 failed:", rc);
    if (mode == 1 || mode == 6 || mode == 7) {
        if ((rc = attach(&out, base + half, half)) != 0)
            fail("attach ring 1 failed:", rc);
    }

    if (mode == 1) {
        int pending = 0;
        for (;;) {
            rc = poll_ring(&in, msg, sizeof msg);
            if (rc == NXIA_PORTAL_AGAIN) {
                if (pending && count != 1) {
                    nxia_portal_ring(p);
                    pending = 0;
                }
                __builtin_ia32_pause();
                continue;
            }
            if (rc < 0)
                fail("poll failed:", rc);
            send(&out, msg, (uint32_t)rc);
            pending = 1;
            if (rc == 0) {
                if (count != 1)
                    nxia_portal_ring(p);
                return 0;
            }
        }
    }
    if (mode == 2) {
        uint64_t sum = FNV_START;
        for (uint64_t i = 0; i < count; i++) {
            uint32_t len = make_message(i, msg);
            sum = fnv(sum, msg, len);
            send(&in, msg, len);
        }
        send(&in, msg, 0);
        put_result(boot, count, sum);
        return 0;
    }
    if (mode == 3) {
        uint64_t sum = FNV_START, n = 0;
        for (;;) {
            rc = poll_ring(&in, msg, sizeof msg);
            if (rc == NXIA_PORTAL_AGAIN) {
                __builtin_ia32_pause();
                continue;
            }
            if (rc < 0)
                fail("poll failed:", rc);
            if (rc == 0)
                break;
            sum = fnv(sum, msg, (uint64_t)rc);
            n++;
        }
        put_result(boot, n, sum);
        return 0;
    }
    if (mode == 6 || mode == 7) {
        static uint8_t want[4096];
        uint64_t sent = 0, got = 0, sum = FNV_START;
        /* mode 7 output: count, sum, loop ticks, samples, then u32 ticks per trip */
        uint64_t *out64 = (uint64_t *)(uintptr_t)boot->output_gpa;
        uint32_t *trip = (uint32_t *)(out64 + 4);
        uint64_t room = boot->output_cap >= 32 ? (boot->output_cap - 32) / 4 : 0;
        uint64_t loop_start = __builtin_ia32_rdtsc(), trip_start = loop_start;
        while (got < count) {
            if (sent < count && (mode == 6 || sent == got)) {
                uint32_t len = make_message(sent, msg);
                rc = offer(&in, msg, len);
                if (rc == 0)
                    sent++;
                else if (rc != NXIA_PORTAL_AGAIN)
                    fail("offer failed:", rc);
            }
            rc = poll_ring(&out, msg, sizeof msg);
            if (rc == NXIA_PORTAL_AGAIN)
                continue;
            if (rc < 0)
                fail("poll failed:", rc);
            uint32_t len = make_message(got, want);
            if ((uint64_t)rc != len || memcmp(msg, want, len) != 0)
                fail("echo differs at message", (int64_t)got);
            sum = fnv(sum, msg, len);
            if (mode == 7) {
                uint64_t now = __builtin_ia32_rdtsc();
                if (got < room)
                    trip[got] = (uint32_t)(now - trip_start > 0xffffffffull ? 0xffffffffull : now - trip_start);
                trip_start = now;
            }
            got++;
        }
        uint64_t loop_ticks = __builtin_ia32_rdtsc() - loop_start;
        send(&in, msg, 0);
        put_result(boot, got, sum);
        if (mode == 7 && boot->output_cap >= 32) {
            uint64_t samples = got < room ? got : room;
            out64[2] = loop_ticks;
            out64[3] = samples;
            ((struct nxia_boot *)boot)->output_len = 32 + samples * 4;
        }
        return 0;
    }
    fail("unknown mode", (int64_t)mode);
}
