/*
 * gemini.c - the Gemini codec, the Portal SPSC ring and the guest session
 * (docs/gemini-protocol.md, docs/portal-abi.md). Everything read from a ring
 * or a frame is checked before use.
 */
#ifdef NXIA_GUEST
#include "nxia.h"
#include "nxia_vsock.h"
#else
#include <string.h>
#endif
#include "nxia_gemini.h"

/* ---- little-endian helpers ---- */

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- decoding ---- */

struct rd {
    const uint8_t *p;
    uint32_t left;
    int bad;
};

static uint64_t rd_n(struct rd *r, unsigned n)
{
    if (r->bad || r->left < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = get_le(r->p, n);
    r->p += n;
    r->left -= n;
    return v;
}

static const uint8_t *rd_bin(struct rd *r, uint32_t max, uint32_t *len)
{
    uint32_t n = (uint32_t)rd_n(r, 4);
    if (r->bad || n > max || n > r->left) {
        r->bad = 1;
        *len = 0;
        return 0;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    *len = n;
    return p;
}

static int name_ok(const uint8_t *p, uint32_t n)
{
    if (!p || n == 0 || n > NXIA_GM_MAX_NAME)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static void rd_value(struct rd *r, struct nxia_gm_value *v)
{
    memset(v, 0, sizeof *v);
    v->tag = (uint8_t)rd_n(r, 1);
    switch (v->tag) {
    case NXIA_GM_NULL:
        break;
    case NXIA_GM_BOOL:
        v->b = (uint8_t)rd_n(r, 1);
        if (v->b > 1)
            r->bad = 1;
        break;
    case NXIA_GM_I32:
        v->i32 = (int32_t)(uint32_t)rd_n(r, 4);
        break;
    case NXIA_GM_I64:
        v->i64 = (int64_t)rd_n(r, 8);
        break;
    case NXIA_GM_F64:
        v->f64 = rd_n(r, 8);
        break;
    case NXIA_GM_STR:
    case NXIA_GM_BYTES:
        v->ptr = rd_bin(r, 0xffffffffu, &v->len);
        break;
    case NXIA_GM_REF:
        v->ref_off = rd_n(r, 8);
        v->ref_len = rd_n(r, 8);
        v->ref_gen = (uint32_t)rd_n(r, 4);
        if ((v->ref_off >> 63) || (v->ref_len >> 63) || v->ref_len == 0)
            r->bad = 1;
        break;
    case NXIA_GM_TOKEN:
        if (r->left < 16) {
            r->bad = 1;
            break;
        }
        memcpy(v->token, r->p, 16);
        r->p += 16;
        r->left -= 16;
        break;
    default:
        r->bad = 1;
    }
}

int nxia_gm_decode(const uint8_t *buf, uint32_t len, struct nxia_gm_frame *f)
{
    struct rd r = { buf, len, 0 };
    memset(f, 0, sizeof *f);
    if (len < NXIA_GM_HEADER)
        return -1;
    f->type = (uint8_t)rd_n(&r, 1);
    if (rd_n(&r, 1) != NXIA_GM_VERSION || rd_n(&r, 2) != 0 || rd_n(&r, 4) != 0)
        return -1;
    f->id = rd_n(&r, 8);
    switch (f->type) {
    case NXIA_GM_HELLO:
        f->min_version = (uint16_t)rd_n(&r, 2);
        f->max_version = (uint16_t)rd_n(&r, 2);
        f->peer = rd_bin(&r, NXIA_GM_MAX_PEER, &f->peer_len);
        f->auth = rd_bin(&r, NXIA_GM_MAX_AUTH, &f->auth_len);
        break;
    case NXIA_GM_WELCOME:
        f->version = (uint16_t)rd_n(&r, 2);
        if (rd_n(&r, 2) != 0)
            r.bad = 1;
        f->max_frame = (uint32_t)rd_n(&r, 4);
        f->session = rd_n(&r, 8);
        break;
    case NXIA_GM_CALL:
        f->service = rd_bin(&r, NXIA_GM_MAX_NAME, &f->service_len);
        f->method = rd_bin(&r, NXIA_GM_MAX_NAME, &f->method_len);
        if (!r.bad && (!name_ok(f->service, f->service_len) || !name_ok(f->method, f->method_len)))
            r.bad = 1;
        f->ntokens = (uint8_t)rd_n(&r, 1);
        if (r.bad || f->ntokens > NXIA_GM_MAX_TOKENS || r.left < 16u * f->ntokens)
            return -1;
        f->tokens = r.p;
        r.p += 16u * f->ntokens;
        r.left -= 16u * f->ntokens;
        f->nargs = (uint16_t)rd_n(&r, 2);
        if (f->nargs > NXIA_GM_MAX_ARGS)
            return -1;
        for (unsigned i = 0; i < f->nargs && !r.bad; i++)
            rd_value(&r, &f->args[i]);
        break;
    case NXIA_GM_RETURN:
        rd_value(&r, &f->value);
        break;
    case NXIA_GM_ERROR:
        f->code = (uint16_t)rd_n(&r, 2);
        if (f->code < NXIA_GM_EBAD_FRAME || f->code > NXIA_GM_EBAD_REF)
            r.bad = 1;
        f->message = rd_bin(&r, NXIA_GM_MAX_MESSAGE, &f->message_len);
        break;
    case NXIA_GM_CANCEL:
        break;
    case NXIA_GM_CLOSE:
        f->message = rd_bin(&r, NXIA_GM_MAX_MESSAGE, &f->message_len);
        break;
    default:
        return -1;
    }
    if ((f->type == NXIA_GM_HELLO || f->type == NXIA_GM_WELCOME || f->type == NXIA_GM_CLOSE) && f->id != 0)
        return -1;
    return r.bad || r.left != 0 ? -1 : 0;
}

/* ---- encoding ---- */

struct wr {
    uint8_t *p;
    uint32_t left;
    int bad;
};

static void wr_n(struct wr *w, uint64_t v, unsigned n)
{
    if (w->bad || w->left < n) {
        w->bad = 1;
        return;
    }
    put_le(w->p, v, n);
    w->p += n;
    w->left -= n;
}

static void wr_raw(struct wr *w, const void *src, uint32_t n)
{
    if (w->bad || w->left < n) {
        w->bad = 1;
        return;
    }
    if (n)
        memcpy(w->p, src, n);
    w->p += n;
    w->left -= n;
}

static void wr_bin(struct wr *w, const uint8_t *p, uint32_t n, uint32_t max)
{
    if (n > max)
        w->bad = 1;
    wr_n(w, n, 4);
    wr_raw(w, p, n);
}

static void wr_value(struct wr *w, const struct nxia_gm_value *v)
{
    wr_n(w, v->tag, 1);
    switch (v->tag) {
    case NXIA_GM_NULL: break;
    case NXIA_GM_BOOL: wr_n(w, v->b ? 1 : 0, 1); break;
    case NXIA_GM_I32: wr_n(w, (uint32_t)v->i32, 4); break;
    case NXIA_GM_I64: wr_n(w, (uint64_t)v->i64, 8); break;
    case NXIA_GM_F64: wr_n(w, v->f64, 8); break;
    case NXIA_GM_STR:
    case NXIA_GM_BYTES: wr_bin(w, v->ptr, v->len, 0xffffffffu); break;
    case NXIA_GM_REF:
        wr_n(w, v->ref_off, 8);
        wr_n(w, v->ref_len, 8);
        wr_n(w, v->ref_gen, 4);
        break;
    case NXIA_GM_TOKEN: wr_raw(w, v->token, 16); break;
    default: w->bad = 1;
    }
}

long nxia_gm_encode(const struct nxia_gm_frame *f, uint8_t *buf, uint32_t cap)
{
    struct wr w = { buf, cap, 0 };
    int zero_id = f->type == NXIA_GM_HELLO || f->type == NXIA_GM_WELCOME || f->type == NXIA_GM_CLOSE;
    wr_n(&w, f->type, 1);
    wr_n(&w, NXIA_GM_VERSION, 1);
    wr_n(&w, 0, 2);
    wr_n(&w, 0, 4);
    wr_n(&w, zero_id ? 0 : f->id, 8);
    switch (f->type) {
    case NXIA_GM_HELLO:
        wr_n(&w, f->min_version, 2);
        wr_n(&w, f->max_version, 2);
        wr_bin(&w, f->peer, f->peer_len, NXIA_GM_MAX_PEER);
        wr_bin(&w, f->auth, f->auth_len, NXIA_GM_MAX_AUTH);
        break;
    case NXIA_GM_WELCOME:
        wr_n(&w, f->version, 2);
        wr_n(&w, 0, 2);
        wr_n(&w, f->max_frame, 4);
        wr_n(&w, f->session, 8);
        break;
    case NXIA_GM_CALL:
        if (!name_ok(f->service, f->service_len) || !name_ok(f->method, f->method_len) ||
            f->ntokens > NXIA_GM_MAX_TOKENS || f->nargs > NXIA_GM_MAX_ARGS)
            return -1;
        wr_bin(&w, f->service, f->service_len, NXIA_GM_MAX_NAME);
        wr_bin(&w, f->method, f->method_len, NXIA_GM_MAX_NAME);
        wr_n(&w, f->ntokens, 1);
        wr_raw(&w, f->tokens, 16u * f->ntokens);
        wr_n(&w, f->nargs, 2);
        for (unsigned i = 0; i < f->nargs; i++)
            wr_value(&w, &f->args[i]);
        break;
    case NXIA_GM_RETURN:
        wr_value(&w, &f->value);
        break;
    case NXIA_GM_ERROR:
        wr_n(&w, f->code, 2);
        wr_bin(&w, f->message, f->message_len, NXIA_GM_MAX_MESSAGE);
        break;
    case NXIA_GM_CANCEL:
        break;
    case NXIA_GM_CLOSE:
        wr_bin(&w, f->message, f->message_len, NXIA_GM_MAX_MESSAGE);
        break;
    default:
        return -1;
    }
    return w.bad ? -1 : (long)(cap - w.left);
}

/* ---- Portal SPSC ring ---- */

#define RING_PRODUCER 64u
#define RING_CONSUMER 128u

static uint64_t *ring_u64(struct nxia_ring *r, uint32_t off)
{
    return (uint64_t *)(void *)(r->base + off);
}

int nxia_ring_format(struct nxia_ring *r, void *mem, uint32_t cap)
{
    if (((uintptr_t)mem & 7) || cap < 64 || (cap & (cap - 1)))
        return -1;
    r->base = mem;
    r->cap = cap;
    r->prod = r->cons = 0;
    memset(mem, 0, NXIA_RING_DATA);
    put_le(r->base + 4, 1, 4);
    put_le(r->base + 8, cap, 4);
    __atomic_store_n((uint32_t *)mem, NXIA_RING_MAGIC, __ATOMIC_RELEASE); /* magic last */
    return 0;
}

static uint32_t rec_size(uint64_t len)
{
    return (uint32_t)((4 + len + 7) & ~7ull);
}

int nxia_ring_offer(struct nxia_ring *r, const void *msg, uint32_t len)
{
    if (len > r->cap - 4)
        return -1;
    uint64_t rec = rec_size(len);
    uint64_t cons = __atomic_load_n(ring_u64(r, RING_CONSUMER), __ATOMIC_ACQUIRE);
    uint64_t used = r->prod - cons;
    if (used > r->cap)
        return -1;
    uint64_t free = r->cap - used;
    uint64_t pos = r->prod & (r->cap - 1);
    uint64_t tail = r->cap - pos;
    if (rec > tail) {
        if (free < tail)
            return 0;
        *(volatile uint32_t *)(void *)(r->base + NXIA_RING_DATA + pos) = 0xffffffffu;
        r->prod += tail;
        free -= tail;
        pos = 0;
        __atomic_store_n(ring_u64(r, RING_PRODUCER), r->prod, __ATOMIC_RELEASE);
    }
    if (rec > free)
        return 0;
    put_le(r->base + NXIA_RING_DATA + pos, len, 4);
    memcpy(r->base + NXIA_RING_DATA + pos + 4, msg, len);
    r->prod += rec;
    __atomic_store_n(ring_u64(r, RING_PRODUCER), r->prod, __ATOMIC_RELEASE);
    return 1;
}

long nxia_ring_poll(struct nxia_ring *r, void *into, uint32_t cap_into)
{
    uint64_t prod = __atomic_load_n(ring_u64(r, RING_PRODUCER), __ATOMIC_ACQUIRE);
    uint64_t avail = prod - r->cons;
    if (avail > r->cap)
        return -2;
    while (avail) {
        uint64_t pos = r->cons & (r->cap - 1);
        uint64_t tail = r->cap - pos;
        uint32_t raw = *(volatile uint32_t *)(void *)(r->base + NXIA_RING_DATA + pos); /* read once */
        if (raw == 0xffffffffu) {
            if (tail > avail)
                return -2;
            r->cons += tail;
            avail -= tail;
            __atomic_store_n(ring_u64(r, RING_CONSUMER), r->cons, __ATOMIC_RELEASE);
            continue;
        }
        uint64_t rec = rec_size(raw);
        if (raw > r->cap - 4 || rec > tail || rec > avail || raw > cap_into)
            return -2;
        memcpy(into, r->base + NXIA_RING_DATA + pos + 4, raw);
        r->cons += rec;
        __atomic_store_n(ring_u64(r, RING_CONSUMER), r->cons, __ATOMIC_RELEASE);
        return raw;
    }
    return -1;
}

/* ---- references ---- */

int nxia_gm_deref(struct nxia_arena *a, struct nxia_gm_value *v)
{
    struct nxia_ref r = { v->ref_off, v->ref_len, v->ref_gen };
    int err = 0;
    if (!a || v->tag != NXIA_GM_REF)
        return NXIA_GM_EBAD_REF;
    void *p = nxia_arena_deref(a, &r, &err); /* every check of docs/portal-abi.md, "Deref" */
    if (!p || v->ref_len > 0xffffffffu)
        return NXIA_GM_EBAD_REF;
    v->ptr = p;
    v->len = (uint32_t)v->ref_len;
    return NXIA_GM_OK;
}

/* ---- guest session ---- */

#ifdef NXIA_GUEST

static void put_str(struct nxia_gm_value *v, const char *s)
{
    memset(v, 0, sizeof *v);
    v->tag = NXIA_GM_STR;
    v->ptr = (const uint8_t *)s;
    v->len = (uint32_t)strlen(s);
}

static void kick(void)
{
    uint8_t arg[8];
    put_le(arg, NXIA_GM_ATTACH_MAGIC, 4);
    put_le(arg + 4, 1, 2);
    put_le(arg + 6, NXIA_GM_OP_KICK, 2);
    nxia_hostcall("gemini", arg, sizeof arg, 0, 0, 0);
}

static int send_frame(struct nxia_gemini *g, const struct nxia_gm_frame *f)
{
    long n = nxia_gm_encode(f, g->txbuf, g->max_frame);
    if (n < 0)
        return NXIA_GM_EBAD_ARGS;
    if (g->vsock >= 0) {
        uint8_t len[4];
        put_le(len, (uint64_t)n, 4);
        if (nxia_vsock_send(g->vsock, len, 4, ~0ul) != 4 || nxia_vsock_send(g->vsock, g->txbuf, (unsigned long)n, ~0ul) != n) {
            g->closed = 1;
            return NXIA_GM_ECLOSED;
        }
        return NXIA_GM_OK;
    }
    for (;;) {
        int rc = nxia_ring_offer(&g->tx, g->txbuf, (uint32_t)n);
        if (rc == 1)
            break;
        if (rc < 0) {
            g->closed = 1;
            return NXIA_GM_ECLOSED;
        }
        __builtin_ia32_pause();
    }
    /* Pairs with the host's fence between setting host_sleeping and re-checking the ring. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&g->ctl[0], __ATOMIC_RELAXED))
        kick();
    return NXIA_GM_OK;
}

static void reply_error(struct nxia_gemini *g, uint64_t id, uint16_t code, const char *msg)
{
    memset(&g->out, 0, sizeof g->out);
    g->out.type = NXIA_GM_ERROR;
    g->out.id = id;
    g->out.code = code;
    g->out.message = (const uint8_t *)msg;
    g->out.message_len = (uint32_t)strlen(msg);
    send_frame(g, &g->out);
}

static int name_is(const char *s, const uint8_t *p, uint32_t n)
{
    return strlen(s) == n && memcmp(s, p, n) == 0;
}

static void serve_call(struct nxia_gemini *g, struct nxia_gm_frame *c)
{
    /* A reference argument is checked before the function runs; the function reads its block in place. */
    for (unsigned i = 0; i < c->nargs; i++) {
        if (c->args[i].tag == NXIA_GM_REF &&
            nxia_gm_deref(g->has_region ? &g->arena : 0, &c->args[i]) != NXIA_GM_OK) {
            reply_error(g, c->id, NXIA_GM_EBAD_REF, g->has_region
                        ? "a reference argument is not a live block of the session's region"
                        : "a reference argument, but the guest bound no reference region");
            return;
        }
    }
    for (unsigned i = 0; i < g->nexports; i++) {
        if (!name_is(g->exports[i].service, c->service, c->service_len) ||
            !name_is(g->exports[i].method, c->method, c->method_len))
            continue;
        struct nxia_gm_value ret;
        memset(&ret, 0, sizeof ret);
        int rc = g->exports[i].fn(c->args, c->nargs, &ret, g->exports[i].user);
        g->calls_served++;
        if (rc != NXIA_GM_OK) {
            reply_error(g, c->id, (uint16_t)rc, "the guest function failed");
            return;
        }
        memset(&g->out, 0, sizeof g->out);
        g->out.type = NXIA_GM_RETURN;
        g->out.id = c->id;
        g->out.value = ret;
        if (send_frame(g, &g->out) == NXIA_GM_EBAD_ARGS)
            reply_error(g, c->id, NXIA_GM_EBAD_ARGS, "the result does not fit a frame");
        return;
    }
    reply_error(g, c->id, NXIA_GM_ENO_METHOD, "no such guest function");
}

/*
 * The next frame into rxbuf: its length, -1 if none has arrived (yet), -2 if
 * the transport broke (a corrupt ring, a frame length over max_frame, the
 * stream's end). Over vsock a frame may arrive in pieces: rx_have keeps count.
 */
static long recv_frame(struct nxia_gemini *g)
{
    if (g->vsock < 0)
        return nxia_ring_poll(&g->rx, g->rxbuf, g->max_frame);
    for (;;) {
        uint8_t *dst;
        uint32_t want;
        if (g->rx_have < 4) {
            dst = g->rx_len + g->rx_have;
            want = 4 - g->rx_have;
        } else {
            uint32_t len = (uint32_t)get_le(g->rx_len, 4), have = g->rx_have - 4;
            if (len > g->max_frame)
                return -2;
            if (have == len) {
                g->rx_have = 0;
                return len;
            }
            dst = g->rxbuf + have;
            want = len - have;
        }
        long n = nxia_vsock_recv(g->vsock, dst, want, 1);
        if (n == NXIA_VIRTIO_ETIMEDOUT)
            return -1;
        if (n <= 0)
            return -2;
        g->rx_have += (uint32_t)n;
    }
}

/*
 * Receives frames until the answer to call `want` (WELCOME when want is 0
 * and welcome is set) arrives, serving the host's calls meanwhile. In serve
 * mode (want is 0, welcome not set) it returns only when the session closes.
 */
static int pump(struct nxia_gemini *g, uint64_t want, int welcome, struct nxia_gm_value *ret)
{
    while (!g->closed) {
        long n = recv_frame(g);
        if (n == -1) {
            __builtin_ia32_pause();
            continue;
        }
        if (n < 0) {
            g->closed = 1;
            break;
        }
        struct nxia_gm_frame *f = &g->in;
        if (nxia_gm_decode(g->rxbuf, (uint32_t)n, f) != 0) {
            reply_error(g, n >= 16 ? get_le(g->rxbuf + 8, 8) : 0, NXIA_GM_EBAD_FRAME, "the guest could not decode the frame");
            continue;
        }
        switch (f->type) {
        case NXIA_GM_CALL:
            serve_call(g, f);
            break;
        case NXIA_GM_WELCOME:
            if (welcome) {
                g->session = f->session;
                if (f->max_frame != 0 && f->max_frame < g->max_frame)
                    g->max_frame = f->max_frame;   /* the host caps frames below half a ring */
                return f->version == NXIA_GM_VERSION ? NXIA_GM_OK : NXIA_GM_EVERSION;
            }
            break;
        case NXIA_GM_RETURN:
            if (want && f->id == want) {
                *ret = f->value;
                return NXIA_GM_OK;
            }
            break;
        case NXIA_GM_ERROR:
            if ((want && f->id == want) || (welcome && f->id == 0)) {
                memset(ret, 0, sizeof *ret);
                ret->tag = NXIA_GM_STR;
                ret->ptr = f->message;
                ret->len = f->message_len;
                return f->code;
            }
            break;
        case NXIA_GM_CLOSE:
            g->closed = 1;
            break;
        default:
            break; /* CANCEL: calls are served synchronously, so already answered */
        }
    }
    if (ret)
        put_str(ret, "the session is closed");
    return NXIA_GM_ECLOSED;
}

int nxia_gemini_open(struct nxia_gemini *g, const char *peer)
{
    static uint8_t mem[NXIA_GM_MEM_SIZE(NXIA_GM_RING_CAP)] __attribute__((aligned(64)));
    return nxia_gemini_open_in(g, peer, mem, sizeof mem, NXIA_GM_RING_CAP);
}

/* Lays out the rings and buffers in mem and resets the session state. */
static int setup(struct nxia_gemini *g, void *mem, uint64_t len, uint32_t ring_cap)
{
    if (ring_cap < 64 || ring_cap > (1u << 30) || (ring_cap & (ring_cap - 1)) || ((uintptr_t)mem & 63) ||
        len < NXIA_GM_MEM_SIZE(ring_cap))
        return NXIA_GM_EBAD_ARGS;
    g->ring_cap = ring_cap;
    g->max_frame = ring_cap / 2 - 4;
    g->g2h = mem;
    g->h2g = g->g2h + NXIA_RING_DATA + ring_cap;
    g->rxbuf = g->h2g + NXIA_RING_DATA + ring_cap;
    g->txbuf = g->rxbuf + ring_cap / 2;
    g->next_id = 1;
    g->closed = 0;
    g->session = 0;
    g->has_region = 0;
    g->ref_threshold = NXIA_GM_REF_THRESHOLD;
    g->vsock = -1;
    g->rx_have = 0;
    for (unsigned i = 0; i < 16; i++)
        g->ctl[i] = 0;
    return NXIA_GM_OK;
}

static int hello(struct nxia_gemini *g, const char *peer)
{
    struct nxia_gm_value ret;
    memset(&g->out, 0, sizeof g->out);
    g->out.type = NXIA_GM_HELLO;
    g->out.min_version = NXIA_GM_VERSION;
    g->out.max_version = NXIA_GM_VERSION;
    g->out.peer = (const uint8_t *)peer;
    g->out.peer_len = (uint32_t)strlen(peer);
    int rc = send_frame(g, &g->out);
    return rc != NXIA_GM_OK ? rc : pump(g, 0, 1, &ret);
}

int nxia_gemini_open_vsock(struct nxia_gemini *g, const char *peer, uint32_t port)
{
    static uint8_t mem[NXIA_GM_MEM_SIZE(NXIA_GM_RING_CAP)] __attribute__((aligned(64)));
    int rc = setup(g, mem, sizeof mem, NXIA_GM_RING_CAP);
    if (rc != NXIA_GM_OK)
        return rc;
    int c = nxia_vsock_connect(port, 100000000ul);
    if (c < 0)
        return NXIA_GM_ECLOSED;
    g->vsock = c;
    return hello(g, peer);
}

int nxia_gemini_open_in(struct nxia_gemini *g, const char *peer, void *mem, uint64_t len, uint32_t ring_cap)
{
    uint8_t arg[48];
    int rc = setup(g, mem, len, ring_cap);
    if (rc != NXIA_GM_OK)
        return rc;
    if (nxia_ring_format(&g->tx, g->g2h, ring_cap) || nxia_ring_format(&g->rx, g->h2g, ring_cap))
        return NXIA_GM_EBAD_ARGS;
    put_le(arg, NXIA_GM_ATTACH_MAGIC, 4);
    put_le(arg + 4, 1, 2);
    put_le(arg + 6, NXIA_GM_OP_ATTACH, 2);
    put_le(arg + 8, (uintptr_t)g->g2h, 8);
    put_le(arg + 16, NXIA_RING_DATA + ring_cap, 8);
    put_le(arg + 24, (uintptr_t)g->h2g, 8);
    put_le(arg + 32, NXIA_RING_DATA + ring_cap, 8);
    put_le(arg + 40, (uintptr_t)g->ctl, 8);
    if (nxia_hostcall("gemini", arg, sizeof arg, 0, 0, 0) != NXIA_HC_OK)
        return NXIA_GM_EAUTH;
    return hello(g, peer);
}

int nxia_gemini_export(struct nxia_gemini *g, const char *service, const char *method, nxia_gm_fn fn, void *user)
{
    if (g->nexports == NXIA_GM_MAX_EXPORTS || !name_ok((const uint8_t *)service, (uint32_t)strlen(service)) ||
        !name_ok((const uint8_t *)method, (uint32_t)strlen(method)))
        return NXIA_GM_EBAD_ARGS;
    g->exports[g->nexports].service = service;
    g->exports[g->nexports].method = method;
    g->exports[g->nexports].fn = fn;
    g->exports[g->nexports].user = user;
    g->nexports++;
    return NXIA_GM_OK;
}

int nxia_gemini_region(struct nxia_gemini *g, const char *name)
{
    uint8_t arg[24];
    size_t n = strlen(name);
    const struct nxia_portal *p = nxia_portal_find(name);
    if (!p || n == 0 || n > 15 || g->closed)
        return NXIA_GM_EBAD_ARGS;
    if (nxia_arena_attach(&g->arena, (void *)(uintptr_t)p->gpa, p->size) != NXIA_PORTAL_OK)
        return NXIA_GM_EBAD_REF;
    memset(arg, 0, sizeof arg);
    put_le(arg, NXIA_GM_ATTACH_MAGIC, 4);
    put_le(arg + 4, 1, 2);
    put_le(arg + 6, NXIA_GM_OP_REGION, 2);
    memcpy(arg + 8, name, n);
    if (nxia_hostcall("gemini", arg, sizeof arg, 0, 0, 0) != NXIA_HC_OK)
        return NXIA_GM_EFAILED;
    g->has_region = 1;
    return NXIA_GM_OK;
}

int nxia_gemini_call(struct nxia_gemini *g, const char *service, const char *method,
                     const struct nxia_gm_value *args, unsigned nargs,
                     const uint8_t (*tokens)[16], unsigned ntokens, struct nxia_gm_value *ret)
{
    return nxia_gemini_call_m(g, service, method, args, nargs, tokens, ntokens, NXIA_GM_AUTO, ret);
}

static void release(struct nxia_gemini *g, const struct nxia_ref *lent, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        nxia_arena_free(&g->arena, &lent[i]); /* a block the host freed behind our back stays freed */
}

int nxia_gemini_call_m(struct nxia_gemini *g, const char *service, const char *method,
                       const struct nxia_gm_value *args, unsigned nargs,
                       const uint8_t (*tokens)[16], unsigned ntokens, int marshalling, struct nxia_gm_value *ret)
{
    struct nxia_ref lent[NXIA_GM_MAX_ARGS];
    unsigned nlent = 0;
    if (g->closed) {
        put_str(ret, "the session is closed");
        return NXIA_GM_ECLOSED;
    }
    if (nargs > NXIA_GM_MAX_ARGS || ntokens > NXIA_GM_MAX_TOKENS) {
        put_str(ret, "too many arguments or tokens");
        return NXIA_GM_EBAD_ARGS;
    }
    memset(&g->out, 0, sizeof g->out);
    g->out.type = NXIA_GM_CALL;
    g->out.id = g->next_id++;
    g->out.service = (const uint8_t *)service;
    g->out.service_len = (uint32_t)strlen(service);
    g->out.method = (const uint8_t *)method;
    g->out.method_len = (uint32_t)strlen(method);
    g->out.ntokens = (uint8_t)ntokens;
    g->out.tokens = (const uint8_t *)tokens;
    g->out.nargs = (uint16_t)nargs;
    for (unsigned i = 0; i < nargs; i++) {
        struct nxia_gm_value *v = &g->out.args[i];
        *v = args[i];
        if (v->tag != NXIA_GM_BYTES || v->len == 0 || marshalling == NXIA_GM_COPY ||
            (marshalling == NXIA_GM_AUTO && v->len < g->ref_threshold && v->len + 1024u <= g->max_frame))
            continue;
        struct nxia_ref r;
        int err = 0;
        void *block = 0;
        if (g->has_region && nxia_arena_alloc(&g->arena, v->len, &r) == NXIA_PORTAL_OK)
            block = nxia_arena_deref(&g->arena, &r, &err);
        if (!block) {
            if (marshalling == NXIA_GM_AUTO)
                continue; /* no region or no free block: copy */
            release(g, lent, nlent);
            put_str(ret, g->has_region ? "no free block for a by-reference argument" : "no reference region bound");
            return NXIA_GM_EBAD_REF;
        }
        memcpy(block, v->ptr, v->len);
        lent[nlent++] = r;
        v->tag = NXIA_GM_REF;
        v->ref_off = r.offset;
        v->ref_len = r.length;
        v->ref_gen = r.generation;
    }
    uint64_t id = g->out.id;
    int rc = send_frame(g, &g->out);
    if (rc != NXIA_GM_OK) {
        release(g, lent, nlent);
        put_str(ret, "the call could not be sent");
        return rc;
    }
    rc = pump(g, id, 0, ret);
    release(g, lent, nlent);
    return rc;
}

unsigned long nxia_gemini_serve(struct nxia_gemini *g)
{
    unsigned long before = g->calls_served;
    pump(g, 0, 0, 0);
    return g->calls_served - before;
}

#endif /* NXIA_GUEST */
