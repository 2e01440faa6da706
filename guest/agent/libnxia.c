/* libnxia.c - Gemini from Linux processes, through the agent's broker (nxia_linux.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "nxia_linux.h"

static const char *const code_names[] = {"OK", "BAD_FRAME", "VERSION", "AUTH", "NO_SERVICE", "NO_METHOD", "BAD_ARGS", "DENIED",
                                         "TOKEN", "FAILED", "CANCELLED", "TIMEOUT", "CLOSED", "RATE_LIMITED", "BUSY", "BAD_REF"};

const char *nxia_gm_code_name(unsigned code)
{
    return code < sizeof code_names / sizeof code_names[0] ? code_names[code] : "ERROR";
}

static int failed(struct nxia_link *l, const char *what)
{
    snprintf(l->why, sizeof l->why, "%s", what);
    return -1;
}

static long long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int nxia_link_send(struct nxia_link *l, const struct nxia_gm_frame *f)
{
    long n = nxia_gm_encode(f, l->out + 4, NXIA_LINK_MAX_OUT);

    if (n < 0)
        return failed(l, "the frame does not fit (24 KiB at most) or breaks a limit (64-byte names, 32 arguments, 8 tokens)");
    for (int i = 0; i < 4; i++)
        l->out[i] = (uint8_t)((uint64_t)n >> (8 * i));
    for (size_t off = 0; off < (size_t)n + 4;) {
        ssize_t w = write(l->fd, l->out + off, (size_t)n + 4 - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(l->why, sizeof l->why, "the broker stopped taking frames: %s", strerror(errno));
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

int nxia_link_fill(struct nxia_link *l)
{
    ssize_t r = recv(l->fd, l->in + l->in_len, sizeof l->in - l->in_len, MSG_DONTWAIT);

    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (r <= 0)
        return failed(l, l->in_len ? "the broker ended the connection inside a frame" : "the broker closed the connection");
    l->in_len += (uint32_t)r;
    return 0;
}

static uint32_t frame_len(const struct nxia_link *l)
{
    return l->in[0] | l->in[1] << 8 | l->in[2] << 16 | (uint32_t)l->in[3] << 24;
}

/* Drops the frame handed out last, if any. */
static void release(struct nxia_link *l)
{
    if (l->kept) {
        uint32_t n = 4 + frame_len(l);
        memmove(l->in, l->in + n, l->in_len - n);
        l->in_len -= n;
        l->kept = 0;
    }
}

int nxia_link_take(struct nxia_link *l, struct nxia_gm_frame *f)
{
    release(l);
    if (l->in_len < 4)
        return 0;
    uint32_t len = frame_len(l);
    if (len < NXIA_GM_HEADER || len > NXIA_LINK_MAX_IN)
        return failed(l, "the broker sent a frame of a bad length");
    if (l->in_len < 4 + len)
        return 0;
    if (nxia_gm_decode(l->in + 4, len, f) < 0)
        return failed(l, "the broker sent a malformed frame");
    l->kept = 1;
    return 1;
}

int nxia_link_next(struct nxia_link *l, struct nxia_gm_frame *f, int timeout_ms)
{
    long long deadline = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;

    for (;;) {
        int t = nxia_link_take(l, f);
        if (t)
            return t;
        long long left = timeout_ms < 0 ? -1 : deadline - now_ms();
        if (timeout_ms >= 0 && left <= 0)
            return 0;
        struct pollfd p = {.fd = l->fd, .events = POLLIN};
        if (poll(&p, 1, left < 0 || left > 60000 ? 60000 : (int)left) > 0 && nxia_link_fill(l) < 0)
            return -1;
    }
}

/* An ERROR answer made here, not by the host (a timeout, an argument that cannot go): its code. */
static int local_error(struct nxia_link *l, struct nxia_gm_frame *answer, uint16_t code, const char *why)
{
    snprintf(l->why, sizeof l->why, "%s", why);
    memset(answer, 0, sizeof *answer);
    answer->type = NXIA_GM_ERROR;
    answer->code = code;
    answer->message = (const uint8_t *)l->why;
    answer->message_len = (uint32_t)strlen(l->why);
    return code;
}

