/*
 * nxia_gemini.h - Gemini calls across the VM boundary, guest side
 * (docs/gemini-protocol.md), and the Portal SPSC ring it runs over
 * (docs/portal-abi.md).
 *
 * The codec and the ring build for the host too (the test program); the
 * session API needs a guest (NXIA_GUEST).
 */
#ifndef NXIA_GEMINI_H
#define NXIA_GEMINI_H

#include <stddef.h>
#include <stdint.h>

#include "nxia_portal.h"

#define NXIA_GM_VERSION      1u
#define NXIA_GM_HEADER       16u

enum {
    NXIA_GM_HELLO = 1, NXIA_GM_WELCOME, NXIA_GM_CALL, NXIA_GM_RETURN,
    NXIA_GM_ERROR, NXIA_GM_CANCEL, NXIA_GM_CLOSE
};

enum {
    NXIA_GM_NULL = 0, NXIA_GM_BOOL, NXIA_GM_I32, NXIA_GM_I64, NXIA_GM_F64,
    NXIA_GM_STR, NXIA_GM_BYTES, NXIA_GM_REF, NXIA_GM_TOKEN
};

/* Error codes (ERROR frames); 0 is success in the C API. */
enum {
    NXIA_GM_OK = 0, NXIA_GM_EBAD_FRAME, NXIA_GM_EVERSION, NXIA_GM_EAUTH,
    NXIA_GM_ENO_SERVICE, NXIA_GM_ENO_METHOD, NXIA_GM_EBAD_ARGS, NXIA_GM_EDENIED,
    NXIA_GM_ETOKEN, NXIA_GM_EFAILED, NXIA_GM_ECANCELLED, NXIA_GM_ETIMEOUT,
    NXIA_GM_ECLOSED, NXIA_GM_ERATE_LIMITED, NXIA_GM_EBUSY, NXIA_GM_EBAD_REF
};

#define NXIA_GM_MAX_NAME     64u
#define NXIA_GM_MAX_PEER     64u
#define NXIA_GM_MAX_AUTH     256u
#define NXIA_GM_MAX_MESSAGE  1024u
#define NXIA_GM_MAX_TOKENS   8u
#define NXIA_GM_MAX_ARGS     32u

/*
 * One value. Strings and bytes point into the frame they came from; a REF
 * argument of a served call also gets ptr/len: its block, in place, after the
 * session checked it (bounds, block, generation) against its region.
 */
struct nxia_gm_value {
    uint8_t tag;
    uint8_t b;                 /* BOOL */
    int32_t i32;               /* I32 */
    int64_t i64;               /* I64 */
    uint64_t f64;              /* F64: the IEEE 754 bits */
    const uint8_t *ptr;        /* STR, BYTES */
    uint32_t len;
    uint64_t ref_off, ref_len; /* REF */
    uint32_t ref_gen;
    uint8_t token[16];         /* TOKEN */
};

/* A decoded frame; which fields count depends on type. */
struct nxia_gm_frame {
    uint8_t type;
    uint64_t id;
    uint16_t min_version, max_version;       /* HELLO */
    const uint8_t *peer; uint32_t peer_len;
    const uint8_t *auth; uint32_t auth_len;
    uint16_t version; uint32_t max_frame;    /* WELCOME */
    uint64_t session;
    const uint8_t *service; uint32_t service_len; /* CALL */
    const uint8_t *method; uint32_t method_len;
    uint8_t ntokens; const uint8_t *tokens;  /* 16 bytes each */
    uint16_t nargs;
    struct nxia_gm_value args[NXIA_GM_MAX_ARGS];
    struct nxia_gm_value value;              /* RETURN */
    uint16_t code;                           /* ERROR */
    const uint8_t *message; uint32_t message_len; /* ERROR message, CLOSE reason */
};

/* Decodes a hostile frame; 0 if valid, -1 if it is a BAD_FRAME. */
int nxia_gm_decode(const uint8_t *buf, uint32_t len, struct nxia_gm_frame *f);

/* Encodes f into buf; returns the length, or -1 if it does not fit or breaks a limit. */
long nxia_gm_encode(const struct nxia_gm_frame *f, uint8_t *buf, uint32_t cap);

/*
 * Checks a REF value against the arena of the session's reference region and
 * points v->ptr/len at its block: NXIA_GM_OK, or NXIA_GM_EBAD_REF if the
 * reference is outside the region, not a block, or stale.
 */
int nxia_gm_deref(struct nxia_arena *a, struct nxia_gm_value *v);

/* ---- Portal SPSC ring (docs/portal-abi.md) ---- */

#define NXIA_RING_MAGIC      0x5250584eu /* "NXPR" */
#define NXIA_RING_DATA       192u

struct nxia_ring {
    uint8_t *base;
    uint32_t cap;
    uint64_t prod, cons;  /* this side's own index */
};

/* Formats an empty ring of cap data bytes (power of two, >= 64) at mem (8-byte aligned, 192 + cap bytes). */
int nxia_ring_format(struct nxia_ring *r, void *mem, uint32_t cap);
/* 1 queued, 0 full, -1 never fits or the consumer index is corrupt. */
int nxia_ring_offer(struct nxia_ring *r, const void *msg, uint32_t len);
/* The message length, -1 if empty, -2 if corrupt or larger than cap_into. */
long nxia_ring_poll(struct nxia_ring *r, void *into, uint32_t cap_into);

/* ---- guest session ---------------------------------------------------- */

