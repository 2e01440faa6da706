/* nxia-call - call a host service from a System VM's shell, through the
 * agent's Gemini broker (docs/linux-vm.md, "Calling the host").
 *
 *   nxia-call [-t SECONDS] SERVICE METHOD [ARG...]
 *
 * Each ARG is a string, or typed as in gemini:call: i32:N, i64:N, f64:X,
 * bool:true|false, null, str:TEXT, bytes:HEX, or @FILE / @- for bytes read
 * from a file / standard input. The result goes to standard output: a string
 * or a number with a newline, bytes as they are. Exit status: 0 on success,
 * 2 for a bad command line, 3 when the broker cannot be reached or breaks the
 * protocol, 64 + the Gemini error code when the call fails (71 DENIED,
 * 75 TIMEOUT, 76 CLOSED...; docs/gemini-protocol.md, "Errors"). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "nxia_gemini.h"

#define MAX_FRAME 32764u      /* what the broker may send */
#define CLIENT_FRAME 24576u   /* what it takes (its WELCOME says so) */

static const char *const codes[] = {"OK", "BAD_FRAME", "VERSION", "AUTH", "NO_SERVICE", "NO_METHOD", "BAD_ARGS", "DENIED",
                                    "TOKEN", "FAILED", "CANCELLED", "TIMEOUT", "CLOSED", "RATE_LIMITED", "BUSY", "BAD_REF"};
static uint8_t out[4 + MAX_FRAME], in[4 + MAX_FRAME];
static uint8_t data[CLIENT_FRAME];
static size_t data_used;

static void usage(void)
{
    fprintf(stderr, "usage: nxia-call [-t SECONDS] SERVICE METHOD [ARG...]\n"
                    "  ARG: TEXT | str:TEXT | i32:N | i64:N | f64:X | bool:true|false | null | bytes:HEX | @FILE | @-\n"
                    "  the broker's socket: $NXIA_GEMINI_SOCKET, else " BROKER_SOCKET "\n");
    exit(2);
}

