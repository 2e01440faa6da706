/* nxia_sha256.h - SHA-256 (FIPS 180-4), freestanding; used by guests and host tests. */
#ifndef NXIA_SHA256_H
#define NXIA_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define NXIA_SHA256_DIGEST 32u

struct nxia_sha256 {
    uint32_t h[8];
    uint64_t total;          /* bytes hashed so far */
    uint8_t  block[64];
    uint32_t used;           /* bytes in block */
};

void nxia_sha256_init(struct nxia_sha256 *s);
void nxia_sha256_update(struct nxia_sha256 *s, const void *data, size_t len);
void nxia_sha256_final(struct nxia_sha256 *s, uint8_t digest[NXIA_SHA256_DIGEST]);
void nxia_sha256(const void *data, size_t len, uint8_t digest[NXIA_SHA256_DIGEST]);

#endif