/* Sends a CALL and waits for its answer (frames for other ids are dropped). */
static int round_trip(struct nxia_link *l, struct nxia_gm_frame *call, int timeout_ms, struct nxia_gm_frame *answer)
{
    long long deadline = now_ms() + timeout_ms;

    call->id = ++l->next_id;
    if (nxia_link_send(l, call) < 0)
        return -1;
    for (;;) {
        long long left = deadline - now_ms();
        int got = left > 0 ? nxia_link_next(l, answer, (int)left) : 0;
        if (got < 0)
            return -1;
        if (got == 0) {
            struct nxia_gm_frame cancel = {.type = NXIA_GM_CANCEL, .id = call->id};
            char why[48];
            nxia_link_send(l, &cancel);
            snprintf(why, sizeof why, "no answer within %d ms", timeout_ms);
            return local_error(l, answer, NXIA_GM_ETIMEOUT, why);
        }
        if (answer->id == call->id && (answer->type == NXIA_GM_RETURN || answer->type == NXIA_GM_ERROR))
            return answer->type == NXIA_GM_RETURN ? 0 : (answer->code ? answer->code : NXIA_GM_EFAILED);
        /* another frame (a host call, a late answer): dropped by the next take */
    }
}

int nxia_link_open(struct nxia_link *l, const char *peer)
{
    const char *path = getenv("NXIA_GEMINI_SOCKET");
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    struct nxia_gm_frame f;

    memset(l, 0, sizeof *l);
    l->region.fd = -1;
    l->region.bell_fd = -1;
    if (!path || !*path)
        path = NXIA_BROKER_SOCKET;
    if (strlen(path) >= sizeof a.sun_path)
        return failed(l, "the broker's socket path is too long");
    strcpy(a.sun_path, path);
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l->fd < 0 || connect(l->fd, (struct sockaddr *)&a, sizeof a) < 0) {
        snprintf(l->why, sizeof l->why, "cannot reach the Gemini broker at %s: %s (is this a System VM with nxia-agent?)", path,
                 strerror(errno));
        if (l->fd >= 0)
            close(l->fd);
        l->fd = -1;
        return -1;
    }
    struct nxia_gm_frame hello = {.type = NXIA_GM_HELLO, .min_version = 1, .max_version = 1,
                                  .peer = (const uint8_t *)peer, .peer_len = (uint32_t)strnlen(peer, NXIA_GM_MAX_PEER)};
    if (nxia_link_send(l, &hello) < 0)
        return -1;
    int got = nxia_link_next(l, &f, 10000);
    if (got <= 0) {
        if (!got)
            failed(l, "the broker did not answer HELLO within 10 s");
        return -1;
    }
    if (f.type != NXIA_GM_WELCOME) {
        snprintf(l->why, sizeof l->why, "%s: %.*s", f.type == NXIA_GM_ERROR ? nxia_gm_code_name(f.code) : "refused",
                 (int)(f.message_len > 140 ? 140 : f.message_len), f.message ? (const char *)f.message : "");
        return f.type == NXIA_GM_ERROR && f.code ? f.code : NXIA_GM_EFAILED;
    }
    l->session = f.session;
    l->ref_threshold = NXIA_GM_REF_THRESHOLD;
    return 0;
}

/* Maps the link's region and attaches its arena, once it is there (the host formats the arena). */
static int link_region(struct nxia_link *l)
{
    if (l->has_region)
        return 1;
    if (!l->region.base && nxia_region_map(&l->region, NXIA_LINK_REGION, 1) < 0)
        return 0;
    l->has_region = nxia_arena_attach(&l->arena, l->region.base, l->region.len) == NXIA_PORTAL_OK;
    return l->has_region;
}

static void unlend(struct nxia_link *l, const struct nxia_ref *lent, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        nxia_arena_free(&l->arena, &lent[i]);    /* a block freed behind our back stays freed */
}

int nxia_link_deref(struct nxia_link *l, struct nxia_gm_value *v)
{
    if (v->tag != NXIA_GM_REF)
        return NXIA_GM_OK;
    return link_region(l) ? nxia_gm_deref(&l->arena, v) : NXIA_GM_EBAD_REF;
}

