/*
 * sha256 - SHA-256 of the input buffer (boot->input_gpa, input_len).
 * Writes the 32-byte digest to the output buffer, sets output_len = 32 and
 * prints "sha256 <hex>". Empty input is valid. Exits 2 if the output buffer
 * is smaller than a digest (the line is still printed).
 */
#include "nxia.h"
#include "nxia_sha256.h"

int main(const struct nxia_boot *boot)
{
    uint8_t digest[NXIA_SHA256_DIGEST];
    const void *input = (const void *)(uintptr_t)boot->input_gpa;

    nxia_sha256(input, boot->input_len, digest);

    nxia_puts("sha256 ");
    nxia_put_hex(digest, sizeof digest);
    nxia_putc('\n');

    if (boot->output_cap < sizeof digest) {
        nxia_puts("sha256: output buffer too small (");
        nxia_put_u64(boot->output_cap);
        nxia_puts(" bytes)\n");
        return 2;
    }
    memcpy((void *)(uintptr_t)boot->output_gpa, digest, sizeof digest);
    ((volatile struct nxia_boot *)boot)->output_len = sizeof digest;
    return 0;
}
