/*
 * gemini-test - runs the test vectors of docs/gemini-protocol.md through the
 * kit's Gemini codec (decode, print canonically, compare, re-encode, compare
 * bytes; "rejected" frames must fail to decode), and exercises the SPSC ring.
 *
 * usage: gemini-test docs/gemini-protocol.md
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nxia_gemini.h"

static int failures;

static int unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return (int)(n / 2);
}

static void hex(FILE *o, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(o, "%02x", p[i]);
}

static void value(FILE *o, const struct nxia_gm_value *v)
{
    switch (v->tag) {
    case NXIA_GM_NULL: fputs("null", o); break;
    case NXIA_GM_BOOL: fputs(v->b ? "bool:true" : "bool:false", o); break;
    case NXIA_GM_I32: fprintf(o, "i32:%" PRId32, v->i32); break;
    case NXIA_GM_I64: fprintf(o, "i64:%" PRId64, v->i64); break;
    case NXIA_GM_F64: fprintf(o, "f64:0x%" PRIx64, v->f64); break;
    case NXIA_GM_STR: fprintf(o, "str:\"%.*s\"", (int)v->len, (const char *)v->ptr); break;
    case NXIA_GM_BYTES: fputs("bytes:", o); hex(o, v->ptr, v->len); break;
    case NXIA_GM_REF: fprintf(o, "ref:%" PRIu64 ",%" PRIu64 ",%" PRIu32, v->ref_off, v->ref_len, v->ref_gen); break;
    case NXIA_GM_TOKEN: fputs("token:", o); hex(o, v->token, 16); break;
    }
}

static void text(FILE *o, const struct nxia_gm_frame *f)
{
    switch (f->type) {
    case NXIA_GM_HELLO:
        fprintf(o, "HELLO id=0 version=%u..%u peer=\"%.*s\" auth=", f->min_version, f->max_version,
                (int)f->peer_len, (const char *)f->peer);
        hex(o, f->auth, f->auth_len);
        break;
    case NXIA_GM_WELCOME:
        fprintf(o, "WELCOME id=0 version=%u max_frame=%" PRIu32 " session=%" PRIu64, f->version, f->max_frame, f->session);
        break;
    case NXIA_GM_CALL:
        fprintf(o, "CALL id=%" PRIu64 " service=%.*s method=%.*s tokens=[", f->id, (int)f->service_len,
                (const char *)f->service, (int)f->method_len, (const char *)f->method);
        for (unsigned i = 0; i < f->ntokens; i++) {
            if (i)
                fputc(' ', o);
            hex(o, f->tokens + 16 * i, 16);
        }
        fputs("] args=[", o);
        for (unsigned i = 0; i < f->nargs; i++) {
            if (i)
                fputc(' ', o);
            value(o, &f->args[i]);
        }
        fputc(']', o);
        break;
    case NXIA_GM_RETURN:
        fprintf(o, "RETURN id=%" PRIu64 " value=", f->id);
        value(o, &f->value);
        break;
    case NXIA_GM_ERROR:
        fprintf(o, "ERROR id=%" PRIu64 " code=%u message=\"%.*s\"", f->id, f->code, (int)f->message_len,
                (const char *)f->message);
        break;
    case NXIA_GM_CANCEL:
        fprintf(o, "CANCEL id=%" PRIu64, f->id);
        break;
    case NXIA_GM_CLOSE:
        fprintf(o, "CLOSE id=0 reason=\"%.*s\"", (int)f->message_len, (const char *)f->message);
        break;
    }
}

static void check(int ok, const char *what, const char *name)
{
    if (!ok) {
        fprintf(stderr, "gemini-test: FAIL %s: %s\n", name, what);
        failures++;
    }
}

static int vectors(const char *path)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        perror(path);
        return -1;
    }
    static char line[8192], next[8192], kind[16], name[64], hexs[8192];
    static uint8_t bytes[4096], again[4096];
    static struct nxia_gm_frame f;
    int good = 0, bad = 0;
    while (fgets(line, sizeof line, in)) {
        if (sscanf(line, "%15s %63s %8191s", kind, name, hexs) != 3)
            continue;
        int vec = strcmp(kind, "vector") == 0;
        if (!vec && strcmp(kind, "rejected") != 0)
            continue;
        int n = unhex(hexs, bytes, sizeof bytes);
        check(n >= 0, "bad hex", name);
        if (n < 0)
            continue;
        int rc = nxia_gm_decode(bytes, (uint32_t)n, &f);
        if (!vec) {
            check(rc != 0, "decoded a frame that must be rejected", name);
            bad++;
            continue;
        }
        good++;
        check(fgets(next, sizeof next, in) != NULL, "no '  = ' line", name);
        check(rc == 0, "did not decode", name);
        if (rc != 0)
            continue;
        char *out = NULL;
        size_t outlen = 0;
        FILE *o = open_memstream(&out, &outlen);
        text(o, &f);
        fclose(o);
        next[strcspn(next, "\n")] = 0;
        check(strncmp(next, "  = ", 4) == 0 && strcmp(next + 4, out) == 0, "text differs", name);
        if (strcmp(next + 4, out) != 0)
            fprintf(stderr, "  expected: %s\n  got:      %s\n", next + 4, out);
        free(out);
        long m = nxia_gm_encode(&f, again, sizeof again);
        check(m == n && memcmp(again, bytes, (size_t)n) == 0, "re-encoding differs", name);
    }
    fclose(in);
    check(good >= 9, "too few vectors", path);
    check(bad >= 15, "too few rejected vectors", path);
    printf("gemini-test: %d vectors, %d rejected frames\n", good, bad);
    return 0;
}

/*
 * "deref NAME OFF,LEN,GEN ok|BAD_REF" lines: the reference checks against the
 * arena the protocol document describes (64-byte blocks over 1024 bytes; the
 * blocks at 192 and 256 allocated, then 256 freed).
 */