#define NXIA_GM_ATTACH_MAGIC 0x4d47584eu /* "NXGM" */
#define NXIA_GM_OP_ATTACH    1u
#define NXIA_GM_OP_KICK      2u
#define NXIA_GM_OP_REGION    3u

/* Ring capacity of nxia_gemini_open; nxia_gemini_open_in takes any power of two. */
#define NXIA_GM_RING_CAP     65536u
/*
 * Memory nxia_gemini_open_in needs for rings of cap bytes: both rings, a
 * receive and a send buffer. A frame is at most cap / 2 - 4 bytes: a record
 * never wraps, so a larger one could find no room even in an empty ring.
 */
#define NXIA_GM_MEM_SIZE(cap) (2u * (NXIA_RING_DATA + (uint64_t)(cap)) + (uint64_t)(cap))
#define NXIA_GM_MAX_EXPORTS  16u

/* How nxia_gemini_call_m passes BYTES arguments (docs/gemini-protocol.md, "Large arguments"). */
enum { NXIA_GM_AUTO = 0, NXIA_GM_COPY, NXIA_GM_REFERENCE };
/* AUTO passes BYTES of at least this many bytes by reference: the measured crossover (the host's default too). */
#define NXIA_GM_REF_THRESHOLD (16u * 1024u)

/*
 * An exported function: fill *ret (strings/bytes it points to must outlive
 * the call, e.g. static) and return NXIA_GM_OK or an error code.
 */
typedef int (*nxia_gm_fn)(const struct nxia_gm_value *args, unsigned nargs, struct nxia_gm_value *ret, void *user);

struct nxia_gemini {
    volatile uint32_t ctl[16] __attribute__((aligned(64)));
    uint8_t *g2h, *h2g;         /* the rings, NXIA_RING_DATA + ring_cap bytes each */
    uint8_t *rxbuf, *txbuf;     /* max_frame bytes each */
    int vsock;                  /* the vsock connection of nxia_gemini_open_vsock, or -1 over rings */
    uint32_t rx_have;           /* vsock: bytes of the frame being received (its u32 length first) */
    uint8_t rx_len[4];
    uint32_t ring_cap, max_frame;
    struct nxia_ring tx, rx;
    struct nxia_gm_frame in, out;
    struct nxia_arena arena;    /* the reference region's block arena, when has_region */
    int has_region;
    uint64_t ref_threshold;     /* AUTO marshalling; NXIA_GM_REF_THRESHOLD after open */
    uint64_t next_id;
    uint64_t session;
    int closed;
    unsigned nexports;
    struct { const char *service, *method; nxia_gm_fn fn; void *user; } exports[NXIA_GM_MAX_EXPORTS];
    unsigned long calls_served;
};

#ifdef NXIA_GUEST
/* Formats the rings, attaches them (host call "gemini"), says HELLO and waits for WELCOME. NXIA_GM_OK or an error. */
int nxia_gemini_open(struct nxia_gemini *g, const char *peer);
/*
 * As nxia_gemini_open, with rings of ring_cap bytes (a power of two, 64 to 2^30)
 * in mem (64-byte aligned, NXIA_GM_MEM_SIZE(ring_cap) bytes): frames up to
 * ring_cap - 4 bytes, e.g. large copied arguments.
 */
int nxia_gemini_open_in(struct nxia_gemini *g, const char *peer, void *mem, uint64_t len, uint32_t ring_cap);
/*
 * As nxia_gemini_open over a virtio-vsock stream to host port `port` (the
 * portable path; call nxia_vsock_init first): each frame is a u32 length and
 * its bytes, at most NXIA_GM_RING_CAP / 2 - 4 bytes. The same HELLO and session.
 */
int nxia_gemini_open_vsock(struct nxia_gemini *g, const char *peer, uint32_t port);
/*
 * Binds the mapped Portal region `name`, which holds a block arena, as the
 * session's reference region (host call "gemini", op REGION): by-reference
 * arguments of both directions live there. NXIA_GM_OK or an error.
 */
int nxia_gemini_region(struct nxia_gemini *g, const char *name);
/* Registers service.method for the host to call. */
int nxia_gemini_export(struct nxia_gemini *g, const char *service, const char *method, nxia_gm_fn fn, void *user);
/*
 * Calls service.method in the host and waits, serving the host's calls
 * meanwhile. On NXIA_GM_OK *ret holds the result (strings point into g,
 * valid until the next call); on an error the code is returned and
 * *ret holds the message as a STR.
 */
int nxia_gemini_call(struct nxia_gemini *g, const char *service, const char *method,
                     const struct nxia_gm_value *args, unsigned nargs,
                     const uint8_t (*tokens)[16], unsigned ntokens, struct nxia_gm_value *ret);
/*
 * As nxia_gemini_call, passing BYTES arguments as `marshalling` says
 * (NXIA_GM_AUTO, NXIA_GM_COPY or NXIA_GM_REFERENCE): by reference, the session
 * copies one into a block of its region, sends a REF and frees the block when
 * the answer arrives. NXIA_GM_EBAD_REF if REFERENCE finds no region or block.
 */
int nxia_gemini_call_m(struct nxia_gemini *g, const char *service, const char *method,
                       const struct nxia_gm_value *args, unsigned nargs,
                       const uint8_t (*tokens)[16], unsigned ntokens, int marshalling, struct nxia_gm_value *ret);
/* Serves the host's calls until it closes the session; returns the number served. */
unsigned long nxia_gemini_serve(struct nxia_gemini *g);
#endif

#endif /* NXIA_GEMINI_H */
