/* nxia-call - call a host service from a System VM's shell, through the
 * agent's Gemini broker (docs/linux-vm.md, "Calling the host").
 *
 *   nxia-call [-t SECONDS] [-n COUNT] [-m auto|copy|ref] [-T TOKEN]... [--ring REGION[@OFFSET]] SERVICE METHOD [ARG...]
 *
 * Each ARG is a string, or typed as in gemini:call: i32:N, i64:N, f64:X,
 * bool:true|false, null, str:TEXT, bytes:HEX, or @FILE / @- for bytes read
 * from a file / standard input (up to 1 GiB: 16 KiB or more cross by reference
 * when the VM has a region "gemini", docs/linux-vm.md). The result goes to standard output: a string
 * or a number with a newline, bytes as they are. Exit status: 0 on success,
 * 2 for a bad command line, 3 when the broker cannot be reached or breaks the
 * protocol, 64 + the Gemini error code when the call fails (71 DENIED,
 * 75 TIMEOUT, 76 CLOSED...; docs/gemini-protocol.md, "Errors"). With -n it
 * makes the call COUNT times and prints each round trip's nanoseconds instead
 * of the result, one a line (bench:sysgemini), after COUNT/10 unmeasured. -m
 * says how byte arguments cross: auto (16 KiB or more by reference), copy
 * (while they fit a frame) or ref (always by reference into region gemini).
 * -T presents a capability token (32 hex digits, or token:HEX as a result
 * prints one), up to 8. --ring carries the calls over Portal rings this process formats in
 * REGION (a region the VM shows as device DAX) at OFFSET (default 2M, where Linux's view begins;
 * K and M suffixes), a ring session (docs/gemini-protocol.md, "Ring sessions"; the manifest must
 * allow out gemini.ring), instead of through the broker's socket; tokens do not go there. */
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nxia_linux.h"

#define CLIENT_FRAME NXIA_LINK_MAX_OUT
#define MAX_FILE     (1u << 30)    /* an @FILE argument: a block of the region holds it */

static uint8_t data[CLIENT_FRAME];
static size_t data_used;

static void usage(void)
{
    fprintf(stderr, "usage: nxia-call [-t SECONDS] [-n COUNT] [-m auto|copy|ref] [-T TOKEN]... [--ring REGION[@OFFSET]] SERVICE METHOD [ARG...]\n"
                    "  ARG: TEXT | str:TEXT | i32:N | i64:N | f64:X | bool:true|false | null | bytes:HEX | @FILE | @-\n"
                    "  the broker's socket: $NXIA_GEMINI_SOCKET, else " NXIA_BROKER_SOCKET "\n");
    exit(2);
}

