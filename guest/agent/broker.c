/* broker.c - the System VM's Gemini broker (broker.h).
 *
 * Clients (Linux processes, through libnxia or nxia-call) connect to a Unix
 * socket and speak Gemini in the stream framing: u32 little-endian length,
 * then the frame. The broker answers their HELLO itself, forwards their CALL
 * and CANCEL frames to the host under ids of its own, with the caller's
 * identity put in front of the CALL's body (flag CALLER: u32 uid, u32 gid,
 * u32 pid, str exe), and hands the host's RETURN and ERROR back to the
 * client that called, under the client's id. The identity comes from the
 * kernel when the client connects (SO_PEERCRED, /proc/PID/exe), never from
 * the client.
 *
 * The other way, a client serves functions to the host: it calls the
 * broker's own service "broker", method "export" (service, method), and the
 * broker forwards the host's CALLs of that function to it under ids of its
 * own, and its RETURN or ERROR back to the host. Everything a client sends is
 * checked before use; a client that misbehaves loses its connection, never
 * the agent or the other clients. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "broker.h"

#define GM_HEADER        16u
#define GM_MAX_FRAME     32764u   /* the stream framing's limit, host and broker */
#define CLIENT_MAX_FRAME 24576u   /* a client's: leaves room for the caller block (16 + exe) */
#define MAX_EXE          4095u
#define MAX_CALLS        64       /* in flight, all clients: the host session's own limit */
#define MAX_CALLS_CLIENT 16       /* in flight, one client: one process cannot take them all */
#define OUT_CAP          (2 * (4 + GM_MAX_FRAME))  /* queued for a client that reads slowly */
#define HOST_TIMEOUT_S   2        /* connect, HELLO/WELCOME and each send to the host */
#define MAX_EXPORTS      64       /* functions served to the host, all clients */
#define MAX_EXPORTS_CLIENT 16     /* ... by one client */
#define MAX_SERVED       64       /* host calls in flight to serving clients */
#define MAX_NAME         64u

enum { HELLO = 1, WELCOME, CALL, RETURN, ERROR, CANCEL, CLOSE };
enum { E_BAD_FRAME = 1, E_VERSION = 2, E_AUTH = 3, E_NO_SERVICE = 4, E_BAD_ARGS = 6, E_CANCELLED = 10, E_CLOSED = 12, E_BUSY = 14 };
enum { T_NULL = 0, T_STR = 5 };
#define F_CALLER 1u

struct client {
    int fd;                       /* -1: free */
    unsigned gen;                 /* which connection the slot holds */
    int hello;                    /* said HELLO */
    int calls;                    /* in flight */
    int stalled;                  /* its next frame is a CALL that waits for broker_hold(0) */
    uint32_t uid, gid, pid;
    uint32_t exe_len;
    char exe[MAX_EXE + 1];
    uint32_t rlen, olen;
    uint8_t rbuf[4 + GM_MAX_FRAME];
    uint8_t obuf[OUT_CAP];
};

struct call {
    struct client *client;        /* NULL: free */
    unsigned gen;
    uint64_t client_id, host_id;
};

/* A function a client serves to the host. */
struct export {
    struct client *client;        /* NULL: free */
    unsigned gen;
    uint32_t service_len, method_len;
    uint8_t service[MAX_NAME], method[MAX_NAME];
};

/* A host call in flight to the client serving it. */
struct served {
    struct client *client;        /* NULL: free */
    unsigned gen;
    uint64_t host_id, client_id;
};

static struct export exports[MAX_EXPORTS];
static struct served served[MAX_SERVED];
static uint64_t next_client_id;
static struct client clients[BROKER_MAX_CLIENTS];
static struct call calls[MAX_CALLS];
static unsigned client_gen;
static uint64_t next_host_id;
static int listen_fd = -1, host_fd = -1;
static int held;                  /* broker_hold: no new calls either way */
static uint64_t host_session;
static uint32_t host_rlen;
static uint8_t host_rbuf[4 + GM_MAX_FRAME];
static uint8_t frame[4 + GM_MAX_FRAME];
static const char *sock_path, *host_path;
static unsigned host_port;

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

