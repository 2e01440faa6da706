/* sha256-test - host test of kit/sha256.c against FIPS 180 vectors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nxia_sha256.h"

static int failures;

static void hex(const uint8_t *d, char *out)
{
    for (unsigned i = 0; i < NXIA_SHA256_DIGEST; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void expect(const char *name, const uint8_t *digest, const char *want)
{
    char got[2 * NXIA_SHA256_DIGEST + 1];

    hex(digest, got);
    if (strcmp(got, want)) {
        fprintf(stderr, "sha256-test: %s: got %s, want %s\n", name, got, want);
        failures++;
    }
}

/* one-shot, and fed in pieces of every size 1..130 */
static void check(const char *name, const void *data, size_t len, const char *want)
{
    uint8_t d[NXIA_SHA256_DIGEST];

    nxia_sha256(data, len, d);
    expect(name, d, want);
    for (size_t step = 1; step <= 130 && step <= len + 1; step++) {
        struct nxia_sha256 s;
        nxia_sha256_init(&s);
        for (size_t off = 0; off < len; off += step)
            nxia_sha256_update(&s, (const char *)data + off, len - off < step ? len - off : step);
        nxia_sha256_final(&s, d);
        expect(name, d, want);
    }
}

int main(void)
{
    check("\"\"", "", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check("\"abc\"", "abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check("448-bit", m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    check("896-bit", m896, strlen(m896), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    size_t n = 1000000;
    char *a = malloc(n);
    if (!a)
        return 1;
    memset(a, 'a', n);
    check("a million 'a'", a, n, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
    /* lengths around the padding boundary (55, 56, 63, 64 bytes) must agree piecewise (done above) */
    if (failures) {
        fprintf(stderr, "sha256-test: %d failure(s)\n", failures);
        return 1;
    }
    printf("sha256-test: all vectors pass\n");
    return 0;
}
