/*
 * gemini-vsock - a Gemini guest over virtio-vsock, the portable path
 * (docs/gemini-protocol.md, "Transports"). It connects to host port arg
 * (7000 when 0), says HELLO, exports calc.add and calc.nop, calls the host's
 * itest.add(40, 2), then serves the host's calls until the session closes.
 */
#include "nxia.h"
#include "nxia_gemini.h"
#include "nxia_vsock.h"

static struct nxia_gemini g;

static int calc_add(const struct nxia_gm_value *a, unsigned n, struct nxia_gm_value *ret, void *user)
{
    (void)user;
    if (n != 2 || a[0].tag != NXIA_GM_I64 || a[1].tag != NXIA_GM_I64)
        return NXIA_GM_EBAD_ARGS;
    ret->tag = NXIA_GM_I64;
    ret->i64 = a[0].i64 + a[1].i64;
    return NXIA_GM_OK;
}

static int calc_nop(const struct nxia_gm_value *a, unsigned n, struct nxia_gm_value *ret, void *user)
{
    (void)a, (void)n, (void)user;
    ret->tag = NXIA_GM_NULL;
    return NXIA_GM_OK;
}

int main(const struct nxia_boot *boot)
{
    struct nxia_gm_value args[2], ret;
    uint32_t port = boot->arg ? (uint32_t)boot->arg : 7000;
    int rc = nxia_vsock_init();
    if (rc != 0) {
        nxia_puts("vsock init failed: ");
        nxia_put_i64(rc);
        nxia_putc('\n');
        return 1;
    }
    rc = nxia_gemini_open_vsock(&g, "gemini-vsock", port);
    if (rc != NXIA_GM_OK) {
        nxia_puts("gemini open over vsock failed: ");
        nxia_put_i64(rc);
        nxia_putc('\n');
        return 1;
    }
    nxia_gemini_export(&g, "calc", "add", calc_add, 0);
    nxia_gemini_export(&g, "calc", "nop", calc_nop, 0);
    nxia_puts("session ");
    nxia_put_u64(g.session);
    nxia_puts(" over vsock\n");
    args[0].tag = args[1].tag = NXIA_GM_I64;
    args[0].i64 = 40;
    args[1].i64 = 2;
    rc = nxia_gemini_call(&g, "itest", "add", args, 2, 0, 0, &ret);
    if (rc == NXIA_GM_OK && ret.tag == NXIA_GM_I64) {
        nxia_puts("itest.add: ");
        nxia_put_i64(ret.i64);
        nxia_putc('\n');
    } else {
        nxia_puts("itest.add failed: ");
        nxia_put_i64(rc);
        nxia_putc('\n');
    }
    nxia_puts("serving\n");
    nxia_flush();
    unsigned long served = nxia_gemini_serve(&g);
    nxia_puts("closed after serving ");
    nxia_put_u64(served);
    nxia_puts(" calls\n");
    return 0;
}