/* A 16-byte header at p (after the 4-byte length). */
static void header(uint8_t *p, uint8_t type, uint16_t flags, uint64_t id)
{
    p[0] = type;
    p[1] = 1;
    put16(p + 2, flags);
    put32(p + 4, 0);
    put64(p + 8, id);
}

static int write_all(int fd, const uint8_t *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static void drop_client(struct client *c);

/* Writes what the client's socket takes of its queue now; -1 if that dropped the client. */
static int flush_client(struct client *c)
{
    ssize_t w = write(c->fd, c->obuf, c->olen);

    if (w < 0 && errno != EAGAIN && errno != EINTR) {
        drop_client(c);
        return -1;
    }
    if (w > 0) {
        memmove(c->obuf, c->obuf + w, c->olen - (size_t)w);
        c->olen -= (uint32_t)w;
    }
    return 0;
}

/* An ERROR frame, length prefix included, into b (room for a 256-byte message); its size, or 0 if msg is longer. */
static uint32_t error_frame(uint8_t *b, uint64_t id, uint16_t code, const char *msg)
{
    uint32_t m = (uint32_t)strlen(msg), len = GM_HEADER + 2 + 4 + m;

    if (m > 256)
        return 0;
    put32(b, len);
    header(b + 4, ERROR, 0, id);
    put16(b + 4 + GM_HEADER, code);
    put32(b + 4 + GM_HEADER + 2, m);
    memcpy(b + 4 + GM_HEADER + 6, msg, m);
    return 4 + len;
}

/* Queues a whole frame (length prefix included) for c and writes what the
 * socket takes now; a client that lets OUT_CAP pile up is dropped. */
static void to_client(struct client *c, const uint8_t *b, uint32_t n)
{
    if (c->olen + n > OUT_CAP) {
        drop_client(c);
        return;
    }
    memcpy(c->obuf + c->olen, b, n);
    c->olen += n;
    flush_client(c);
}

static void error_to_client(struct client *c, uint64_t id, uint16_t code, const char *msg)
{
    uint8_t b[4 + GM_HEADER + 6 + 256];    /* every message here is under 256 bytes */
    uint32_t n = error_frame(b, id, code, msg);

    if (n)
        to_client(c, b, n);
}

static int to_host(const uint8_t *b, uint32_t n);
static void client_call_host(struct client *c, const uint8_t *f, uint32_t len, uint64_t id);

static void error_to_host(uint64_t id, uint16_t code, const char *msg)
{
    uint8_t b[4 + GM_HEADER + 6 + 256];
    uint32_t n = error_frame(b, id, code, msg);

    if (n && host_fd >= 0)
        to_host(b, n);
}

static struct call *find_call(struct client *c, uint64_t client_id)
{
    for (int i = 0; i < MAX_CALLS; i++)
        if (calls[i].client == c && calls[i].gen == c->gen && calls[i].client_id == client_id)
            return &calls[i];
    return NULL;
}

static void free_call(struct call *k)
{
    if (k->client && k->client->gen == k->gen)
        k->client->calls--;
    k->client = NULL;
}

/* The client is gone: its calls are cancelled at the host, their answers dropped. */
static void drop_client(struct client *c)
{
    uint8_t b[4 + GM_HEADER];

    if (c->fd < 0)
        return;
    for (int i = 0; i < MAX_CALLS; i++)
        if (calls[i].client == c && calls[i].gen == c->gen) {
            put32(b, GM_HEADER);
            header(b + 4, CANCEL, 0, calls[i].host_id);
            if (host_fd >= 0)
                to_host(b, sizeof b);
            free_call(&calls[i]);
        }
    for (int i = 0; i < MAX_SERVED; i++)
        if (served[i].client == c && served[i].gen == c->gen) {
            char msg[80];
            snprintf(msg, sizeof msg, "the serving process (pid %u) ended", c->pid);
            served[i].client = NULL;
            error_to_host(served[i].host_id, E_CLOSED, msg);
        }
    for (int i = 0; i < MAX_EXPORTS; i++)
        if (exports[i].client == c)
            exports[i].client = NULL;
    close(c->fd);
    c->fd = -1;
    c->gen = ++client_gen;
}

/* The host session ended: every call in flight fails CLOSED; the next call
 * connects again. */
static void drop_host(const char *why)
{
    char msg[256];

    if (host_fd >= 0)
        close(host_fd);
    host_fd = -1;
    host_rlen = 0;
    snprintf(msg, sizeof msg, "the host's Gemini session ended: %s", why);
    for (int i = 0; i < MAX_SERVED; i++)    /* no one is left to answer: the serving clients are told to stop */
        if (served[i].client) {
            struct client *c = served[i].client;
            uint8_t b[4 + GM_HEADER];
            int live = c->gen == served[i].gen && c->fd >= 0;
            served[i].client = NULL;
            if (live) {
                put32(b, GM_HEADER);
                header(b + 4, CANCEL, 0, served[i].client_id);
                to_client(c, b, sizeof b);
            }
        }
    for (int i = 0; i < MAX_CALLS; i++)
        if (calls[i].client) {
            struct client *c = calls[i].client;
            int live = c->gen == calls[i].gen && c->fd >= 0;
            uint64_t id = calls[i].client_id;
            free_call(&calls[i]);
            if (live)
                error_to_client(c, id, E_CLOSED, msg);
        }
}

static int to_host(const uint8_t *b, uint32_t n)
{
    if (write_all(host_fd, b, n) < 0) {
        drop_host(errno == EAGAIN ? "the host took no frame for 2 s" : strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads one whole frame from the host into host_rbuf, blocking up to the
 * socket's timeout: only during the HELLO/WELCOME exchange. */
static int read_frame_blocking(int fd, uint32_t *len)
{
    uint32_t got = 0, need = 4;

    while (got < need) {
        ssize_t r = read(fd, host_rbuf + got, need - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (uint32_t)r;
        if (got == 4) {
            *len = get32(host_rbuf);
            if (*len < GM_HEADER || *len > GM_MAX_FRAME)
                return -1;
            need = 4 + *len;
        }
    }
    return 0;
}

/* Connects to the host and says HELLO; NULL, or why not. Blocks the agent
 * for at most HOST_TIMEOUT_S per step: only when a client needs the host. */
static const char *connect_host(void)
{
    static char why[160];
    struct timeval tv = {.tv_sec = HOST_TIMEOUT_S};
    int fd;
    uint32_t len = 0;
    static const char peer[] = "nxia-agent";
    uint8_t hello[4 + GM_HEADER + 4 + 4 + sizeof peer - 1 + 4];

    if (host_path) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", host_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
            close(fd);
            fd = -1;
        }
    } else {
        struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = host_port};
        fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        snprintf(why, sizeof why, "cannot reach the host's Gemini listener (%s %u): %s",
                 host_path ? host_path : "vsock port", host_path ? 0 : host_port, strerror(errno));
        return why;
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    put32(hello, sizeof hello - 4);
    header(hello + 4, HELLO, 0, 0);
    put16(hello + 4 + GM_HEADER, 1);
    put16(hello + 4 + GM_HEADER + 2, 1);
    put32(hello + 4 + GM_HEADER + 4, sizeof peer - 1);
    memcpy(hello + 4 + GM_HEADER + 8, peer, sizeof peer - 1);
    put32(hello + sizeof hello - 4, 0);    /* auth: none, the session is the VM's by its vsock device */
    if (write_all(fd, hello, sizeof hello) < 0 || read_frame_blocking(fd, &len) < 0) {
        snprintf(why, sizeof why, "the host did not answer HELLO within %d s", HOST_TIMEOUT_S);
        close(fd);
        return why;
    }
    const uint8_t *f = host_rbuf + 4;
    if (f[0] != WELCOME || len != GM_HEADER + 16 || get16(f + GM_HEADER) != 1) {
        snprintf(why, sizeof why, "the host refused the session (frame type %u)", f[0]);
        close(fd);
        return why;
    }
    host_session = get64(f + GM_HEADER + 8);
    host_fd = fd;
    host_rlen = 0;
    return NULL;
}

static void client_hello(struct client *c, const uint8_t *f, uint32_t len)
{
    uint8_t w[4 + GM_HEADER + 16];
    const char *why;

    if (c->hello) {
        error_to_client(c, 0, E_BAD_FRAME, "unexpected HELLO");
        return;
    }
    if (len < GM_HEADER + 4 || get16(f + GM_HEADER) > 1 || get16(f + GM_HEADER + 2) < 1) {
        error_to_client(c, 0, E_VERSION, "this broker speaks version 1 only");
        return;
    }
    if (host_fd < 0 && (why = connect_host()) != NULL) {
        error_to_client(c, 0, E_CLOSED, why);
        return;
    }
    c->hello = 1;
    put32(w, GM_HEADER + 16);
    header(w + 4, WELCOME, 0, 0);
    put16(w + 4 + GM_HEADER, 1);
    put16(w + 4 + GM_HEADER + 2, 0);
    put32(w + 4 + GM_HEADER + 4, CLIENT_MAX_FRAME);
    put64(w + 4 + GM_HEADER + 8, host_session);
    to_client(c, w, sizeof w);
}

/* Reads a `str` at *off of a body of n bytes: its bytes in place. 0, or -1 if it does not fit. */
static int rd_str(const uint8_t *b, uint32_t n, uint32_t *off, const uint8_t **s, uint32_t *len, uint32_t max)
{
    if (n - *off < 4)
        return -1;
    *len = get32(b + *off);
    if (*len > max || *len > n - *off - 4)
        return -1;
    *s = b + *off + 4;
    *off += 4 + *len;
    return 0;
}

static int name_ok(const uint8_t *s, uint32_t n)
{
    if (n < 1 || n > MAX_NAME)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

static struct export *find_export(const uint8_t *svc, uint32_t sl, const uint8_t *m, uint32_t ml)
{
    for (int i = 0; i < MAX_EXPORTS; i++) {
        struct export *e = &exports[i];
        if (e->client && e->client->gen == e->gen && e->service_len == sl && e->method_len == ml &&
            !memcmp(e->service, svc, sl) && !memcmp(e->method, m, ml))
            return e;
    }
    return NULL;
}

/* The broker's own service: broker.export(str service, str method) makes the
 * client the server of that function for the host. Answered here, never forwarded. */
static void broker_service(struct client *c, const uint8_t *body, uint32_t n, uint32_t off, const uint8_t *m, uint32_t ml, uint64_t id)
{
    const uint8_t *svc, *fn;
    uint32_t sl, fl;
    uint8_t ret[4 + GM_HEADER + 1];
    struct export *free_slot = NULL, *e;
    int mine = 0;

    if (ml != 6 || memcmp(m, "export", 6)) {
        error_to_client(c, id, E_NO_SERVICE, "the broker's service has one method: export(service, method)");
        return;
    }
    if (n - off < 1 || n - off - 1 < 16u * body[off]) {
        error_to_client(c, id, E_BAD_FRAME, "the CALL ends early");
        return;
    }
    off += 1 + 16u * body[off];    /* tokens: the broker's service takes none */
    if (n - off < 2 || get16(body + off) != 2) {
        error_to_client(c, id, E_BAD_ARGS, "broker.export takes two strings: service, method");
        return;
    }
    off += 2;
    if (n - off < 1 || body[off++] != T_STR || rd_str(body, n, &off, &svc, &sl, MAX_NAME) ||
        n - off < 1 || body[off++] != T_STR || rd_str(body, n, &off, &fn, &fl, MAX_NAME) || off != n) {
        error_to_client(c, id, E_BAD_ARGS, "broker.export takes two strings: service, method");
        return;
    }
    if (!name_ok(svc, sl) || !name_ok(fn, fl) || (sl == 6 && !memcmp(svc, "broker", 6))) {
        error_to_client(c, id, E_BAD_ARGS, "a service and a method are 1 to 64 of A-Z a-z 0-9 _ . - (and not 'broker')");
        return;
    }
    if ((e = find_export(svc, sl, fn, fl)) != NULL) {
        error_to_client(c, id, E_BUSY, e->client == c ? "this process already serves it" : "another process serves it");
        return;
    }
    for (int i = 0; i < MAX_EXPORTS; i++) {
        if (!exports[i].client || exports[i].client->gen != exports[i].gen)
            free_slot = free_slot ? free_slot : &exports[i];
        else if (exports[i].client == c)
            mine++;
    }
    if (!free_slot || mine >= MAX_EXPORTS_CLIENT) {
        error_to_client(c, id, E_BUSY, "64 functions are served in this VM (16 per process)");
        return;
    }
    *free_slot = (struct export){.client = c, .gen = c->gen, .service_len = sl, .method_len = fl};
    memcpy(free_slot->service, svc, sl);
    memcpy(free_slot->method, fn, fl);
    put32(ret, GM_HEADER + 1);
    header(ret + 4, RETURN, 0, id);
    ret[4 + GM_HEADER] = T_NULL;
    to_client(c, ret, sizeof ret);
}

/* A client's answer to a host call it serves goes back under the host's id. */
static void client_answer(struct client *c, uint8_t *f, uint32_t len, uint64_t id)
{
    for (int i = 0; i < MAX_SERVED; i++) {
        struct served *s = &served[i];
        if (s->client == c && s->gen == c->gen && s->client_id == id) {
            s->client = NULL;
            if (host_fd >= 0) {
                put64(f + 8, s->host_id);
                to_host(f - 4, 4 + len);
            }
            return;
        }
    }
    /* an answer to a call the host cancelled, or to none: dropped */
}

static void client_call(struct client *c, const uint8_t *f, uint32_t len, uint64_t id)
{
    const uint8_t *svc, *m;
    uint32_t sl, ml, off = 0;

    if (rd_str(f + GM_HEADER, len - GM_HEADER, &off, &svc, &sl, MAX_NAME) ||
        rd_str(f + GM_HEADER, len - GM_HEADER, &off, &m, &ml, MAX_NAME)) {
        error_to_client(c, id, E_BAD_FRAME, "a CALL starts with its service and method names");
        return;
    }
    if (sl == 6 && !memcmp(svc, "broker", 6)) {
        broker_service(c, f + GM_HEADER, len - GM_HEADER, off, m, ml, id);
        return;
    }
    client_call_host(c, f, len, id);
}

static void client_call_host(struct client *c, const uint8_t *f, uint32_t len, uint64_t id)
{
    const char *why;
    struct call *k = NULL;
    int total = 0;

    for (int i = 0; i < MAX_CALLS; i++)
        if (calls[i].client)
            total++;
        else if (!k)
            k = &calls[i];
    if (find_call(c, id)) {
        error_to_client(c, id, E_BAD_FRAME, "this call id is already in flight");
        return;
    }
    if (c->calls >= MAX_CALLS_CLIENT || total >= MAX_CALLS || !k) {
        error_to_client(c, id, E_BUSY, c->calls >= MAX_CALLS_CLIENT ? "16 calls of this process are in flight"
                                                                    : "64 calls of this System VM are in flight");
        return;
    }
    if (host_fd < 0 && (why = connect_host()) != NULL) {
        error_to_client(c, id, E_CLOSED, why);
        return;
    }
    uint32_t block = 12 + 4 + c->exe_len, out = len + block;
    if (++next_host_id == 0)
        next_host_id = 1;
    put32(frame, out);
    header(frame + 4, CALL, F_CALLER, next_host_id);
    put32(frame + 4 + GM_HEADER, c->uid);
    put32(frame + 4 + GM_HEADER + 4, c->gid);
    put32(frame + 4 + GM_HEADER + 8, c->pid);
    put32(frame + 4 + GM_HEADER + 12, c->exe_len);
    memcpy(frame + 4 + GM_HEADER + 16, c->exe, c->exe_len);
    memcpy(frame + 4 + GM_HEADER + block, f + GM_HEADER, len - GM_HEADER);
    *k = (struct call){.client = c, .gen = c->gen, .client_id = id, .host_id = next_host_id};
    c->calls++;
    to_host(frame, 4 + out);    /* on failure drop_host failed this call too */
}

static void client_frame(struct client *c, uint8_t *f, uint32_t len)
{
    uint8_t type = f[0];
    uint64_t id = get64(f + 8);

    if (f[1] != 1 || get16(f + 2) != 0 || get32(f + 4) != 0) {
        error_to_client(c, id, E_BAD_FRAME, "bad version, flags or reserved bytes (a client names no caller: the kernel does)");
        return;
    }
    if (!c->hello && type != HELLO) {
        error_to_client(c, id, E_AUTH, "say HELLO first");
        return;
    }
    switch (type) {
    case HELLO:
        client_hello(c, f, len);
        break;
    case CALL:
        client_call(c, f, len, id);
        break;
    case CANCEL: {
        struct call *k = find_call(c, id);
        uint8_t b[4 + GM_HEADER];
        if (len != GM_HEADER) {
            error_to_client(c, id, E_BAD_FRAME, "CANCEL has no body");
        } else if (k && host_fd >= 0) {
            put32(b, GM_HEADER);
            header(b + 4, CANCEL, 0, k->host_id);
            to_host(b, sizeof b);    /* the host answers CANCELLED; that frees the call */
        }
        break;
    }
    case RETURN:
    case ERROR:
        client_answer(c, f, len, id);
        break;
    case CLOSE:
        drop_client(c);
        break;
    default:
        error_to_client(c, id, E_BAD_FRAME, "the broker takes HELLO, CALL, RETURN, ERROR, CANCEL and CLOSE");
    }
}

/* Serves the whole frames read so far, up to a CALL while the broker is held. */
static void client_frames(struct client *c)
{
    uint32_t off = 0;
    unsigned gen = c->gen;
    while (c->gen == gen && c->rlen - off >= 4) {
        uint32_t len = get32(c->rbuf + off);
        if (len < GM_HEADER || len > CLIENT_MAX_FRAME) {
            error_to_client(c, 0, E_BAD_FRAME, "a frame must be 16 to 24576 bytes: the stream is out of step");
            drop_client(c);
            return;
        }
        if (c->rlen - off < 4 + len)
            break;
        if (held && c->rbuf[off + 4] == CALL) {
            c->stalled = 1;    /* not read again until broker_hold(0) */
            break;
        }
        client_frame(c, c->rbuf + off + 4, len);
        off += 4 + len;
    }
    if (c->gen == gen) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

static void client_readable(struct client *c)
{
    ssize_t n = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        drop_client(c);
        return;
    }
    c->rlen += (uint32_t)n;
    client_frames(c);
}

void broker_hold(int on)
{
    held = on;
    if (held)
        return;    /* a client stalls at its next CALL as it is read */
    for (int i = 0; i < BROKER_MAX_CLIENTS; i++)
        if (clients[i].fd >= 0 && clients[i].stalled) {
            clients[i].stalled = 0;
            client_frames(&clients[i]);
        }
}

int broker_in_flight(void)
{
    int n = 0;

    for (int i = 0; i < MAX_CALLS; i++)
        n += calls[i].client != NULL;
    for (int i = 0; i < MAX_SERVED; i++)
        n += served[i].client != NULL;
    return n;
}

/* A host call of a function a client serves: forwarded under an id of the
 * client's connection; the client's answer comes back through client_answer. */
static void host_call(uint8_t *f, uint32_t len, uint64_t id)
{
    const uint8_t *svc, *m;
    uint32_t sl, ml, off = 0;
    struct export *e;
    struct served *slot = NULL;

    if (rd_str(f + GM_HEADER, len - GM_HEADER, &off, &svc, &sl, MAX_NAME) ||
        rd_str(f + GM_HEADER, len - GM_HEADER, &off, &m, &ml, MAX_NAME)) {
        error_to_host(id, E_BAD_FRAME, "a CALL starts with its service and method names");
        return;
    }
    if (held) {
        error_to_host(id, E_BUSY, "the System VM is quiescing for a snapshot: no new calls into it until it resumes");
        return;
    }
    if ((e = find_export(svc, sl, m, ml)) == NULL || e->client->fd < 0) {
        error_to_host(id, E_NO_SERVICE, "no process in this System VM serves that function (nxia-serve, broker.export)");
        return;
    }
    for (int i = 0; i < MAX_SERVED && !slot; i++)
        if (!served[i].client)
            slot = &served[i];
    if (!slot) {
        error_to_host(id, E_BUSY, "64 host calls are in flight to this VM's processes");
        return;
    }
    if (++next_client_id == 0)
        next_client_id = 1;
    *slot = (struct served){.client = e->client, .gen = e->gen, .host_id = id, .client_id = next_client_id};
    put64(f + 8, next_client_id);
    to_client(e->client, f - 4, 4 + len);
}

static void host_frame(uint8_t *f, uint32_t len)
{
    uint64_t id = get64(f + 8);

    switch (f[0]) {
    case RETURN:
    case ERROR:
        for (int i = 0; i < MAX_CALLS; i++) {
            struct call *k = &calls[i];
            if (!k->client || k->host_id != id)
                continue;
            struct client *c = k->client;
            int live = c->gen == k->gen && c->fd >= 0;
            uint64_t client_id = k->client_id;
            free_call(k);
            if (live) {
                put64(f + 8, client_id);
                to_client(c, f - 4, 4 + len);
            }
            break;
        }
        break;
    case CALL:
        host_call(f, len, id);
        break;
    case CANCEL:
        for (int i = 0; i < MAX_SERVED; i++) {
            struct served *s = &served[i];
            if (!s->client || s->host_id != id)
                continue;
            struct client *c = s->client;
            int live = c->gen == s->gen && c->fd >= 0;
            uint64_t client_id = s->client_id;
            s->client = NULL;    /* answered here, so a client that ignores CANCEL holds no slot */
            error_to_host(id, E_CANCELLED, "cancelled by the caller");
            if (live) {
                uint8_t b[4 + GM_HEADER];
                put32(b, GM_HEADER);
                header(b + 4, CANCEL, 0, client_id);
                to_client(c, b, sizeof b);
            }
            break;
        }
        break;
    case CLOSE:
        drop_host("the host closed it");
        break;
    default:    /* a stray WELCOME: nothing to do */
        break;
    }
}

static void host_readable(void)
{
    ssize_t n = recv(host_fd, host_rbuf + host_rlen, sizeof host_rbuf - host_rlen, MSG_DONTWAIT);

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        drop_host(n == 0 ? "the host closed the stream" : strerror(errno));
        return;
    }
    host_rlen += (uint32_t)n;
    uint32_t off = 0;
    while (host_fd >= 0 && host_rlen - off >= 4) {
        uint32_t len = get32(host_rbuf + off);
        if (len < GM_HEADER || len > GM_MAX_FRAME) {
            drop_host("the host sent a frame of a bad length");
            return;
        }
        if (host_rlen - off < 4 + len)
            break;
        host_frame(host_rbuf + off + 4, len);
        off += 4 + len;
    }
    if (host_fd >= 0) {
        memmove(host_rbuf, host_rbuf + off, host_rlen - off);
        host_rlen -= off;
    }
}

static void accept_client(void)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    struct client *c = NULL;
    struct ucred cred;
    socklen_t cl = sizeof cred;
    char proc[32];

    if (fd < 0)
        return;
    for (int i = 0; i < BROKER_MAX_CLIENTS && !c; i++)
        if (clients[i].fd < 0)
            c = &clients[i];
    if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
        close(fd);    /* at the bound: the process sees its connection end */
        return;
    }
    c->fd = fd;
    c->gen = ++client_gen;
    c->hello = c->calls = c->stalled = 0;
    c->rlen = c->olen = 0;
    c->uid = cred.uid;
    c->gid = cred.gid;
    c->pid = (uint32_t)cred.pid;
    snprintf(proc, sizeof proc, "/proc/%d/exe", (int)cred.pid);
    ssize_t n = readlink(proc, c->exe, sizeof c->exe);
    c->exe_len = n > 0 && n < (ssize_t)sizeof c->exe && c->exe[0] == '/' && !memchr(c->exe, 0, (size_t)n) ? (uint32_t)n : 0;
    c->exe[c->exe_len] = 0;
}

int broker_start(const char *path, const char *host_unix, unsigned port)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};

    for (int i = 0; i < BROKER_MAX_CLIENTS; i++)
        clients[i].fd = -1;
    if (strlen(path) >= sizeof a.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(a.sun_path, path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd < 0)
        return -1;
    unlink(path);
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || chmod(path, 0666) < 0 || listen(listen_fd, 16) < 0) {
        int e = errno;
        close(listen_fd);
        listen_fd = -1;
        errno = e;
        return -1;
    }
    sock_path = path;
    host_path = host_unix;
    host_port = port;
    return 0;
}

