/*
 * portal-test - runs test/portal-vectors.txt against kit/portal.c, the same
 * cases org.nxia.portal's PortalVectorsTest runs against the Java side, and
 * a threaded MPMC check (4 producers, 4 consumers, checksummed messages).
 *
 *   portal-test VECTORS
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nxia_portal.h"

static int failures;

#define FAIL(...) do { fprintf(stderr, "portal-test: %s:%d: ", path, lineno); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); failures++; } while (0)

static size_t unhex(const char *s, uint8_t *out)
{
    if (strcmp(s, "-") == 0)
        return 0;
    size_t n = strlen(s) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void tohex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

static int vectors(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    static char line[65536], hex[65536];
    static uint8_t msg[32768], got[32768];
    uint8_t *mem = NULL;
    uint64_t size = 0;
    int kind = 0; /* 1 spsc, 2 mpmc, 3 arena */
    struct nxia_spsc spsc;
    struct nxia_mpmc mpmc;
    struct nxia_arena arena;
    int lineno = 0, cases = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char op[16] = "", a[32768] = "";
        unsigned long long x = 0, y = 0, z = 0;
        if (line[0] == '#' || sscanf(line, "%15s", op) != 1)
            continue;
        if (strcmp(op, "spsc") == 0 || strcmp(op, "mpmc") == 0 || strcmp(op, "arena") == 0) {
            sscanf(line, "%*s %llu %llu", &x, &y);
            free(mem);
            kind = op[0] == 's' ? 1 : op[0] == 'm' ? 2 : 3;
            size = kind == 1 ? NXIA_SPSC_DATA + x : kind == 2 ? NXIA_MPMC_DATA + x * y : y;
            mem = aligned_alloc(64, (size + 63) & ~63ull);
            memset(mem, 0, size); /* as the Java side: record padding is not written */
            int rc;
            if (kind == 1) {
                rc = nxia_spsc_format(&spsc, mem, size, (uint32_t)x);
            } else if (kind == 2) {
                rc = nxia_mpmc_format(&mpmc, mem, size, (uint32_t)x, (uint32_t)y);
            } else {
                /* The C kit attaches; the Java side formats. Format as the ABI says. */
                uint64_t n = 0;
                while (1) {
                    uint64_t m = n + 1, bm = (64 + 4 * m + 63) & ~63ull;
                    uint64_t d = (bm + 8 * ((m + 63) / 64) + 63) & ~63ull;
                    if (d + x * m > size)
                        break;
                    n = m;
                }
                uint64_t bm = (64 + 4 * n + 63) & ~63ull, d = (bm + 8 * ((n + 63) / 64) + 63) & ~63ull;
                memset(mem, 0, d);
                if (n & 63)
                    *(uint64_t *)(mem + bm + 8 * ((n + 63) / 64 - 1)) = ~0ull << (n & 63);
                ((uint32_t *)mem)[1] = NXIA_ARENA_VERSION;
                ((uint32_t *)mem)[2] = (uint32_t)x;
                ((uint32_t *)mem)[3] = (uint32_t)n;
                ((uint32_t *)mem)[0] = NXIA_ARENA_MAGIC;
                rc = nxia_arena_attach(&arena, mem, size);
            }
            if (rc != 0)
                FAIL("format failed: %d", rc);
        } else if (strcmp(op, "offer") == 0 || strcmp(op, "full") == 0) {
            sscanf(line, "%*s %32767s", a);
            size_t n = unhex(a, msg);
            int rc = kind == 1 ? nxia_spsc_offer(&spsc, msg, (uint32_t)n) : nxia_mpmc_offer(&mpmc, msg, (uint32_t)n);
            if (rc != (op[0] == 'o' ? NXIA_PORTAL_OK : NXIA_PORTAL_AGAIN))
                FAIL("%s returned %d", op, rc);
        } else if (strcmp(op, "poll") == 0 || strcmp(op, "empty") == 0) {
            sscanf(line, "%*s %32767s", a);
            int64_t rc = kind == 1 ? nxia_spsc_poll(&spsc, got, sizeof got) : nxia_mpmc_poll(&mpmc, got, sizeof got);
            if (op[0] == 'e') {
                if (rc != NXIA_PORTAL_AGAIN)
                    FAIL("poll returned %lld, expected empty", (long long)rc);
            } else {
                if (rc < 0) {
                    FAIL("poll returned %lld", (long long)rc);
                } else {
                    tohex(got, (size_t)rc, hex);
                    if (strcmp(rc == 0 ? "-" : hex, a) != 0)
                        FAIL("poll got %s", hex);
                }
            }
        } else if (strcmp(op, "alloc") == 0) {
            sscanf(line, "%*s %llu %llu %llu", &x, &y, &z);
            struct nxia_ref r;
            int rc = nxia_arena_alloc(&arena, x, &r);
            if (rc != 0 || r.offset != y || r.length != x || r.generation != z)
                FAIL("alloc: rc %d ref (%llu, %llu, %u)", rc, (unsigned long long)r.offset,
                     (unsigned long long)r.length, r.generation);
        } else if (strcmp(op, "free") == 0 || strcmp(op, "stale") == 0) {
            sscanf(line, "%*s %llu %llu %llu", &x, &y, &z);
            struct nxia_ref r = {x, y, (uint32_t)z};
            int err;
            if (op[0] == 'f') {
                if (nxia_arena_free(&arena, &r) != 0)
                    FAIL("free refused");
            } else if (nxia_arena_deref(&arena, &r, &err) != NULL || err != NXIA_PORTAL_ESTALE
                       || nxia_arena_free(&arena, &r) != NXIA_PORTAL_ESTALE) {
                FAIL("stale reference accepted");
            }
        } else if (strcmp(op, "bytes") == 0) {
            sscanf(line, "%*s %32767s", a);
            tohex(mem, size, hex);
            if (strcmp(hex, a) != 0)
                FAIL("bytes differ:\n  got  %s\n  want %s", hex, a);
        } else if (strcmp(op, "end") == 0) {
            cases++;
        } else {
            FAIL("unknown operation %s", op);
        }
    }
    fclose(f);
    free(mem);
    if (cases != 3) {
        fprintf(stderr, "portal-test: %s: ran %d cases, expected 3\n", path, cases);
        failures++;
    }
    return 0;
}

