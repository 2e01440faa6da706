/*
 * nxia_linux.h - libnxia: Gemini from Linux processes in the System VM,
 * through the agent's broker (docs/gemini-protocol.md, "The System VM's
 * broker"; docs/linux-vm.md, "Calling the host").
 *
 * Frames and values are the guest kit's (nxia_gemini.h: one codec for
 * micro-VM guests and Linux processes). A link is one connection to the
 * broker; the kernel tells the broker who holds it. Not thread-safe: one
 * link per thread. Link with libnxia.a (static; its codec included).
 *
 *   struct nxia_link l;
 *   struct nxia_gm_frame answer;
 *   struct nxia_gm_value arg = nxia_str("hello");
 *   if (nxia_link_open(&l, "my-program") == 0 &&
 *       nxia_link_call(&l, "text", "upper", &arg, 1, 5000, &answer) == 0)
 *       printf("%.*s\n", (int)answer.value.len, answer.value.ptr);
 */
#ifndef NXIA_LINUX_H
#define NXIA_LINUX_H

#include <stddef.h>
#include <stdint.h>

#include "nxia_gemini.h"
#include "nxia_portal.h"

#define NXIA_BROKER_SOCKET   "/run/nxia/gemini.sock"   /* $NXIA_GEMINI_SOCKET overrides it */
#define NXIA_LINK_MAX_IN     32764u                     /* the largest frame the broker sends */
#define NXIA_LINK_MAX_OUT    24576u                     /* the largest it takes (its WELCOME says so) */

/*
 * Portal regions in Linux processes (docs/linux-vm.md, "Portal regions in Linux
 * processes"). A region the profile shows with virtio-pmem:region=NAME,dax=true
 * is /dev/daxN.0, linked by the agent as /run/nxia/portal/NAME ($NXIA_REGION_DIR
 * overrides the directory; a link to a regular file maps that file from 2 MiB
 * on, as the host maps a file-backed region: how tests run outside a VM); a process maps
 * it in place: the host sees its stores at once and it sees the host's, with no
 * copy and no flush. Linux keeps the region's first 2 MiB (its info block), so
 * the mapping starts at region offset NXIA_REGION_LINUX_OFFSET; every offset in
 * this API is a region offset, as the host and micro-VMs count them.
 */
#define NXIA_REGION_DIR            "/run/nxia/portal"
#define NXIA_REGION_LINUX_OFFSET   (2ull << 20)

struct nxia_region {
    uint8_t *base;          /* region offset `offset` */
    uint64_t offset;        /* NXIA_REGION_LINUX_OFFSET */
    uint64_t len;           /* bytes mapped from there */
    int fd;
    int bell_fd;            /* the region's doorbell count in sysfs, opened by nxia_region_wait */
    char device[64];        /* /dev/daxN.0 */
    char why[160];
};

/* Maps region NAME (writable: read-write, else read-only). 0, or -1 with r->why. */
int nxia_region_map(struct nxia_region *r, const char *name, int writable);

/* The mapped bytes [at, at + len) of the region, or NULL when they are not all mapped. */
void *nxia_region_at(const struct nxia_region *r, uint64_t at, uint64_t len);

/*
 * Sleeps until the region's doorbell rings (the host's Portals.ring, or another
 * VM's doorbell connected with portal:connect), at most timeout_ms (-1: no limit).
 * *seen is the count the caller has seen (0 at first): returns 1 with *seen
 * updated when the count is past it (at once if it is already), 0 at the
 * timeout, -1 with r->why (a region with no doorbell: not device DAX). Rings
 * that come close together may count once: after waking, drain the rings.
 */
int nxia_region_wait(struct nxia_region *r, uint64_t *seen, int timeout_ms);

void nxia_region_unmap(struct nxia_region *r);

/* The region a link passes large byte arguments by reference in, when the VM shows it (docs/linux-vm.md). */
#define NXIA_LINK_REGION  "gemini"

