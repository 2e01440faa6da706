/*
 * hostcall - calls host function "upper" with "hello from the guest", prints
 * the answer and checks it is "HELLO FROM THE GUEST", then calls
 * "no-such-function" and expects NXIA_HC_ENOENT. Exits 0 if both behaved,
 * 1 otherwise.
 */
#include "nxia.h"

int main(const struct nxia_boot *boot)
{
    static const char msg[] = "hello from the guest";
    static const char expected[] = "HELLO FROM THE GUEST";
    static char ret[256];
    unsigned long ret_len = 0;
    int ok = 1;

    (void)boot;
    int st = nxia_hostcall("upper", msg, sizeof msg - 1, ret, sizeof ret, &ret_len);
    if (st == NXIA_HC_OK) {
        nxia_puts("host says: ");
        nxia_write(ret, ret_len);
        nxia_putc('\n');
        if (ret_len != sizeof expected - 1 || memcmp(ret, expected, sizeof expected - 1) != 0) {
            nxia_puts("host call \"upper\" answered something else than \"");
            nxia_puts(expected);
            nxia_puts("\"\n");
            ok = 0;
        }
    } else {
        nxia_puts("host call \"upper\" failed: status ");
        nxia_put_i64(st);
        nxia_putc('\n');
        ok = 0;
    }

    st = nxia_hostcall("no-such-function", msg, sizeof msg - 1, ret, sizeof ret, &ret_len);
    nxia_puts("no-such-function: status ");
    nxia_put_i64(st);
    if (st == NXIA_HC_ENOENT) {
        nxia_puts(" (NXIA_HC_ENOENT, as expected)\n");
    } else {
        nxia_puts(" (expected -2, NXIA_HC_ENOENT)\n");
        ok = 0;
    }
    return ok ? 0 : 1;
}
