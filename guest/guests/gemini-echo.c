/*
 * gemini-echo - a Gemini guest (docs/gemini-protocol.md). It opens a session
 * over rings in its own RAM, exports calc.add, calc.nop, calc.echo, calc.sum,
 * calc.how and calc.die, binds the Portal region "gemini" as its reference
 * region when the VM maps one, then, by the low 32 bits of arg:
 *   0: calls the host's itest.add(40, 2), gets a token from itest.grant
 *      and presents it to itest.check, expects net.open to be DENIED; with a
 *      region, passes arguments by reference (a live block, AUTO above the
 *      threshold, one outside the region, a stale one); then serves the
 *      host's calls until the session closes.
 *   N>0: calls bench.nop() N times (the L->H benchmark), then serves.
 * Bits 32-39 of arg, if set, are log2 of the ring capacity: the rings and
 * buffers then live in the heap (large copied arguments).
 *
 * calc.die exits the VM with status 7 in the middle of the call.
 */
#include "nxia.h"
#include "nxia_gemini.h"
#include "nxia_portal.h"

static struct nxia_gemini g;
static uint8_t big[2 * NXIA_GM_REF_THRESHOLD];

static int calc_add(const struct nxia_gm_value *a, unsigned n, struct nxia_gm_value *ret, void *user)
{
    (void)user;
    if (n != 2 || a[0].tag != NXIA_GM_I64 || a[1].tag != NXIA_GM_I64)
        return NXIA_GM_EBAD_ARGS;
    ret->tag = NXIA_GM_I64;
    ret->i64 = a[0].i64 + a[1].i64;
    return NXIA_GM_OK;
}

static int calc_nop(const struct nxia_gm_value *a, unsigned n, struct nxia_gm_value *ret, void *user)
{
    (void)a, (void)n, (void)user;
    ret->tag = NXIA_GM_NULL;
    return NXIA_GM_OK;
}

static int calc_echo(const struct nxia_gm_value *a, unsigned n, struct nxia_gm_value *ret, void *user)
{
    (void)user;
    if (n != 1)
        return NXIA_GM_EBAD_ARGS;
    *ret = a[0]; /* points into the receive buffer, which stays put until the reply is encoded */
    return NXIA_GM_OK;
}

/* The checksum the host computes too: the length plus every little-endian u64 word plus each tail byte. */
static int64_t checksum(const uint8_t *p, uint64_t n)
{
    uint64_t h = n, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h += w;
    }
    for (; i < n; i++)
        h += p[i];
    return (int64_t)h;
}

/* Reads its BYTES argument where it lies: in the frame when copied, in the region's block when referenced. */
static int calc_sum(const struct nxia_gm_value *a, unsigned n, struct nxia_gm_value *ret, void *user)
{
    (void)user;
    if (n != 1 || (a[0].tag != NXIA_GM_BYTES && a[0].tag != NXIA_GM_REF))
        return NXIA_GM_EBAD_ARGS;
    ret->tag = NXIA_GM_I64;
    ret->i64 = checksum(a[0].ptr, a[0].len);
    return NXIA_GM_OK;
}

static int calc_how(const struct nxia_gm_value *a, unsigned n, struct nxia_gm_value *ret, void *user)
{
    (void)user;
    if (n != 1)
        return NXIA_GM_EBAD_ARGS;
    ret->tag = NXIA_GM_STR;
    ret->ptr = (const uint8_t *)(a[0].tag == NXIA_GM_REF ? "ref" : "copy");
    ret->len = a[0].tag == NXIA_GM_REF ? 3 : 4;
    return NXIA_GM_OK;
}

static int calc_die(const struct nxia_gm_value *a, unsigned n, struct nxia_gm_value *ret, void *user)
{
    (void)a, (void)n, (void)ret, (void)user;
    nxia_puts("dying mid-call\n");
    nxia_exit(7);
}

static void show(const char *what, int rc, const struct nxia_gm_value *v)
{
    nxia_puts(what);
    nxia_puts(": ");
    if (rc != NXIA_GM_OK) {
        nxia_puts("error ");
        nxia_put_i64(rc);
        nxia_puts(" ");
    }
    if (v->tag == NXIA_GM_I64)
        nxia_put_i64(v->i64);
    else if (v->tag == NXIA_GM_STR)
        nxia_write(v->ptr, v->len);
    else if (v->tag == NXIA_GM_TOKEN)
        nxia_puts("<token>");
    else if (v->tag == NXIA_GM_NULL)
        nxia_puts("null");
    nxia_putc('\n');
    nxia_flush();
}