struct nxia_link {
    int fd;                              /* the broker connection; poll it for nxia_link_fill */
    uint64_t session;                    /* the VM's Gemini session id (WELCOME) */
    uint64_t next_id;
    uint32_t in_len;
    int kept;                            /* the first frame in `in` was handed out: dropped at the next take */
    char why[160];                       /* what the last failure was, for messages */
    struct nxia_region region;           /* NXIA_LINK_REGION, mapped at the first large argument */
    struct nxia_arena arena;             /* its block arena (the host formats it) */
    int has_region;
    uint32_t ref_threshold;              /* byte arguments this long or longer go by reference: NXIA_GM_REF_THRESHOLD */
    uint8_t in[4 + NXIA_LINK_MAX_IN];
    uint8_t out[4 + NXIA_LINK_MAX_OUT];
};

/*
 * Connects to the broker and says HELLO as peer: 0; a Gemini error code when
 * the broker refused (NXIA_GM_ECLOSED: it cannot reach the host), or -1 when
 * the broker could not be reached; l->why says why.
 */
int nxia_link_open(struct nxia_link *l, const char *peer);

/*
 * Calls service.method with nargs arguments (at most 32; the frame at most
 * NXIA_LINK_MAX_OUT bytes) and waits up to timeout_ms for the answer; a byte
 * argument of l->ref_threshold bytes or more, or too large for the frame,
 * goes by reference into a block of the VM's NXIA_LINK_REGION region when it
 * has one (the block is freed when the call ends; without a region or a free
 * block it is copied if it fits, else the call fails NXIA_GM_EBAD_REF); on
 * timeout it sends CANCEL. Returns 0 with the RETURN in *answer (its value
 * points into l->in: valid until the link's next call, export, take or next), a Gemini error code
 * (NXIA_GM_E..., the ERROR in *answer, its message in answer->message; a
 * timeout is NXIA_GM_ETIMEOUT), or -1 when the link failed (l->why).
 * Frames of other calls that arrive meanwhile are dropped: one call at a time.
 */
int nxia_link_call(struct nxia_link *l, const char *service, const char *method,
                   const struct nxia_gm_value *args, unsigned nargs, int timeout_ms, struct nxia_gm_frame *answer);

/*
 * nxia_link_call presenting ntokens capability tokens (at most 8, 16 bytes
 * each, as a host service handed them out: a TOKEN value). A token belongs to
 * the VM's one broker session, so any process of the VM that holds its bytes
 * can present it: share a token as you would a file descriptor.
 */
int nxia_link_call_t(struct nxia_link *l, const char *service, const char *method, const struct nxia_gm_value *args, unsigned nargs,
                     const uint8_t (*tokens)[16], unsigned ntokens, int timeout_ms, struct nxia_gm_frame *answer);

/* Serves service.method to the host: its calls then arrive as CALL frames (nxia_link_next). Same returns as nxia_link_call. */
int nxia_link_export(struct nxia_link *l, const char *service, const char *method, struct nxia_gm_frame *answer);

/*
 * Points a REF argument of a host call at its block in the link's region
 * (checked: in the region, a live block, this generation): NXIA_GM_OK, or
 * NXIA_GM_EBAD_REF (answer the call with it). Other values are left alone.
 */
int nxia_link_deref(struct nxia_link *l, struct nxia_gm_value *v);

/* Sends a frame (an answer to a host call: RETURN, ERROR; or CANCEL). 0, or -1 (l->why). */
int nxia_link_send(struct nxia_link *l, const struct nxia_gm_frame *f);

/* Reads what the connection has now, without blocking past it. 0; -1 when the broker closed it (l->why). */
int nxia_link_fill(struct nxia_link *l);

/*
 * Takes the next whole frame read so far: 1 with *f (pointing into l->in:
 * valid until the link's next take, next, call or export), 0 if none is whole
 * yet, -1 if the broker broke the protocol (l->why).
 */
int nxia_link_take(struct nxia_link *l, struct nxia_gm_frame *f);

/* Waits up to timeout_ms (-1: forever) for the next frame: 1, 0 at the timeout, -1 as nxia_link_take. */
int nxia_link_next(struct nxia_link *l, struct nxia_gm_frame *f, int timeout_ms);

void nxia_link_close(struct nxia_link *l);