int nxia_link_call(struct nxia_link *l, const char *service, const char *method,
                   const struct nxia_gm_value *args, unsigned nargs, int timeout_ms, struct nxia_gm_frame *answer)
{
    return nxia_link_call_t(l, service, method, args, nargs, NULL, 0, timeout_ms, answer);
}

/*
 * Puts c's byte arguments of l->ref_threshold bytes or more, or too large for a frame of max_out
 * bytes, into blocks of the link's region as references (lent[], freed by unlend once the call
 * ends): 0, or a local error code in *answer when one cannot go either way.
 */
static int lend(struct nxia_link *l, struct nxia_gm_frame *c, uint32_t max_out, struct nxia_ref *lent, unsigned *nlent,
                struct nxia_gm_frame *answer)
{
    uint64_t copied = 0;

    for (unsigned i = 0; i < c->nargs; i++)
        if (c->args[i].tag == NXIA_GM_BYTES || c->args[i].tag == NXIA_GM_STR)
            copied += c->args[i].len;
    for (unsigned i = 0; i < c->nargs; i++) {
        struct nxia_gm_value *v = &c->args[i];
        struct nxia_ref r;
        void *block;
        int err = 0;
        if (v->tag != NXIA_GM_BYTES || v->len == 0 || (v->len < l->ref_threshold && copied + 1024 <= max_out))
            continue;
        block = link_region(l) && nxia_arena_alloc(&l->arena, v->len, &r) == NXIA_PORTAL_OK ? nxia_arena_deref(&l->arena, &r, &err) : NULL;
        if (!block) {
            if (copied + 1024 <= max_out)
                continue;    /* no region or no free block, and it fits: copied */
            unlend(l, lent, *nlent);
            *nlent = 0;
            return local_error(l, answer, NXIA_GM_EBAD_REF, l->has_region ? "a byte argument too large for a frame found no free block in region "
                                                        NXIA_LINK_REGION
                                                      : "a byte argument too large for a frame, and no region "
                                                        NXIA_LINK_REGION " to pass it by reference (virtio-pmem:region=gemini,dax=true)");
        }
        memcpy(block, v->ptr, v->len);
        lent[(*nlent)++] = r;
        copied -= v->len;
        v->tag = NXIA_GM_REF;
        v->ref_off = r.offset;
        v->ref_len = r.length;
        v->ref_gen = r.generation;
    }
    return 0;
}

/* A CALL frame of service.method with nargs arguments (checked: at most 32): 0, or -1 (l->why). */
static int call_frame(struct nxia_link *l, struct nxia_gm_frame *c, const char *service, const char *method,
                      const struct nxia_gm_value *args, unsigned nargs)
{
    if (nargs > NXIA_GM_MAX_ARGS)
        return failed(l, "at most 32 arguments");
    memset(c, 0, sizeof *c);
    c->type = NXIA_GM_CALL;
    c->service = (const uint8_t *)service;
    c->service_len = (uint32_t)strlen(service);
    c->method = (const uint8_t *)method;
    c->method_len = (uint32_t)strlen(method);
    c->nargs = (uint16_t)nargs;
    for (unsigned i = 0; i < nargs; i++)
        c->args[i] = args[i];
    return 0;
}

int nxia_link_call_t(struct nxia_link *l, const char *service, const char *method, const struct nxia_gm_value *args, unsigned nargs,
                     const uint8_t (*tokens)[16], unsigned ntokens, int timeout_ms, struct nxia_gm_frame *answer)
{
    struct nxia_gm_frame c;
    struct nxia_ref lent[NXIA_GM_MAX_ARGS];
    unsigned nlent = 0;
    int rc;

    if (call_frame(l, &c, service, method, args, nargs) < 0)
        return -1;
    if (ntokens > NXIA_GM_MAX_TOKENS)
        return failed(l, "at most 8 tokens");
    c.ntokens = (uint8_t)ntokens;
    c.tokens = (const uint8_t *)tokens;
    rc = lend(l, &c, NXIA_LINK_MAX_OUT, lent, &nlent, answer);
    if (rc)
        return rc;
    rc = round_trip(l, &c, timeout_ms, answer);
    unlend(l, lent, nlent);    /* the host read the blocks before it answered, or gave up */
    return rc;
}

