/* ring-check.c - libnxia's ring sessions against a scripted broker and host (make check).
 *
 * A child process plays the broker (a Unix socket) and the host (the rings in a region file,
 * mapped whole as the host maps a file-backed region; libnxia maps it from 2 MiB on). Each mode
 * checks one outcome: calls answered; a refusal's code and message; a host that never answers
 * (the call's deadline holds); a CLOSE on the ring; a corrupt h2g index (an error, no access
 * outside the ring); the session's end when the asking link closes. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nxia_linux.h"

#define REGION_BYTES (4u << 20)

static char dir[64], sock_path[128], region_path[128];
static int failures;

#define CHECK(c, ...)                                                                    \
    do {                                                                                 \
        if (!(c)) {                                                                      \
            fprintf(stderr, "ring-check: %s:%d: ", __FILE__, __LINE__);                  \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- the scripted broker and host (the child) ---- */

static int read_full(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static uint8_t link_in[65536], ring_in[65536], out[65536];

static int link_recv(int fd, struct nxia_gm_frame *f)
{
    uint8_t l[4];
    if (read_full(fd, l, 4) < 0)
        return -1;
    uint32_t n = l[0] | l[1] << 8 | l[2] << 16 | (uint32_t)l[3] << 24;
    if (n > sizeof link_in || read_full(fd, link_in, n) < 0)
        return -1;
    return nxia_gm_decode(link_in, n, f);
}

static void link_send(int fd, const struct nxia_gm_frame *f)
{
    long n = nxia_gm_encode(f, out + 4, sizeof out - 4);
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)((uint64_t)n >> (8 * i));
    if (write(fd, out, (size_t)n + 4) != n + 4)
        _exit(9);
}

/* Attaches a ring the other side formatted: its geometry and indices from its header. */
static void attach(struct nxia_ring *r, uint8_t *mem)
{
    r->base = mem;
    memcpy(&r->cap, mem + 8, 4);
    memcpy(&r->prod, mem + 64, 8);
    memcpy(&r->cons, mem + 128, 8);
}

static void ring_send(struct nxia_ring *r, const struct nxia_gm_frame *f)
{
    long n = nxia_gm_encode(f, out, sizeof out);
    while (nxia_ring_offer(r, out, (uint32_t)n) == 0)
        usleep(100);
}

static int ring_recv(struct nxia_ring *r, struct nxia_gm_frame *f, int fd)
{
    for (;;) {
        long n = nxia_ring_poll(r, ring_in, sizeof ring_in);
        if (n >= 0)
            return nxia_gm_decode(ring_in, (uint32_t)n, f);
        if (recv(fd, link_in, sizeof link_in, MSG_DONTWAIT) == 0)
            return -1;    /* the process's link closed (what it sent before is dropped): the session ends */
        usleep(100);
    }
}

static void host(const char *mode, int listener)
{
    int fd = accept(listener, NULL, NULL);
    struct nxia_gm_frame f;
    int rfd = open(region_path, O_RDWR);
    uint8_t *region = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);

    if (fd < 0 || region == MAP_FAILED || link_recv(fd, &f) < 0 || f.type != NXIA_GM_HELLO)
        _exit(2);
    link_send(fd, &(struct nxia_gm_frame){.type = NXIA_GM_WELCOME, .version = 1, .max_frame = 24576, .session = 7});
    if (link_recv(fd, &f) < 0 || f.type != NXIA_GM_CALL || f.nargs != 7 || f.args[1].tag != NXIA_GM_I64)
        _exit(3);
    uint64_t ask = f.id;
    if (!strcmp(mode, "refuse")) {
        const char *m = "gemini.ring: the VM vm-1 does not map region rings";
        link_send(fd, &(struct nxia_gm_frame){.type = NXIA_GM_ERROR, .id = ask, .code = NXIA_GM_EBAD_ARGS,
                                              .message = (const uint8_t *)m, .message_len = (uint32_t)strlen(m)});
        link_recv(fd, &f);
        _exit(0);
    }
    struct nxia_ring rx, tx;
    attach(&rx, region + f.args[1].i64);
    attach(&tx, region + f.args[3].i64);
    if (ring_recv(&rx, &f, fd) < 0 || f.type != NXIA_GM_HELLO)
        _exit(4);
    ring_send(&tx, &(struct nxia_gm_frame){.type = NXIA_GM_WELCOME, .version = 1, .max_frame = 32764, .session = 8});
    while (ring_recv(&rx, &f, fd) == 0) {
        if (f.type != NXIA_GM_CALL)
            continue;
        if (!strcmp(mode, "silent"))
            continue;
        if (!strcmp(mode, "close")) {
            ring_send(&tx, &(struct nxia_gm_frame){.type = NXIA_GM_CLOSE, .message = (const uint8_t *)"its lifetime ran out", .message_len = 20});
            continue;
        }
        if (!strcmp(mode, "corrupt")) {
            uint64_t cons;
            memcpy(&cons, tx.base + 128, 8);
            uint64_t bad = cons + tx.cap + 8;    /* the producer index more than a ring ahead of the consumer */
            memcpy(tx.base + 64, &bad, 8);
            continue;
        }
        struct nxia_gm_frame r = {.type = NXIA_GM_RETURN, .id = f.id};
        r.value = f.nargs ? f.args[0] : (struct nxia_gm_value){.tag = NXIA_GM_NULL};
        ring_send(&tx, &r);
    }
    /* the link closed: say so to the parent through the exit status */
    _exit(!strcmp(mode, "ok") ? 42 : 0);
}

static pid_t start(const char *mode)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int l = socket(AF_UNIX, SOCK_STREAM, 0);

    unlink(sock_path);
    strcpy(a.sun_path, sock_path);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0) {
        perror("ring-check: listen");
        exit(1);
    }
    pid_t p = fork();
    if (p == 0)
        host(mode, l);
    close(l);
    return p;
}

