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

int nxia_link_call_t(struct nxia_link *l, const char *service, const char *method, const struct nxia_gm_value *args, unsigned nargs,
                     const uint8_t (*tokens)[16], unsigned ntokens, int timeout_ms, struct nxia_gm_frame *answer)
{
    struct nxia_gm_frame c = {.type = NXIA_GM_CALL, .service = (const uint8_t *)service, .service_len = (uint32_t)strlen(service),
                              .method = (const uint8_t *)method, .method_len = (uint32_t)strlen(method), .nargs = (uint16_t)nargs};

    struct nxia_ref lent[NXIA_GM_MAX_ARGS];
    unsigned nlent = 0;
    uint64_t copied = 0;
    int rc;

    if (nargs > NXIA_GM_MAX_ARGS)
        return failed(l, "at most 32 arguments");
    if (ntokens > NXIA_GM_MAX_TOKENS)
        return failed(l, "at most 8 tokens");
    c.ntokens = (uint8_t)ntokens;
    c.tokens = (const uint8_t *)tokens;
    for (unsigned i = 0; i < nargs; i++) {
        c.args[i] = args[i];
        if (args[i].tag == NXIA_GM_BYTES || args[i].tag == NXIA_GM_STR)
            copied += args[i].len;
    }
    for (unsigned i = 0; i < nargs; i++) {
        struct nxia_gm_value *v = &c.args[i];
        struct nxia_ref r;
        void *block;
        int err = 0;
        if (v->tag != NXIA_GM_BYTES || v->len == 0 || (v->len < l->ref_threshold && copied + 1024 <= NXIA_LINK_MAX_OUT))
            continue;
        block = link_region(l) && nxia_arena_alloc(&l->arena, v->len, &r) == NXIA_PORTAL_OK ? nxia_arena_deref(&l->arena, &r, &err) : NULL;
        if (!block) {
            if (copied + 1024 <= NXIA_LINK_MAX_OUT)
                continue;    /* no region or no free block, and it fits: copied */
            unlend(l, lent, nlent);
            return local_error(l, answer, NXIA_GM_EBAD_REF, l->has_region ? "a byte argument too large for a frame found no free block in region "
                                                        NXIA_LINK_REGION
                                                      : "a byte argument too large for a frame (24 KiB), and no region "
                                                        NXIA_LINK_REGION " to pass it by reference (virtio-pmem:region=gemini,dax=true)");
        }
        memcpy(block, v->ptr, v->len);
        lent[nlent++] = r;
        copied -= v->len;
        v->tag = NXIA_GM_REF;
        v->ref_off = r.offset;
        v->ref_len = r.length;
        v->ref_gen = r.generation;
    }
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