int nxia_link_export(struct nxia_link *l, const char *service, const char *method, struct nxia_gm_frame *answer)
{
    struct nxia_gm_value args[2];

    args[0] = nxia_str(service);
    args[1] = nxia_str(method);
    return nxia_link_call(l, "broker", "export", args, 2, 10000, answer);
}

void nxia_link_close(struct nxia_link *l)
{
    if (l->fd >= 0) {
        struct nxia_gm_frame c = {.type = NXIA_GM_CLOSE};
        nxia_link_send(l, &c);
        close(l->fd);
    }
    l->fd = -1;
    nxia_region_unmap(&l->region);
    l->has_region = 0;
}

/* ---- Portal regions (device DAX) ------------------------------------------------------------ */

static int region_failed(struct nxia_region *r, const char *fmt, const char *a, const char *b)
{
    snprintf(r->why, sizeof r->why, fmt, a, b);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    return -1;
}

int nxia_region_map(struct nxia_region *r, const char *name, int writable)
{
    const char *dir = getenv("NXIA_REGION_DIR");
    char link[PATH_MAX], target[64], sys[96], text[32];
    struct stat st;
    ssize_t n;
    int fd;
    unsigned long long size;
    off_t from = 0;

    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->bell_fd = -1;
    if (strlen(name) == 0 || strlen(name) > 15 || strchr(name, '/'))
        return region_failed(r, "%s%s: not a Portal name", name, "");
    if (!dir || !*dir)
        dir = NXIA_REGION_DIR;
    if ((size_t)snprintf(link, sizeof link, "%s/%s", dir, name) >= sizeof link)
        return region_failed(r, "%s/%s: too long a path", dir, name);
    n = readlink(link, target, sizeof target - 1);
    if (n < 0)
        return region_failed(r, "no region %s in this VM (%s: the profile shows it with virtio-pmem:region=NAME,dax=true)",
                             name, strerror(errno));
    target[n] = '\0';
    snprintf(r->device, sizeof r->device, "%s", target);
    r->fd = open(link, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (r->fd < 0 || fstat(r->fd, &st) < 0)
        return region_failed(r, "%s: %s", target, strerror(errno));
    if (S_ISREG(st.st_mode)) {
        /* a file-backed region as the host maps it: Linux's view from 2 MiB on */
        if ((unsigned long long)st.st_size <= NXIA_REGION_LINUX_OFFSET)
            return region_failed(r, "%s: a region file of %s 2 MiB or less", target, "");
        size = (unsigned long long)st.st_size - NXIA_REGION_LINUX_OFFSET;
        from = (off_t)NXIA_REGION_LINUX_OFFSET;
    } else if (S_ISCHR(st.st_mode) && strncmp(target, "/dev/dax", 8) == 0 && !strchr(target + 5, '/')) {
        snprintf(sys, sizeof sys, "/sys/bus/dax/devices/%s/size", target + 5);
        fd = open(sys, O_RDONLY | O_CLOEXEC);
        n = fd < 0 ? -1 : read(fd, text, sizeof text - 1);
        if (fd >= 0)
            close(fd);
        if (n <= 0)
            return region_failed(r, "%s: %s", sys, strerror(errno));
        text[n] = '\0';
        size = strtoull(text, NULL, 10);
        if (size == 0)
            return region_failed(r, "%s: size %s", target, text);
    } else {
        return region_failed(r, "region %s is %s, a block device: show it with virtio-pmem:region=NAME,dax=true to map it", name,
                             target);
    }
    void *p = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, r->fd, from);
    if (p == MAP_FAILED)
        return region_failed(r, "mmap %s: %s", target, strerror(errno));
    r->base = p;
    r->len = size;
    r->offset = NXIA_REGION_LINUX_OFFSET;
    return 0;
}

void *nxia_region_at(const struct nxia_region *r, uint64_t at, uint64_t len)
{
    if (!r->base || at < r->offset || at - r->offset > r->len || len > r->len - (at - r->offset))
        return NULL;
    return r->base + (at - r->offset);
}