static void derefs(const char *path)
{
    static uint64_t mem[1024 / 8];
    static char line[512], name[64], want[16];
    struct nxia_arena a;
    struct nxia_ref r1, r2;
    /* The arena as the host formats it (BlockArena.format): 13 blocks, data at 192, spare bitmap bits set. */
    memset(mem, 0, sizeof mem);
    uint32_t *h = (uint32_t *)mem;
    h[1] = 1;
    h[2] = 64;
    h[3] = 13;
    mem[128 / 8] = ~((1ull << 13) - 1);
    h[0] = NXIA_ARENA_MAGIC;
    check(nxia_arena_attach(&a, mem, sizeof mem) == NXIA_PORTAL_OK, "attach", "deref");
    check(nxia_arena_alloc(&a, 64, &r1) == NXIA_PORTAL_OK && r1.offset == 192, "alloc 192", "deref");
    check(nxia_arena_alloc(&a, 64, &r2) == NXIA_PORTAL_OK && r2.offset == 256, "alloc 256", "deref");
    check(nxia_arena_free(&a, &r2) == NXIA_PORTAL_OK, "free 256", "deref");
    FILE *in = fopen(path, "r");
    if (!in) {
        perror(path);
        failures++;
        return;
    }
    int n = 0;
    while (fgets(line, sizeof line, in)) {
        struct nxia_gm_value v;
        memset(&v, 0, sizeof v);
        v.tag = NXIA_GM_REF;
        if (sscanf(line, "deref %63s %" SCNu64 ",%" SCNu64 ",%" SCNu32 " %15s", name, &v.ref_off, &v.ref_len, &v.ref_gen,
                   want) != 5)
            continue;
        n++;
        int rc = nxia_gm_deref(&a, &v);
        int ok = strcmp(want, "ok") == 0;
        check(ok ? rc == NXIA_GM_OK && v.ptr == (uint8_t *)mem + v.ref_off && v.len == v.ref_len
                 : rc == NXIA_GM_EBAD_REF, ok ? "not dereferenced" : "not refused", name);
    }
    fclose(in);
    check(n >= 8, "too few deref vectors", path);
    printf("gemini-test: %d reference checks\n", n);
}

static void ring(void)
{
    static uint64_t mem[(192 + 256) / 8];
    static uint8_t msg[300], out[300];
    struct nxia_ring tx, rx;
    check(nxia_ring_format(&tx, mem, 256) == 0, "format", "ring");
    rx = tx; /* the consumer starts from the same empty state */
    check(nxia_ring_poll(&rx, out, sizeof out) == -1, "empty poll", "ring");
    for (unsigned round = 0; round < 1000; round++) {
        uint32_t len = (round * 37) % 200;
        for (uint32_t i = 0; i < len; i++)
            msg[i] = (uint8_t)(round + i);
        int rc = nxia_ring_offer(&tx, msg, len);
        if (rc == 0) /* a wrap marker left too little room: the consumer skips it, then it fits */
            rc = nxia_ring_poll(&rx, out, sizeof out) == -1 ? nxia_ring_offer(&tx, msg, len) : -3;
        check(rc == 1, "offer", "ring");
        check(nxia_ring_poll(&rx, out, sizeof out) == (long)len && memcmp(msg, out, len) == 0, "round trip", "ring");
    }
    check(nxia_ring_offer(&tx, msg, 253) == -1, "oversize refused", "ring");
    /* A corrupt producer index is refused, not followed. */
    mem[64 / 8] += 4096;
    check(nxia_ring_poll(&rx, out, sizeof out) == -2, "corrupt index refused", "ring");
    if (!failures)
        printf("gemini-test: ring ok\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gemini-test docs/gemini-protocol.md\n");
        return 2;
    }
    if (vectors(argv[1]) != 0)
        return 1;
    derefs(argv[1]);
    ring();
    if (failures) {
        fprintf(stderr, "gemini-test: %d failure(s)\n", failures);
        return 1;
    }
    return 0;
}