/*
 * Ring sessions (docs/gemini-protocol.md, "Ring sessions"): this process's calls carried over a
 * pair of Portal SPSC rings (the ABI of nxia_portal.h) that it formats in a region the VM shows as
 * device DAX, instead of through the broker's socket and the VM's vsock. It asks on a link of
 * its own (host service "gemini", method "ring"; the manifest must allow out gemini.ring), so the
 * broker vouches for it once and every call on the rings carries its identity; the session
 * lasts while that link (the process) does, at most lifetime_ms. Layout at region offset
 * `offset` (64-byte aligned, past the region's first 2 MiB): the 64-byte control block, the
 * g2h ring (this process produces), the h2g ring: NXIA_RING_SESSION_SIZE(ring_cap) bytes.
 *
 * Waiting for an answer it spins 50 us on the h2g ring, then sets guest_sleeping in the control
 * block and sleeps on the region's doorbell (nxia_region_wait), which the host rings after each
 * frame while that flag is set; a region without a doorbell is polled with a back-off to 1 ms.
 * The host polls the g2h ring the same way (a process has no doorbell to the host): while its
 * receiver sleeps, a call waits up to about 1 ms to be seen. Not thread-safe: one per thread.
 * Capability tokens belong to the broker's session and are not valid here.
 */
#define NXIA_RING_SESSION_CAP       65536u
#define NXIA_RING_SESSION_CTL       64u
#define NXIA_RING_SESSION_SIZE(cap) (NXIA_RING_SESSION_CTL + 2u * (NXIA_RING_DATA + (uint64_t)(cap)))

struct nxia_ring_session {
    struct nxia_link link;          /* the broker connection it was asked on; its end (the process's) ends the session */
    struct nxia_region region;      /* the region the rings live in */
    struct nxia_ring tx, rx;        /* g2h, h2g */
    volatile uint32_t *ctl;         /* [0] host_sleeping (the host writes it), [1] guest_sleeping (this side) */
    uint64_t ask_id;                /* the broker call that holds the session open */
    uint64_t next_id, session;      /* call ids on the rings; the session's id (WELCOME) */
    uint64_t bell_seen;             /* the doorbell count seen */
    uint32_t max_frame;
    int bell;                       /* the region has a doorbell: sleep on it, else poll with back-off */
    int closed;
    uint8_t *rxbuf, *txbuf;         /* max_frame bytes each */
    char why[160];
};

/*
 * Formats the rings (ring_cap data bytes each: a power of two, 4096 to 2^30; frames up to
 * ring_cap / 2 - 4 bytes), asks the host for the session and waits for its WELCOME: 0, a Gemini
 * error code (the host refused: s->why has its message), or -1 (s->why).
 */
int nxia_ring_session_open(struct nxia_ring_session *s, const char *peer, const char *region, uint64_t offset, uint32_t ring_cap,
                           int lifetime_ms);

/*
 * Calls service.method over the rings and waits up to timeout_ms, as nxia_link_call does
 * (byte arguments of s->link.ref_threshold bytes or more by reference into region gemini; the
 * same returns; answer points into s->rxbuf until the next call). NXIA_GM_ECLOSED once the host
 * ended the session (s->why says why).
 */
int nxia_ring_session_call(struct nxia_ring_session *s, const char *service, const char *method, const struct nxia_gm_value *args,
                           unsigned nargs, int timeout_ms, struct nxia_gm_frame *answer);

/* Says CLOSE on the rings, closes the link (the host lets go of the rings) and unmaps the region. */
void nxia_ring_session_close(struct nxia_ring_session *s);

/* The name of a Gemini error code ("DENIED"), or "ERROR" for an unknown one. */
const char *nxia_gm_code_name(unsigned code);

static inline struct nxia_gm_value nxia_str(const char *s)
{
    struct nxia_gm_value v = {0};
    v.tag = NXIA_GM_STR;
    v.ptr = (const uint8_t *)s;
    while (s[v.len])
        v.len++;
    return v;
}

static inline struct nxia_gm_value nxia_bytes(const void *p, uint32_t len)
{
    struct nxia_gm_value v = {0};
    v.tag = NXIA_GM_BYTES;
    v.ptr = (const uint8_t *)p;
    v.len = len;
    return v;
}

static inline struct nxia_gm_value nxia_i64(int64_t x)
{
    struct nxia_gm_value v = {0};
    v.tag = NXIA_GM_I64;
    v.i64 = x;
    return v;
}

#endif