/* The region's doorbell count: /sys/bus/nd/devices/regionN lives under its virtio device, two levels up. */
static int open_doorbell(struct nxia_region *r)
{
    char nd[64], dev[PATH_MAX], bell[PATH_MAX + 16];
    int id;

    if (sscanf(r->device, "/dev/dax%d.", &id) != 1) {
        snprintf(r->why, sizeof r->why, "%s has no doorbell: only a device-DAX region does", r->device);
        return -1;
    }
    snprintf(nd, sizeof nd, "/sys/bus/nd/devices/region%d", id);
    if (!realpath(nd, dev)) {
        snprintf(r->why, sizeof r->why, "%s: %s", nd, strerror(errno));
        return -1;
    }
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(dev, '/');
        if (!slash || slash == dev) {
            snprintf(r->why, sizeof r->why, "%s is not under a virtio device", nd);
            return -1;
        }
        *slash = '\0';
    }
    snprintf(bell, sizeof bell, "%s/doorbell", dev);
    r->bell_fd = open(bell, O_RDONLY | O_CLOEXEC);
    if (r->bell_fd < 0) {
        snprintf(r->why, sizeof r->why, "%.60s: %s (a kernel without NXIA's virtio-pmem doorbell)", bell + (strlen(bell) > 60 ? strlen(bell) - 60 : 0), strerror(errno));
        return -1;
    }
    return 0;
}

static int read_doorbell(struct nxia_region *r, uint64_t *count)
{
    char text[32];
    ssize_t n = pread(r->bell_fd, text, sizeof text - 1, 0);

    if (n <= 0) {
        snprintf(r->why, sizeof r->why, "reading the doorbell count: %s", n < 0 ? strerror(errno) : "empty");
        return -1;
    }
    text[n] = '\0';
    *count = strtoull(text, NULL, 10);
    return 0;
}