/* Arguments by reference, guest to host: every outcome printed for the host test to check. */
static int references(void)
{
    struct nxia_gm_value arg, ret;
    struct nxia_ref r;
    int rc, ok = 1, err = 0;
    if (nxia_arena_alloc(&g.arena, 4000, &r) != NXIA_PORTAL_OK)
        return 0;
    uint8_t *block = nxia_arena_deref(&g.arena, &r, &err);
    for (unsigned i = 0; i < 4000; i++)
        block[i] = (uint8_t)(i * 7 + 3);
    memset(&arg, 0, sizeof arg);
    arg.tag = NXIA_GM_REF;
    arg.ref_off = r.offset;
    arg.ref_len = r.length;
    arg.ref_gen = r.generation;
    rc = nxia_gemini_call(&g, "itest", "sum", &arg, 1, 0, 0, &ret);
    ok &= rc == NXIA_GM_OK && ret.tag == NXIA_GM_I64 && ret.i64 == checksum(block, 4000);
    nxia_puts(ok ? "itest.sum ref: ok\n" : "itest.sum ref: WRONG\n");

    nxia_arena_free(&g.arena, &r);
    rc = nxia_gemini_call(&g, "itest", "sum", &arg, 1, 0, 0, &ret); /* now stale */
    show("itest.sum stale", rc, &ret);
    ok &= rc == NXIA_GM_EBAD_REF;

    arg.ref_off = 1ull << 40; /* far outside the region */
    rc = nxia_gemini_call(&g, "itest", "sum", &arg, 1, 0, 0, &ret);
    show("itest.sum outside", rc, &ret);
    ok &= rc == NXIA_GM_EBAD_REF;

    for (unsigned i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    memset(&arg, 0, sizeof arg);
    arg.tag = NXIA_GM_BYTES;
    arg.ptr = big;
    arg.len = sizeof big; /* AUTO: above the threshold */
    rc = nxia_gemini_call(&g, "itest", "how", &arg, 1, 0, 0, &ret);
    show("itest.how big", rc, &ret);
    ok &= rc == NXIA_GM_OK && ret.len == 3;
    rc = nxia_gemini_call(&g, "itest", "sum", &arg, 1, 0, 0, &ret);
    ok &= rc == NXIA_GM_OK && ret.i64 == checksum(big, sizeof big);
    arg.len = 16;
    rc = nxia_gemini_call(&g, "itest", "how", &arg, 1, 0, 0, &ret);
    show("itest.how small", rc, &ret);
    ok &= rc == NXIA_GM_OK && ret.len == 4;
    rc = nxia_gemini_call_m(&g, "itest", "how", &arg, 1, 0, 0, NXIA_GM_REFERENCE, &ret);
    show("itest.how small forced", rc, &ret);
    ok &= rc == NXIA_GM_OK && ret.len == 3;
    return ok;
}

int main(const struct nxia_boot *boot)
{
    struct nxia_gm_value args[2], ret;
    unsigned ring_log = (unsigned)(boot->arg >> 32) & 0xff;
    unsigned long calls = boot->arg & 0xffffffffu;
    int rc;
    if (ring_log) {
        uint64_t mem = (boot->heap_gpa + 63) & ~63ull;
        rc = nxia_gemini_open_in(&g, "gemini-echo", (void *)(uintptr_t)mem, boot->heap_size - (mem - boot->heap_gpa),
                                 1u << ring_log);
    } else {
        rc = nxia_gemini_open(&g, "gemini-echo");
    }
    if (rc != NXIA_GM_OK) {
        nxia_puts("gemini open failed: ");
        nxia_put_i64(rc);
        nxia_putc('\n');
        return 1;
    }
    nxia_gemini_export(&g, "calc", "add", calc_add, 0);
    nxia_gemini_export(&g, "calc", "nop", calc_nop, 0);
    nxia_gemini_export(&g, "calc", "die", calc_die, 0);
    nxia_gemini_export(&g, "calc", "echo", calc_echo, 0);
    nxia_gemini_export(&g, "calc", "sum", calc_sum, 0);
    nxia_gemini_export(&g, "calc", "how", calc_how, 0);
    nxia_puts("session ");
    nxia_put_u64(g.session);
    nxia_putc('\n');
    if (nxia_portal_find("gemini")) {
        rc = nxia_gemini_region(&g, "gemini");
        nxia_puts(rc == NXIA_GM_OK ? "region gemini bound\n" : "region gemini NOT bound\n");
    }

    if (calls > 0) {
        for (unsigned long i = 0; i < calls; i++) {
            rc = nxia_gemini_call(&g, "bench", "nop", 0, 0, 0, 0, &ret);
            if (rc != NXIA_GM_OK) {
                show("bench.nop", rc, &ret);
                return 2;
            }
        }
        nxia_puts("bench done\n");
    } else {
        int ok = 1;
        args[0].tag = args[1].tag = NXIA_GM_I64;
        args[0].i64 = 40;
        args[1].i64 = 2;
        rc = nxia_gemini_call(&g, "itest", "add", args, 2, 0, 0, &ret);
        show("itest.add", rc, &ret);
        ok &= rc == NXIA_GM_OK && ret.tag == NXIA_GM_I64 && ret.i64 == 42;

        rc = nxia_gemini_call(&g, "itest", "grant", 0, 0, 0, 0, &ret);
        show("itest.grant", rc, &ret);
        uint8_t token[1][16];
        ok &= rc == NXIA_GM_OK && ret.tag == NXIA_GM_TOKEN;
        memcpy(token[0], ret.token, 16);
        rc = nxia_gemini_call(&g, "itest", "check", 0, 0, (const uint8_t (*)[16])token, 1, &ret);
        show("itest.check", rc, &ret);
        ok &= rc == NXIA_GM_OK;
        token[0][0] ^= 1; /* a forged token */
        rc = nxia_gemini_call(&g, "itest", "check", 0, 0, (const uint8_t (*)[16])token, 1, &ret);
        show("itest.check forged", rc, &ret);
        ok &= rc == NXIA_GM_ETOKEN;

        rc = nxia_gemini_call(&g, "net", "open", 0, 0, 0, 0, &ret);
        show("net.open", rc, &ret);
        ok &= rc == NXIA_GM_EDENIED;
        nxia_puts(ok ? "l2h ok\n" : "l2h FAILED\n");
        if (g.has_region)
            nxia_puts(references() ? "refs ok\n" : "refs FAILED\n");
    }
    nxia_puts("serving\n");
    nxia_flush();
    unsigned long served = nxia_gemini_serve(&g);
    nxia_puts("closed after serving ");
    nxia_put_u64(served);
    nxia_puts(" calls\n");
    return 0;
}