static _Noreturn void fail(int status, const char *fmt, const char *arg)
{
    fprintf(stderr, "nxia-call: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(status);
}

static long long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
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

static void read_bytes(const char *file, struct nxia_gm_value *v)
{
    int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : 0;
    size_t start = data_used;
    ssize_t n;

    if (fd < 0)
        fail(2, "%s: cannot open", file);
    while ((n = read(fd, data + data_used, sizeof data - data_used)) > 0)
        data_used += (size_t)n;
    if (n < 0)
        fail(2, "%s: cannot read", file);
    if (data_used == sizeof data && read(fd, &(uint8_t){0}, 1) > 0)
        fail(2, "%s: too large to copy in one frame (24 KiB at most)", file);
    if (fd)
        close(fd);
    v->tag = NXIA_GM_BYTES;
    v->ptr = data + start;
    v->len = (uint32_t)(data_used - start);
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

static void send_frame(int fd, const struct nxia_gm_frame *f)
{
    long n = nxia_gm_encode(f, out + 4, CLIENT_FRAME);

    if (n < 0)
        fail(2, "%s: the call does not fit one frame (24 KiB) or breaks a limit (64-byte names, 32 arguments)", "call");
    out[0] = (uint8_t)n; out[1] = (uint8_t)(n >> 8); out[2] = (uint8_t)(n >> 16); out[3] = (uint8_t)(n >> 24);
    for (size_t off = 0; off < (size_t)n + 4;) {
        ssize_t w = write(fd, out + off, (size_t)n + 4 - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            fail(3, "the broker stopped taking frames: %s", strerror(errno));
        off += (size_t)w;
    }
}

/* Reads one frame by the deadline; its length, or -1 at the deadline. */
static long recv_frame(int fd, long long deadline)
{
    size_t got = 0, need = 4;

    while (got < need) {
        long long left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0)
            return -1;
        if (poll(&p, 1, (int)(left > 60000 ? 60000 : left)) <= 0)
            continue;
        ssize_t r = read(fd, in + got, need - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            fail(3, "%s", got ? "the broker ended the connection inside a frame" : "the broker closed the connection");
        got += (size_t)r;
        if (got == 4) {
            uint32_t len = in[0] | in[1] << 8 | in[2] << 16 | (uint32_t)in[3] << 24;
            if (len < NXIA_GM_HEADER || len > MAX_FRAME)
                fail(3, "%s", "the broker sent a frame of a bad length");
            need = 4 + len;
        }
    }
    return (long)need - 4;
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

int main(int argc, char **argv)
{
    const char *path = getenv("NXIA_GEMINI_SOCKET");
    long long timeout_ms = 30000;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    struct nxia_gm_frame f, r;
    int i = 1;

    if (argc > 2 && !strcmp(argv[1], "-t")) {
        long long s;
        if (parse_int(argv[2], 1, 86400, &s))
            fail(2, "-t %s: give whole seconds, 1 to 86400", argv[2]);
        timeout_ms = s * 1000;
        i = 3;
    }
    if (argc - i < 2 || argc - i - 2 > (int)NXIA_GM_MAX_ARGS)
        usage();
    if (!path || !*path)
        path = BROKER_SOCKET;
    if (strlen(path) >= sizeof a.sun_path)
        fail(2, "%s: socket path too long", path);
    strcpy(a.sun_path, path);

    memset(&f, 0, sizeof f);
    f.type = NXIA_GM_CALL;
    f.id = 1;
    f.service = (const uint8_t *)argv[i];
    f.service_len = (uint32_t)strlen(argv[i]);
    f.method = (const uint8_t *)argv[i + 1];
    f.method_len = (uint32_t)strlen(argv[i + 1]);
    f.nargs = (uint16_t)(argc - i - 2);
    for (unsigned k = 0; k < f.nargs; k++)
        parse_arg(argv[i + 2 + k], &f.args[k]);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        fail(3, "cannot reach the Gemini broker: %s (is this a System VM with nxia-agent?)", strerror(errno));

    long long deadline = now_ms() + timeout_ms;
    struct nxia_gm_frame hello = {.type = NXIA_GM_HELLO, .min_version = 1, .max_version = 1,
                                  .peer = (const uint8_t *)"nxia-call", .peer_len = 9};
    send_frame(fd, &hello);
    long n = recv_frame(fd, deadline);
    if (n < 0)
        fail(64 + NXIA_GM_ETIMEOUT, "%s", "no answer to HELLO in time");
    if (nxia_gm_decode(in + 4, (uint32_t)n, &r) < 0)
        fail(3, "%s", "the broker sent a malformed frame");
    if (r.type == NXIA_GM_ERROR) {
        fprintf(stderr, "nxia-call: %s: %.*s\n", r.code < 16 ? codes[r.code] : "ERROR", (int)r.message_len, r.message);
        return 64 + (r.code < 64 ? r.code : 0);
    }
    if (r.type != NXIA_GM_WELCOME)
        fail(3, "%s", "the broker did not answer HELLO with WELCOME");

    send_frame(fd, &f);
    for (;;) {
        n = recv_frame(fd, deadline);
        if (n < 0) {
            struct nxia_gm_frame cancel = {.type = NXIA_GM_CANCEL, .id = 1};
            send_frame(fd, &cancel);
            fail(64 + NXIA_GM_ETIMEOUT, "no answer within %s (-t)", "the time limit");
        }
        if (nxia_gm_decode(in + 4, (uint32_t)n, &r) < 0)
            fail(3, "%s", "the broker sent a malformed frame");
        if (r.id != 1)
            continue;
        if (r.type == NXIA_GM_RETURN) {
            print_value(&r.value);
            return fflush(stdout) ? 3 : 0;
        }
        if (r.type == NXIA_GM_ERROR) {
            fprintf(stderr, "nxia-call: %s: %.*s\n", r.code < 16 ? codes[r.code] : "ERROR", (int)r.message_len, r.message);
            return 64 + (r.code < 64 ? r.code : 0);
        }
    }
}
