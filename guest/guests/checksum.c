/*
 * checksum - the guest of the third-party runtime adapter "checksum" (examples/checksum): opens a
 * Gemini session and has the host's java.util.zip compute CRC-32, CRC-32C and Adler-32 of
 * "123456789", whose check values are standard. Status 0 when all three match, 1 when the
 * session cannot open, 2 when a call fails or a value is wrong (e.g. the adapter is not deployed).
 */
#include "nxia.h"
#include "nxia_gemini.h"

static struct nxia_gemini g;

static int check(const char *method, int64_t expected)
{
    static const char data[] = "123456789";
    struct nxia_gm_value arg, ret;
    memset(&arg, 0, sizeof arg);
    arg.tag = NXIA_GM_BYTES;
    arg.ptr = (const uint8_t *)data;
    arg.len = sizeof data - 1;
    int rc = nxia_gemini_call(&g, "checksum", method, &arg, 1, 0, 0, &ret);
    nxia_puts("checksum.");
    nxia_puts(method);
    if (rc != NXIA_GM_OK || ret.tag != NXIA_GM_I64) {
        nxia_puts(": error ");
        nxia_put_i64(rc);
        nxia_putc('\n');
        return 0;
    }
    nxia_puts(": ");
    nxia_put_i64(ret.i64);
    nxia_puts(ret.i64 == expected ? " ok\n" : " WRONG\n");
    return ret.i64 == expected;
}

int main(const struct nxia_boot *boot)
{
    (void)boot;
    int rc = nxia_gemini_open(&g, "checksum");
    if (rc != NXIA_GM_OK) {
        nxia_puts("gemini open failed: ");
        nxia_put_i64(rc);
        nxia_putc('\n');
        return 1;
    }
    int ok = check("crc32", 0xCBF43926) & check("crc32c", 0xE3069283) & check("adler32", 0x091E01DE);
    nxia_puts(ok ? "checksum: all ok\n" : "checksum: FAILED\n");
    return ok ? 0 : 2;
}