/* ---- threaded MPMC: every message is (producer, sequence); sums must match ---- */

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 200000

static struct nxia_mpmc shared_ring;
static unsigned long long consumed_sum[CONSUMERS], consumed_count[CONSUMERS];
static int done_producers;

static void *producer(void *arg)
{
    uint64_t id = (uintptr_t)arg;
    for (uint64_t i = 0; i < PER_PRODUCER; i++) {
        uint64_t m[2] = {id, i};
        while (nxia_mpmc_offer(&shared_ring, m, sizeof m) == NXIA_PORTAL_AGAIN)
            ;
    }
    __atomic_fetch_add(&done_producers, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void *consumer(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t m[2];
    for (;;) {
        int64_t rc = nxia_mpmc_poll(&shared_ring, m, sizeof m);
        if (rc == sizeof m) {
            consumed_sum[id] += m[0] * 1000003 + m[1];
            consumed_count[id]++;
        } else if (rc == NXIA_PORTAL_AGAIN) {
            if (__atomic_load_n(&done_producers, __ATOMIC_SEQ_CST) == PRODUCERS
                && nxia_mpmc_poll(&shared_ring, m, sizeof m) == NXIA_PORTAL_AGAIN)
                return NULL;
        } else {
            fprintf(stderr, "portal-test: mpmc poll failed: %lld\n", (long long)rc);
            abort();
        }
    }
}

static void threads(void)
{
    uint64_t size = NXIA_MPMC_DATA + 64 * 64;
    void *mem = aligned_alloc(64, size);
    pthread_t p[PRODUCERS], c[CONSUMERS];
    nxia_mpmc_format(&shared_ring, mem, size, 64, 64);
    for (uintptr_t i = 0; i < CONSUMERS; i++)
        pthread_create(&c[i], NULL, consumer, (void *)i);
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        pthread_create(&p[i], NULL, producer, (void *)i);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(p[i], NULL);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(c[i], NULL);
    unsigned long long sum = 0, count = 0, want = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        sum += consumed_sum[i];
        count += consumed_count[i];
    }
    for (uint64_t id = 0; id < PRODUCERS; id++)
        for (uint64_t i = 0; i < PER_PRODUCER; i++)
            want += id * 1000003 + i;
    if (count != (unsigned long long)PRODUCERS * PER_PRODUCER || sum != want) {
        fprintf(stderr, "portal-test: mpmc threads: %llu messages, sum %llu; want %llu, %llu\n",
                count, sum, (unsigned long long)PRODUCERS * PER_PRODUCER, want);
        failures++;
    }
    free(mem);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: portal-test VECTORS\n");
        return 2;
    }
    vectors(argv[1]);
    threads();
    if (failures != 0)
        return 1;
    printf("portal: vectors and %d x %d MPMC threads pass\n", PRODUCERS, CONSUMERS);
    return 0;
}