static int finish(pid_t p)
{
    int st = 0;
    long long end = now_ms() + 5000;
    while (waitpid(p, &st, WNOHANG) == 0) {
        if (now_ms() > end) {
            kill(p, SIGKILL);
            waitpid(p, &st, 0);
            return -1;
        }
        usleep(1000);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
    struct nxia_ring_session s;
    struct nxia_gm_frame a;
    struct nxia_gm_value arg = nxia_str("over the ring");
    char link[160];
    int rc;

    snprintf(dir, sizeof dir, "/tmp/ring-check.%d", (int)getpid());
    snprintf(sock_path, sizeof sock_path, "%s/gemini.sock", dir);
    snprintf(region_path, sizeof region_path, "%s/rings.img", dir);
    snprintf(link, sizeof link, "%s/rings", dir);
    int fd = mkdir(dir, 0700) == 0 ? open(region_path, O_CREAT | O_RDWR, 0600) : -1;
    if (fd < 0 || ftruncate(fd, REGION_BYTES) < 0 || symlink(region_path, link) < 0) {
        perror("ring-check: setup");
        return 1;
    }
    close(fd);
    setenv("NXIA_GEMINI_SOCKET", sock_path, 1);
    setenv("NXIA_REGION_DIR", dir, 1);

    /* calls answered, then the session ends when the process closes it */
    pid_t p = start("ok");
    rc = nxia_ring_session_open(&s, "ring-check", "rings", NXIA_REGION_LINUX_OFFSET, 4096, 60000);
    CHECK(rc == 0, "open: %d %s", rc, s.why);
    CHECK(s.session == 8 && s.max_frame == 2044, "WELCOME read: session %llu, max_frame %u", (unsigned long long)s.session, s.max_frame);
    for (int i = 0; i < 1000 && rc == 0; i++) {
        int c = nxia_ring_session_call(&s, "text", "echo", &arg, 1, 5000, &a);
        CHECK(c == 0 && a.value.len == arg.len && !memcmp(a.value.ptr, arg.ptr, arg.len), "call %d: %d", i, c);
        if (c)
            break;
    }
    uint8_t big[4096];
    struct nxia_gm_value too_big = nxia_bytes(big, sizeof big);
    s.link.ref_threshold = UINT32_MAX;
    CHECK(nxia_ring_session_call(&s, "text", "echo", &too_big, 1, 1000, &a) == NXIA_GM_EBAD_REF,
          "an argument over the ring's frame and no region gemini: BAD_REF");
    nxia_ring_session_close(&s);
    CHECK(finish(p) == 42, "the host saw the session end with the link");

    /* the host refuses: its code and message */
    p = start("refuse");
    rc = nxia_ring_session_open(&s, "ring-check", "rings", NXIA_REGION_LINUX_OFFSET, 4096, 60000);
    CHECK(rc == NXIA_GM_EBAD_ARGS && strstr(s.why, "does not map region rings"), "refused: %d %s", rc, s.why);
    finish(p);

    /* a host that never answers: the call's deadline holds */
    p = start("silent");
    rc = nxia_ring_session_open(&s, "ring-check", "rings", NXIA_REGION_LINUX_OFFSET + 65536, 4096, 60000);
    long long t0 = now_ms();
    int c = rc ? -1 : nxia_ring_session_call(&s, "text", "echo", &arg, 1, 300, &a);
    long long took = now_ms() - t0;
    CHECK(c == NXIA_GM_ETIMEOUT && took >= 290 && took < 1500, "silent host: %d after %lld ms", c, took);
    nxia_ring_session_close(&s);
    finish(p);

    /* a CLOSE on the ring: CLOSED with the host's reason, and later calls fail at once */
    p = start("close");
    rc = nxia_ring_session_open(&s, "ring-check", "rings", NXIA_REGION_LINUX_OFFSET, 4096, 60000);
    c = rc ? -1 : nxia_ring_session_call(&s, "text", "echo", &arg, 1, 5000, &a);
    CHECK(c == NXIA_GM_ECLOSED && strstr(s.why, "its lifetime ran out"), "closed: %d %s", c, s.why);
    CHECK(nxia_ring_session_call(&s, "text", "echo", &arg, 1, 5000, &a) == NXIA_GM_ECLOSED, "closed stays closed");
    nxia_ring_session_close(&s);
    finish(p);

    /* a corrupt h2g producer index: an error, not a read outside the ring */
    p = start("corrupt");
    rc = nxia_ring_session_open(&s, "ring-check", "rings", NXIA_REGION_LINUX_OFFSET, 4096, 60000);
    c = rc ? -1 : nxia_ring_session_call(&s, "text", "echo", &arg, 1, 5000, &a);
    CHECK(c == NXIA_GM_EBAD_FRAME && strstr(s.why, "corrupt"), "corrupt ring: %d %s", c, s.why);
    nxia_ring_session_close(&s);
    finish(p);

    /* bad arguments never reach the broker */
    CHECK(nxia_ring_session_open(&s, "ring-check", "rings", NXIA_REGION_LINUX_OFFSET + 8, 4096, 1000) == -1, "misaligned offset");
    CHECK(nxia_ring_session_open(&s, "ring-check", "rings", NXIA_REGION_LINUX_OFFSET, 4095, 1000) == -1, "ring not a power of two");

    unlink(link);
    unlink(region_path);
    unlink(sock_path);
    rmdir(dir);
    if (failures)
        return 1;
    puts("ring-check: ring sessions: calls, refusal, deadline, CLOSE, corrupt ring, end with the link: ok");
    return 0;
}