int nxia_region_wait(struct nxia_region *r, uint64_t *seen, int timeout_ms)
{
    long long deadline = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;
    uint64_t count;

    if (r->bell_fd < 0 && open_doorbell(r) < 0)
        return -1;
    for (;;) {
        if (read_doorbell(r, &count) < 0)    /* reading arms the next notification */
            return -1;
        if (count != *seen) {
            *seen = count;
            return 1;
        }
        long long left = timeout_ms < 0 ? -1 : deadline - now_ms();
        if (timeout_ms >= 0 && left <= 0)
            return 0;
        struct pollfd p = {.fd = r->bell_fd, .events = POLLPRI | POLLERR};
        if (poll(&p, 1, left < 0 || left > 60000 ? 60000 : (int)left) < 0 && errno != EINTR) {
            snprintf(r->why, sizeof r->why, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

void nxia_region_unmap(struct nxia_region *r)
{
    if (r->base)
        munmap(r->base, r->len);
    if (r->fd >= 0)
        close(r->fd);
    if (r->bell_fd >= 0)
        close(r->bell_fd);
    r->base = NULL;
    r->fd = -1;
    r->bell_fd = -1;
}

/* ---- Ring sessions (docs/gemini-protocol.md, "Ring sessions") ------------------------------- */

static int ring_failed(struct nxia_ring_session *s, int rc, const char *why)
{
    snprintf(s->why, sizeof s->why, "%s", why);
    return rc;
}

static long long now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * Whether the host answered the call that holds the session (it refused it, or the session
 * ended): then s->why says why and s->closed is set. Frames of other ids are dropped.
 */
static int ring_ended(struct nxia_ring_session *s)
{
    struct nxia_gm_frame f;
    int got;

    if (s->closed)
        return 1;
    if (nxia_link_fill(&s->link) < 0) {
        s->closed = NXIA_GM_ECLOSED;
        return ring_failed(s, 1, s->link.why);
    }
    while ((got = nxia_link_take(&s->link, &f)) == 1) {
        if (f.id != s->ask_id || (f.type != NXIA_GM_RETURN && f.type != NXIA_GM_ERROR))
            continue;
        const uint8_t *m = f.type == NXIA_GM_ERROR ? f.message : f.value.ptr;
        uint32_t n = f.type == NXIA_GM_ERROR ? f.message_len : (f.value.tag == NXIA_GM_STR ? f.value.len : 0);
        snprintf(s->why, sizeof s->why, "%s%.*s", f.type == NXIA_GM_ERROR ? "the host refused the ring session: " : "",
                 (int)(n > 150 ? 150 : n), m ? (const char *)m : "");
        s->closed = f.type == NXIA_GM_ERROR && f.code ? f.code : NXIA_GM_ECLOSED;
        return 1;
    }
    if (got < 0) {
        s->closed = NXIA_GM_ECLOSED;
        return ring_failed(s, 1, s->link.why);
    }
    return 0;
}

/*
 * The next frame on the h2g ring by deadline_ns: 1 with *f (pointing into s->rxbuf), 0 at the
 * deadline, -1 when the ring broke or the session ended (s->why, s->closed). Spins 50 us, then
 * sleeps on the region's doorbell (guest_sleeping set) in slices of at most 10 ms, looking at
 * the link between them; without a doorbell it sleeps 50 us doubling to 1 ms.
 */
static int ring_next(struct nxia_ring_session *s, long long deadline_ns, struct nxia_gm_frame *f)
{
    long long idle = 0;
    long pause_ns = 50000;

    for (;;) {
        long n = nxia_ring_poll(&s->rx, s->rxbuf, s->max_frame);
        if (n == -1 && idle && s->bell) {
            __atomic_store_n(&s->ctl[1], 1u, __ATOMIC_SEQ_CST);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);    /* pairs with the host's fence between publishing and reading it */
            n = nxia_ring_poll(&s->rx, s->rxbuf, s->max_frame);
            if (n == -1) {
                long long left = (deadline_ns - now_ns()) / 1000000;
                if (nxia_region_wait(&s->region, &s->bell_seen, left < 0 ? 0 : left > 10 ? 10 : (int)left + 1) < 0)
                    s->bell = 0;    /* no doorbell after all: poll */
            }
            __atomic_store_n(&s->ctl[1], 0u, __ATOMIC_SEQ_CST);
            if (n == -1)
                n = nxia_ring_poll(&s->rx, s->rxbuf, s->max_frame);
        }
        if (n >= 0) {
            if (nxia_gm_decode(s->rxbuf, (uint32_t)n, f) < 0) {
                s->closed = NXIA_GM_EBAD_FRAME;
                return ring_failed(s, -1, "the host sent a malformed frame on the ring");
            }
            if (f->type == NXIA_GM_CLOSE) {
                snprintf(s->why, sizeof s->why, "the host closed the ring session: %.*s", (int)(f->message_len > 120 ? 120 : f->message_len),
                         f->message ? (const char *)f->message : "");
                s->closed = NXIA_GM_ECLOSED;
                return -1;
            }
            return 1;
        }
        if (n < -1) {
            s->closed = NXIA_GM_EBAD_FRAME;
            return ring_failed(s, -1, "the h2g ring is corrupt, or holds a frame over max_frame");
        }
        long long now = now_ns();
        if (now - deadline_ns >= 0)
            return 0;
        if (!idle) {
            idle = now;
            continue;
        }
        if (now - idle < 50000) {
            __builtin_ia32_pause();
            continue;
        }
        if (ring_ended(s))
            return -1;
        if (!s->bell) {
            struct timespec t = {0, pause_ns};
            nanosleep(&t, NULL);
            pause_ns = pause_ns * 2 > 1000000 ? 1000000 : pause_ns * 2;
        }
    }
}

/* Puts frame f on the g2h ring by deadline_ns (the host polls it): 0, NXIA_GM_EBUSY at the deadline, -1 if it cannot go. */
static int ring_send(struct nxia_ring_session *s, const struct nxia_gm_frame *f, long long deadline_ns)
{
    long n = nxia_gm_encode(f, s->txbuf, s->max_frame);
    long pause_ns = 50000;

    if (n < 0)
        return ring_failed(s, -1, "the frame does not fit the ring or breaks a limit (64-byte names, 32 arguments)");
    for (;;) {
        int r = nxia_ring_offer(&s->tx, s->txbuf, (uint32_t)n);
        if (r == 1)
            return 0;
        if (r < 0) {
            s->closed = NXIA_GM_EBAD_FRAME;
            return ring_failed(s, -1, "the g2h ring is corrupt");
        }
        if (now_ns() - deadline_ns >= 0)
            return ring_failed(s, NXIA_GM_EBUSY, "the host took no frame from the ring by the deadline");
        if (ring_ended(s))
            return -1;
        struct timespec t = {0, pause_ns};
        nanosleep(&t, NULL);
        pause_ns = pause_ns * 2 > 1000000 ? 1000000 : pause_ns * 2;
    }
}

int nxia_ring_session_open(struct nxia_ring_session *s, const char *peer, const char *region, uint64_t offset, uint32_t ring_cap,
                           int lifetime_ms)
{
    struct nxia_gm_frame f;
    struct nxia_gm_value args[7];
    uint8_t *base;
    int rc;

    memset(s, 0, sizeof *s);
    s->region.fd = -1;
    s->region.bell_fd = -1;
    if (ring_cap < 4096 || ring_cap > (1u << 30) || (ring_cap & (ring_cap - 1)) || (offset & 63) || lifetime_ms < 1)
        return ring_failed(s, -1, "a ring session needs rings of a power of two from 4096 to 2^30 bytes, a 64-byte aligned offset and a lifetime");
    rc = nxia_link_open(&s->link, peer);
    if (rc) {
        ring_failed(s, rc, s->link.why);
        nxia_link_close(&s->link);
        return rc;
    }
    if (nxia_region_map(&s->region, region, 1) < 0) {
        snprintf(s->why, sizeof s->why, "%s", s->region.why);
        nxia_link_close(&s->link);
        return -1;
    }
    base = nxia_region_at(&s->region, offset, NXIA_RING_SESSION_SIZE(ring_cap));
    s->max_frame = ring_cap / 2 - 4;
    s->rxbuf = base ? malloc(s->max_frame) : NULL;
    s->txbuf = base ? malloc(s->max_frame) : NULL;
    if (!s->rxbuf || !s->txbuf) {
        nxia_ring_session_close(s);
        return ring_failed(s, -1, base ? "out of memory for the ring session's buffers" : "the rings do not fit the region's mapped part there");
    }
    s->ctl = (volatile uint32_t *)base;
    memset(base, 0, NXIA_RING_SESSION_CTL);
    uint8_t *g2h = base + NXIA_RING_SESSION_CTL, *h2g = g2h + NXIA_RING_DATA + ring_cap;
    if (nxia_ring_format(&s->tx, g2h, ring_cap) || nxia_ring_format(&s->rx, h2g, ring_cap)) {
        nxia_ring_session_close(s);
        return ring_failed(s, -1, "cannot format the rings");
    }
    s->bell = nxia_region_wait(&s->region, &s->bell_seen, 0) >= 0;    /* learns the count, or that there is no doorbell */
    s->next_id = 0;
    struct nxia_gm_frame hello = {.type = NXIA_GM_HELLO, .min_version = 1, .max_version = 1,
                                  .peer = (const uint8_t *)peer, .peer_len = (uint32_t)strnlen(peer, NXIA_GM_MAX_PEER)};
    if (ring_send(s, &hello, now_ns()) != 0) {    /* an empty ring takes it at once; the host reads it once it attached */
        nxia_ring_session_close(s);
        return -1;
    }
    uint64_t g = offset + NXIA_RING_SESSION_CTL, h = g + NXIA_RING_DATA + ring_cap;
    args[0] = nxia_str(region);
    args[1] = nxia_i64((int64_t)g);
    args[2] = nxia_i64(NXIA_RING_DATA + (int64_t)ring_cap);
    args[3] = nxia_i64((int64_t)h);
    args[4] = nxia_i64(NXIA_RING_DATA + (int64_t)ring_cap);
    args[5] = nxia_i64((int64_t)offset);
    args[6] = nxia_i64(lifetime_ms);
    rc = call_frame(&s->link, &f, "gemini", "ring", args, 7);
    f.id = s->ask_id = ++s->link.next_id;    /* the broker forwards it and holds it open: no answer until the session ends */
    if (rc < 0 || nxia_link_send(&s->link, &f) < 0) {
        snprintf(s->why, sizeof s->why, "%s", s->link.why);
        nxia_ring_session_close(s);
        return -1;
    }
    int got = ring_next(s, now_ns() + 10000000000LL, &f);
    if (got == 1 && f.type == NXIA_GM_WELCOME && f.version == NXIA_GM_VERSION) {
        s->session = f.session;
        if (f.max_frame && f.max_frame < s->max_frame)
            s->max_frame = f.max_frame;
        return 0;
    }
    rc = got == 1 ? NXIA_GM_EVERSION : s->closed ? s->closed : NXIA_GM_ETIMEOUT;
    if (got == 1)
        snprintf(s->why, sizeof s->why, "the host answered HELLO on the ring with frame type %u", f.type);
    else if (got == 0)
        snprintf(s->why, sizeof s->why, "no WELCOME on the ring within 10 s");
    char why[sizeof s->why];
    memcpy(why, s->why, sizeof why);
    nxia_ring_session_close(s);
    memcpy(s->why, why, sizeof why);
    return rc;
}

int nxia_ring_session_call(struct nxia_ring_session *s, const char *service, const char *method, const struct nxia_gm_value *args,
                           unsigned nargs, int timeout_ms, struct nxia_gm_frame *answer)
{
    struct nxia_gm_frame c;
    struct nxia_ref lent[NXIA_GM_MAX_ARGS];
    unsigned nlent = 0;
    long long deadline = now_ns() + (long long)timeout_ms * 1000000LL;
    int rc;

    if (s->closed) {
        local_error(&s->link, answer, NXIA_GM_ECLOSED, s->why);
        return NXIA_GM_ECLOSED;
    }
    if (call_frame(&s->link, &c, service, method, args, nargs) < 0)
        return ring_failed(s, -1, s->link.why);
    rc = lend(&s->link, &c, s->max_frame, lent, &nlent, answer);
    if (rc)
        return rc;
    c.id = ++s->next_id;
    rc = ring_send(s, &c, deadline);
    if (rc) {
        unlend(&s->link, lent, nlent);
        if (rc > 0)
            local_error(&s->link, answer, (uint16_t)rc, s->why);
        return rc;
    }
    for (;;) {
        int got = ring_next(s, deadline, answer);
        if (got < 0) {
            rc = s->closed ? local_error(&s->link, answer, (uint16_t)s->closed, s->why) : -1;
            break;
        }
        if (got == 0) {
            struct nxia_gm_frame cancel = {.type = NXIA_GM_CANCEL, .id = c.id};
            char why[48];
            ring_send(s, &cancel, now_ns() + 20000000LL);
            snprintf(why, sizeof why, "no answer within %d ms", timeout_ms);
            rc = local_error(&s->link, answer, NXIA_GM_ETIMEOUT, why);
            break;
        }
        if (answer->type == NXIA_GM_CALL) {    /* a ring session serves nothing */
            struct nxia_gm_frame no = {.type = NXIA_GM_ERROR, .id = answer->id, .code = NXIA_GM_ENO_SERVICE,
                                       .message = (const uint8_t *)"a ring session serves no functions", .message_len = 34};
            ring_send(s, &no, now_ns() + 20000000LL);
            continue;
        }
        if (answer->id == c.id && (answer->type == NXIA_GM_RETURN || answer->type == NXIA_GM_ERROR)) {
            rc = answer->type == NXIA_GM_RETURN ? 0 : (answer->code ? answer->code : NXIA_GM_EFAILED);
            break;
        }
    }
    unlend(&s->link, lent, nlent);    /* the host read the blocks before it answered, or gave up */
    return rc;
}

void nxia_ring_session_close(struct nxia_ring_session *s)
{
    if (s->ctl && !s->closed && s->txbuf) {
        struct nxia_gm_frame bye = {.type = NXIA_GM_CLOSE};
        ring_send(s, &bye, now_ns());
    }
    nxia_link_close(&s->link);    /* the broker cancels the call that holds the session: the host lets go of the rings */
    nxia_region_unmap(&s->region);
    free(s->rxbuf);
    free(s->txbuf);
    s->rxbuf = s->txbuf = NULL;
    s->ctl = NULL;
    s->closed = s->closed ? s->closed : NXIA_GM_ECLOSED;
}
