/* proto.h - NXIA control protocol v1 (docs/control-protocol.md): frames, TLV
 * fields, HMAC-SHA256 proofs. Shared by the agent and its host-side tests. */
#ifndef NXIA_CTL_PROTO_H
#define NXIA_CTL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define CTL_VERSION      1u
#define CTL_HEADER       12u             /* u32 length, u16 type, u16 flags, u32 id */
#define CTL_MAX_BODY     65536u          /* the largest length field: type..payload */
#define CTL_MAX_PAYLOAD  (CTL_MAX_BODY - 8u)
#define CTL_NONCE        32u
#define CTL_MAC          32u
#define CTL_MIN_SECRET   16u
#define CTL_MAX_SECRET   64u
#define CTL_VSOCK_PORT   1024u

/* host -> agent */
enum {
    CTL_HELLO = 0x01, CTL_AUTH = 0x02, CTL_CONFIGURE = 0x10, CTL_EXEC = 0x11,
    CTL_STDIN = 0x12, CTL_SIGNAL = 0x13, CTL_RESIZE = 0x14, CTL_QUIESCE = 0x15,
    CTL_RESUME = 0x16, CTL_SHUTDOWN = 0x17,
};
/* agent -> host */
enum {
    CTL_HELLO_REPLY = 0x81, CTL_READY = 0x82, CTL_OK = 0x90, CTL_ERROR = 0x91,
    CTL_STARTED = 0x92, CTL_STDOUT = 0x93, CTL_STDERR = 0x94, CTL_EXIT = 0x95,
    CTL_DENIED = 0x96,
};
/* ERROR codes */
enum {
    CTL_E_PROTO = 1, CTL_E_VERSION = 2, CTL_E_AUTH = 3, CTL_E_TOO_BIG = 4,
    CTL_E_TRUNCATED = 5, CTL_E_UNKNOWN_TYPE = 6, CTL_E_EXEC = 7, CTL_E_NO_SUCH_ID = 8,
    CTL_E_QUIESCED = 9, CTL_E_SYSTEM = 10,
};
/* TLV tags in CONFIGURE, EXEC and RESUME payloads */
enum {
    CTL_T_ARG = 1, CTL_T_ENV = 2, CTL_T_CWD = 3, CTL_T_PTY = 4,
    CTL_T_HOSTNAME = 5, CTL_T_MOUNT = 6,
    /* RESUME of a clone: all three or none */
    CTL_T_GENERATION = 7, CTL_T_SEED = 8, CTL_T_SECRET = 9,
    /* EXEC's confinement (confine.h) */
    CTL_T_FS_RULE = 10, CTL_T_DENY_SYSCALLS = 11, CTL_T_UNSHARE = 12,
};
#define CTL_MIN_SEED     32u
#define CTL_MAX_SEED     256u

/* Writes a frame header into out[CTL_HEADER]; payload follows it. */
void ctl_header(uint8_t *out, uint16_t type, uint32_t id, uint32_t payload_len);
uint32_t ctl_get32(const uint8_t *p);
uint16_t ctl_get16(const uint8_t *p);
void ctl_put32(uint8_t *p, uint32_t v);
void ctl_put16(uint8_t *p, uint16_t v);

/* Looks at the bytes of a stream from a frame's start: the frame's whole size
 * when it is complete, 0 when more bytes are needed, or -code (CTL_E_TOO_BIG,
 * CTL_E_PROTO; CTL_E_TRUNCATED when at_eof and incomplete) for a stream that
 * must be refused. */
long ctl_scan(const uint8_t *p, size_t avail, int at_eof);

/* A TLV cursor over a payload: tag u8, length u32 LE, value. */
struct ctl_tlv {
    const uint8_t *p, *end;
    uint8_t tag;
    const uint8_t *val;
    uint32_t len;
};
/* 1: a field is in tag/val/len; 0: end; -1: malformed (length past the end). */
int ctl_tlv_next(struct ctl_tlv *t);
/* Appends a field to buf (capacity cap) at *off; -1 if it does not fit. */
int ctl_tlv_put(uint8_t *buf, size_t cap, size_t *off, uint8_t tag, const void *val, uint32_t len);

void ctl_hmac(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
              uint8_t mac[CTL_MAC]);
/* The proof each side sends: HMAC(secret, label || nonce_a || nonce_b), label
 * "nxia-ctl-v1 agent" (agent: a = host nonce) or "nxia-ctl-v1 host" (host: a =
 * agent nonce). */
void ctl_proof(const uint8_t *secret, size_t secret_len, int agent,
               const uint8_t a[CTL_NONCE], const uint8_t b[CTL_NONCE], uint8_t mac[CTL_MAC]);
int ctl_mac_equal(const uint8_t *a, const uint8_t *b);
/* Decodes hex (even length, no separators) into out; -1 if malformed or too long. */
long ctl_unhex(const char *hex, uint8_t *out, size_t cap);

#endif
