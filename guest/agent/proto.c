/* proto.c - NXIA control protocol v1 encoding and HMAC-SHA256. */
#include <string.h>

#include "nxia_sha256.h"
#include "proto.h"

void ctl_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

void ctl_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
}

uint32_t ctl_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint16_t ctl_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

void ctl_header(uint8_t *out, uint16_t type, uint32_t id, uint32_t payload_len)
{
    ctl_put32(out, payload_len + 8);
    ctl_put16(out + 4, type);
    ctl_put16(out + 6, 0);
    ctl_put32(out + 8, id);
}

long ctl_scan(const uint8_t *p, size_t avail, int at_eof)
{
    if (avail >= 4 && ctl_get32(p) > CTL_MAX_BODY)
        return -CTL_E_TOO_BIG;
    if (avail >= 4 && ctl_get32(p) < 8)
        return -CTL_E_PROTO;
    if (avail >= 8 && ctl_get16(p + 6) != 0)
        return -CTL_E_PROTO;
    if (avail < CTL_HEADER || avail - 4 < ctl_get32(p))
        return at_eof && avail ? -CTL_E_TRUNCATED : 0;
    return 4 + (long)ctl_get32(p);
}

int ctl_tlv_next(struct ctl_tlv *t)
{
    if (t->p == t->end)
        return 0;
    if (t->end - t->p < 5)
        return -1;
    t->tag = t->p[0];
    t->len = ctl_get32(t->p + 1);
    if ((size_t)(t->end - t->p - 5) < t->len)
        return -1;
    t->val = t->p + 5;
    t->p += 5 + (size_t)t->len;
    return 1;
}

int ctl_tlv_put(uint8_t *buf, size_t cap, size_t *off, uint8_t tag, const void *val, uint32_t len)
{
    if (cap - *off < 5 || cap - *off - 5 < len)
        return -1;
    buf[*off] = tag;
    ctl_put32(buf + *off + 1, len);
    if (len)
        memcpy(buf + *off + 5, val, len);
    *off += 5 + (size_t)len;
    return 0;
}

void ctl_hmac(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
              uint8_t mac[CTL_MAC])
{
    uint8_t k[64] = {0}, pad[64], inner[NXIA_SHA256_DIGEST];
    struct nxia_sha256 s;

    if (key_len > 64)
        nxia_sha256(key, key_len, k);
    else
        memcpy(k, key, key_len);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    nxia_sha256_init(&s);
    nxia_sha256_update(&s, pad, 64);
    nxia_sha256_update(&s, msg, msg_len);
    nxia_sha256_final(&s, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    nxia_sha256_init(&s);
    nxia_sha256_update(&s, pad, 64);
    nxia_sha256_update(&s, inner, sizeof inner);
    nxia_sha256_final(&s, mac);
}

void ctl_proof(const uint8_t *secret, size_t secret_len, int agent,
               const uint8_t a[CTL_NONCE], const uint8_t b[CTL_NONCE], uint8_t mac[CTL_MAC])
{
    static const char agent_label[] = "nxia-ctl-v1 agent", host_label[] = "nxia-ctl-v1 host";
    const char *label = agent ? agent_label : host_label;
    size_t n = strlen(label);
    uint8_t msg[sizeof agent_label + 2 * CTL_NONCE];

    memcpy(msg, label, n);
    memcpy(msg + n, a, CTL_NONCE);
    memcpy(msg + n + CTL_NONCE, b, CTL_NONCE);
    ctl_hmac(secret, secret_len, msg, n + 2 * CTL_NONCE, mac);
}

/* Constant time: the comparison must not tell a prober how many bytes matched. */
int ctl_mac_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;

    for (unsigned i = 0; i < CTL_MAC; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long ctl_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);

    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(n / 2);
}