static _Noreturn void fail(int status, const char *fmt, const char *arg)
{
    fprintf(stderr, "nxia-call: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(status);
}

/* Bytes of an argument, kept in data[] (bounded by what one frame can carry). */
static const uint8_t *keep(const uint8_t *p, size_t n)
{
    if (n > sizeof data - data_used)
        fail(2, "%s: the arguments are too large for one frame (24 KiB at most)", "bytes");
    memcpy(data + data_used, p, n);
    data_used += n;
    return data + data_used - n;
}

/* A file's bytes, in memory of their own: a large one goes by reference (nxia_link_call). */
static void read_bytes(const char *file, struct nxia_gm_value *v)
{
    int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : 0;
    size_t used = 0, cap = 65536;
    uint8_t *buf = malloc(cap);
    ssize_t n;

    if (fd < 0)
        fail(2, "%s: cannot open", file);
    if (!buf)
        fail(3, "%s: out of memory", file);
    while ((n = read(fd, buf + used, cap - used)) > 0) {
        used += (size_t)n;
        if (used == cap) {
            if (cap >= MAX_FILE)
                fail(2, "%s: larger than 1 GiB", file);
            uint8_t *more = realloc(buf, cap * 2);
            if (!more)
                fail(3, "%s: out of memory", file);
            buf = more;
            cap *= 2;
        }
    }
    if (n < 0)
        fail(2, "%s: cannot read", file);
    if (fd)
        close(fd);
    v->tag = NXIA_GM_BYTES;
    v->ptr = buf;
    v->len = (uint32_t)used;
}

static int parse_int(const char *s, long long lo, long long hi, long long *out_v)
{
    char *end;

    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out_v = v;
    return 0;
}

static void parse_arg(const char *a, struct nxia_gm_value *v)
{
    long long n;

    memset(v, 0, sizeof *v);
    if (a[0] == '@') {
        read_bytes(a + 1, v);
    } else if (!strncmp(a, "i32:", 4)) {
        if (parse_int(a + 4, INT32_MIN, INT32_MAX, &n))
            fail(2, "%s: not a 32-bit integer", a);
        v->tag = NXIA_GM_I32;
        v->i32 = (int32_t)n;
    } else if (!strncmp(a, "i64:", 4)) {
        if (parse_int(a + 4, INT64_MIN, INT64_MAX, &n))
            fail(2, "%s: not a 64-bit integer", a);
        v->tag = NXIA_GM_I64;
        v->i64 = n;
    } else if (!strncmp(a, "f64:", 4)) {
        char *end;
        double d = strtod(a + 4, &end);
        if (end == a + 4 || *end)
            fail(2, "%s: not a number", a);
        v->tag = NXIA_GM_F64;
        memcpy(&v->f64, &d, 8);
    } else if (!strcmp(a, "bool:true") || !strcmp(a, "bool:false")) {
        v->tag = NXIA_GM_BOOL;
        v->b = a[5] == 't';
    } else if (!strcmp(a, "null")) {
        v->tag = NXIA_GM_NULL;
    } else if (!strncmp(a, "bytes:", 6)) {
        size_t h = strlen(a + 6);
        uint8_t b[2];
        if (h % 2)
            fail(2, "%s: odd number of hex digits", a);
        v->tag = NXIA_GM_BYTES;
        v->ptr = data + data_used;
        for (size_t i = 0; i < h; i += 2) {
            char x[3] = {a[6 + i], a[7 + i], 0}, *end;
            b[0] = (uint8_t)strtoul(x, &end, 16);
            if (*end)
                fail(2, "%s: not hex", a);
            keep(b, 1);
        }
        v->len = (uint32_t)(h / 2);
    } else {
        const char *s = strncmp(a, "str:", 4) ? a : a + 4;
        v->tag = NXIA_GM_STR;
        v->len = (uint32_t)strlen(s);
        v->ptr = keep((const uint8_t *)s, v->len);
    }
}

static void print_value(const struct nxia_gm_value *v)
{
    double d;

    switch (v->tag) {
    case NXIA_GM_NULL: break;
    case NXIA_GM_BOOL: puts(v->b ? "true" : "false"); break;
    case NXIA_GM_I32: printf("%" PRId32 "\n", v->i32); break;
    case NXIA_GM_I64: printf("%" PRId64 "\n", v->i64); break;
    case NXIA_GM_F64: memcpy(&d, &v->f64, 8); printf("%.17g\n", d); break;
    case NXIA_GM_STR: fwrite(v->ptr, 1, v->len, stdout); putchar('\n'); break;
    case NXIA_GM_BYTES: fwrite(v->ptr, 1, v->len, stdout); break;
    case NXIA_GM_REF: printf("ref:%" PRIu64 ",%" PRIu64 ",%" PRIu32 "\n", v->ref_off, v->ref_len, v->ref_gen); break;
    case NXIA_GM_TOKEN:
        printf("token:");
        for (int i = 0; i < 16; i++)
            printf("%02x", v->token[i]);
        putchar('\n');
        break;
    }
}

/* REGION[@OFFSET] of --ring: the name into region (16 bytes), the offset (K, M suffixes) into *offset. */
static void parse_ring(const char *a, char *region, uint64_t *offset)
{
    const char *at = strchr(a, '@');
    size_t n = at ? (size_t)(at - a) : strlen(a);
    char *end;

    if (n == 0 || n > 15)
        fail(2, "--ring %s: give REGION[@OFFSET], a region name of 1 to 15 bytes", a);
    memcpy(region, a, n);
    region[n] = '\0';
    *offset = NXIA_REGION_LINUX_OFFSET;
    if (at) {
        errno = 0;
        unsigned long long v = strtoull(at + 1, &end, 0);
        if (*end == 'K' || *end == 'k')
            v <<= 10, end++;
        else if (*end == 'M' || *end == 'm')
            v <<= 20, end++;
        if (errno || end == at + 1 || *end || (v & 63))
            fail(2, "--ring %s: the offset is a 64-byte aligned region offset (e.g. 2M, 0x200000)", a);
        *offset = v;
    }
}

static struct nxia_link broker;    /* the broker connection, when not a ring session */
static struct nxia_ring_session ring;
static int use_ring;

static int call(const char *service, const char *method, const struct nxia_gm_value *args, unsigned nargs, const uint8_t (*tokens)[16],
                unsigned ntokens, int timeout_ms, struct nxia_gm_frame *r)
{
    if (use_ring)
        return nxia_ring_session_call(&ring, service, method, args, nargs, timeout_ms, r);
    return nxia_link_call_t(&broker, service, method, args, nargs, tokens, ntokens, timeout_ms, r);
}

int main(int argc, char **argv)
{
    long long timeout_ms = 30000, count = 0;
    struct nxia_gm_value args[NXIA_GM_MAX_ARGS];
    struct nxia_gm_frame r;
    int i = 1, rc;

    uint32_t threshold = NXIA_GM_REF_THRESHOLD;
    uint8_t tokens[NXIA_GM_MAX_TOKENS][16];
    unsigned ntokens = 0;

    char region[16];
    uint64_t ring_offset = 0;

    while (argc - i > 2 && (!strcmp(argv[i], "-t") || !strcmp(argv[i], "-n") || !strcmp(argv[i], "-m") || !strcmp(argv[i], "-T")
                            || !strcmp(argv[i], "--ring"))) {
        long long v;
        if (argv[i][1] == '-') {
            parse_ring(argv[i + 1], region, &ring_offset);
            use_ring = 1;
        } else if (argv[i][1] == 'T') {
            const char *h = argv[i + 1];
            if (!strncmp(h, "token:", 6))
                h += 6;
            if (ntokens == NXIA_GM_MAX_TOKENS)
                fail(2, "-T %s: at most 8 tokens", argv[i + 1]);
            if (strlen(h) != 32)
                fail(2, "-T %s: a token is 32 hex digits (as nxia-call prints it: token:HEX)", argv[i + 1]);
            for (int b = 0; b < 16; b++) {
                char x[3] = {h[2 * b], h[2 * b + 1], 0}, *end;
                tokens[ntokens][b] = (uint8_t)strtoul(x, &end, 16);
                if (*end)
                    fail(2, "-T %s: not hex", argv[i + 1]);
            }
            ntokens++;
        } else if (argv[i][1] == 'm') {
            if (!strcmp(argv[i + 1], "copy"))
                threshold = UINT32_MAX;    /* copied while it fits a frame */
            else if (!strcmp(argv[i + 1], "ref"))
                threshold = 1;
            else if (strcmp(argv[i + 1], "auto"))
                fail(2, "-m %s: give auto, copy or ref", argv[i + 1]);
        } else if (argv[i][1] == 't') {
            if (parse_int(argv[i + 1], 1, 86400, &v))
                fail(2, "-t %s: give whole seconds, 1 to 86400", argv[i + 1]);
            timeout_ms = v * 1000;
        } else {
            if (parse_int(argv[i + 1], 1, 10000000, &count))
                fail(2, "-n %s: give a count, 1 to 10000000", argv[i + 1]);
        }
        i += 2;
    }
    if (argc - i < 2 || argc - i - 2 > (int)NXIA_GM_MAX_ARGS)
        usage();
    unsigned nargs = (unsigned)(argc - i - 2);
    for (unsigned k = 0; k < nargs; k++)
        parse_arg(argv[i + 2 + k], &args[k]);

    if (use_ring && ntokens)
        fail(2, "%s: tokens belong to the broker's session, not to a ring session", "-T");
    if (use_ring) {
        rc = nxia_ring_session_open(&ring, "nxia-call", region, ring_offset, NXIA_RING_SESSION_CAP, 86400000);
        if (rc)
            fail(rc < 0 ? 3 : 64 + (rc < 64 ? rc : 0), "%s", ring.why);
        ring.link.ref_threshold = threshold;
    } else {
        rc = nxia_link_open(&broker, "nxia-call");
        if (rc)
            fail(rc < 0 ? 3 : 64 + rc, "%s", broker.why);
        broker.ref_threshold = threshold;
    }
    for (long long k = -(count / 10); k < count; k++) {    /* -n: timed repeats, after a tenth unmeasured */
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        rc = call(argv[i], argv[i + 1], args, nargs, (const uint8_t (*)[16])tokens, ntokens, (int)timeout_ms, &r);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (rc)
            break;
        if (k >= 0)
            printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
        if (k == count - 1)
            return fflush(stdout) ? 3 : 0;
    }
    if (!count)
        rc = call(argv[i], argv[i + 1], args, nargs, (const uint8_t (*)[16])tokens, ntokens, (int)timeout_ms, &r);
    if (rc < 0)
        fail(3, "%s", use_ring ? ring.why : broker.why);
    if (rc > 0) {
        fprintf(stderr, "nxia-call: %s: %.*s\n", nxia_gm_code_name(rc), (int)r.message_len, r.message ? (const char *)r.message : "");
        return 64 + (rc < 64 ? rc : 0);
    }
    print_value(&r.value);
    return fflush(stdout) ? 3 : 0;
}