int broker_fill(struct pollfd *pf)
{
    int n = 0;

    if (listen_fd < 0)
        return 0;
    pf[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
    if (host_fd >= 0)
        pf[n++] = (struct pollfd){.fd = host_fd, .events = POLLIN};
    for (int i = 0; i < BROKER_MAX_CLIENTS; i++)
        if (clients[i].fd >= 0)
            pf[n++] = (struct pollfd){.fd = clients[i].fd,
                                      .events = (short)((clients[i].stalled ? 0 : POLLIN) | (clients[i].olen ? POLLOUT : 0))};
    return n;
}

void broker_ready(const struct pollfd *pf, int count)
{
    for (int i = 0; i < count; i++) {
        if (!pf[i].revents)
            continue;
        if (pf[i].fd == listen_fd) {
            accept_client();
            continue;
        }
        if (pf[i].fd == host_fd) {
            host_readable();
            continue;
        }
        /* A descriptor may have been closed and reused earlier in this turn: act
         * only on the client that holds it now, and only on what it asked for. */
        for (int k = 0; k < BROKER_MAX_CLIENTS; k++) {
            struct client *c = &clients[k];
            if (c->fd != pf[i].fd)
                continue;
            if ((pf[i].revents & POLLOUT) && c->olen && flush_client(c) < 0)
                break;
            if (c->stalled && (pf[i].revents & (POLLHUP | POLLERR)))
                drop_client(c);    /* gone while its call waited: nobody wants the answer */
            else if (!c->stalled && (pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                client_readable(c);
            break;
        }
    }
}

void broker_stop(void)
{
    for (int i = 0; i < BROKER_MAX_CLIENTS; i++)
        if (clients[i].fd >= 0)
            drop_client(&clients[i]);
    if (host_fd >= 0)
        drop_host("the agent is stopping");
    if (listen_fd >= 0) {
        close(listen_fd);
        listen_fd = -1;
        unlink(sock_path);
    }
}
