/* nxia-portal: Portal regions from a shell in the System VM (nxia_linux.h, "Portal regions").
 * Every OFFSET is a region offset (Linux's view starts at 2 MiB); numbers take 0x and K/M/G. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nxia_linux.h"
#include "nxia_portal.h"
#include "nxia_sha256.h"

#define ECHO_MSG_MAX  65536u

static void usage(void)
{
    fprintf(stderr,
            "usage: nxia-portal list\n"
            "       nxia-portal sum NAME OFFSET LENGTH        SHA-256 of the bytes, read in place\n"
            "       nxia-portal fill NAME OFFSET LENGTH SEED  write the test pattern (64-bit LCG words from SEED)\n"
            "       nxia-portal wait NAME [TIMEOUT_MS]          sleep until the region's doorbell rings (or exit 1 at the timeout)\n"
            "       nxia-portal echo NAME IN OUT [TIMEOUT_MS] echo SPSC ring IN's messages into ring OUT\n"
            "                                                 until an empty one (echoed too); each waits TIMEOUT_MS (10000)\n"
            "regions: " NXIA_REGION_DIR "/NAME (virtio-pmem:region=NAME,dax=true); OFFSET is a region offset, from 2M on\n");
    exit(2);
}

static uint64_t number(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    uint64_t scale = *end == 'K' || *end == 'k' ? 1ull << 10 : *end == 'M' ? 1ull << 20 : *end == 'G' ? 1ull << 30 : 1;
    if (scale != 1)
        end++;
    if (errno || end == s || *end || (scale != 1 && v > UINT64_MAX / scale)) {
        fprintf(stderr, "nxia-portal: not a number: %s\n", s);
        exit(2);
    }
    return v * scale;
}

static void *span(struct nxia_region *r, uint64_t at, uint64_t len, const char *name)
{
    void *p = nxia_region_at(r, at, len);
    if (!p) {
        fprintf(stderr, "nxia-portal: [0x%llx, +0x%llx) is not in region %s's mapping [0x%llx, 0x%llx)\n", (unsigned long long)at,
                (unsigned long long)len, name, (unsigned long long)r->offset, (unsigned long long)(r->offset + r->len));
        exit(1);
    }
    return p;
}

static void open_region(struct nxia_region *r, const char *name, int writable)
{
    if (nxia_region_map(r, name, writable) < 0) {
        fprintf(stderr, "nxia-portal: %s\n", r->why);
        exit(1);
    }
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int list(void)
{
    DIR *d = opendir(NXIA_REGION_DIR);
    struct dirent *e;
    if (!d) {
        printf("no regions (%s: %s)\n", NXIA_REGION_DIR, strerror(errno));
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        struct nxia_region r;
        if (e->d_name[0] == '.')
            continue;
        if (nxia_region_map(&r, e->d_name, 0) == 0) {
            printf("%-15s %-14s mapped from 0x%llx, %llu bytes\n", e->d_name, r.device, (unsigned long long)r.offset,
                   (unsigned long long)r.len);
            nxia_region_unmap(&r);
        } else {
            printf("%-15s %s\n", e->d_name, r.why);
        }
    }
    closedir(d);
    return 0;
}

static int echo(struct nxia_region *r, const char *name, uint64_t in_at, uint64_t out_at, long long timeout_ms)
{
    struct nxia_spsc in, out;
    static uint8_t msg[ECHO_MSG_MAX];
    uint64_t in_len = out_at > in_at ? out_at - in_at : r->offset + r->len - in_at;
    uint64_t out_len = in_at > out_at ? in_at - out_at : r->offset + r->len - out_at;
    long count = 0;

    if (nxia_spsc_attach(&in, span(r, in_at, in_len, name), in_len) != NXIA_PORTAL_OK ||
        nxia_spsc_attach(&out, span(r, out_at, out_len, name), out_len) != NXIA_PORTAL_OK) {
        fprintf(stderr, "nxia-portal: no SPSC ring at 0x%llx or 0x%llx of %s\n", (unsigned long long)in_at, (unsigned long long)out_at,
                name);
        return 1;
    }
    for (;;) {
        long long until = now_ms() + timeout_ms;
        int64_t n;
        while ((n = nxia_spsc_poll(&in, msg, sizeof msg)) == NXIA_PORTAL_AGAIN) {
            if (now_ms() > until) {
                fprintf(stderr, "nxia-portal: no message in %lld ms after %ld\n", timeout_ms, count);
                return 1;
            }
            usleep(50);
        }
        if (n < 0) {
            fprintf(stderr, "nxia-portal: ring IN: error %lld after %ld messages\n", (long long)n, count);
            return 1;
        }
        int w;
        while ((w = nxia_spsc_offer(&out, msg, (uint32_t)n)) == NXIA_PORTAL_AGAIN) {
            if (now_ms() > until) {
                fprintf(stderr, "nxia-portal: ring OUT stayed full for %lld ms\n", timeout_ms);
                return 1;
            }
            usleep(50);
        }
        if (w != NXIA_PORTAL_OK) {
            fprintf(stderr, "nxia-portal: ring OUT: error %d\n", w);
            return 1;
        }
        if (n == 0)
            break;
        count++;
    }
    printf("echoed %ld messages\n", count);
    return 0;
}

int main(int argc, char **argv)
{
    struct nxia_region r;

    if (argc == 2 && !strcmp(argv[1], "list"))
        return list();
    if (argc == 5 && !strcmp(argv[1], "sum")) {
        uint64_t at = number(argv[3]), len = number(argv[4]);
        uint8_t digest[NXIA_SHA256_DIGEST];
        open_region(&r, argv[2], 0);
        nxia_sha256(span(&r, at, len, argv[2]), len, digest);
        for (unsigned i = 0; i < sizeof digest; i++)
            printf("%02x", digest[i]);
        printf("\n");
        return 0;
    }
    if (argc == 6 && !strcmp(argv[1], "fill")) {
        uint64_t at = number(argv[3]), len = number(argv[4]), x = number(argv[5]);
        open_region(&r, argv[2], 1);
        uint8_t *p = span(&r, at, len, argv[2]);
        for (uint64_t i = 0; i < len; i += 8) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            for (unsigned b = 0; b < 8 && i + b < len; b++)
                p[i + b] = (uint8_t)(x >> (8 * b));
        }
        return 0;
    }
    if ((argc == 3 || argc == 4) && !strcmp(argv[1], "wait")) {
        uint64_t seen = 0;
        int got;
        open_region(&r, argv[2], 0);
        if (nxia_region_wait(&r, &seen, 0) < 0) {    /* the count now */
            fprintf(stderr, "nxia-portal: %s\n", r.why);
            return 1;
        }
        printf("waiting (doorbell %llu)\n", (unsigned long long)seen);
        fflush(stdout);
        got = nxia_region_wait(&r, &seen, argc == 4 ? (int)number(argv[3]) : -1);
        if (got < 0) {
            fprintf(stderr, "nxia-portal: %s\n", r.why);
            return 1;
        }
        if (!got) {
            fprintf(stderr, "nxia-portal: no ring within %s ms\n", argv[3]);
            return 1;
        }
        printf("doorbell %llu\n", (unsigned long long)seen);
        return 0;
    }
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "echo")) {
        open_region(&r, argv[2], 1);
        return echo(&r, argv[2], number(argv[3]), number(argv[4]), argc == 6 ? (long long)number(argv[5]) : 10000);
    }
    usage();
}
