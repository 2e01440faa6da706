/*
 * gemini-echo - a Gemini guest (docs/gemini-protocol.md). It opens a session
 * over rings in its own RAM, exports calc.add, calc.nop, calc.echo and calc.die,
 * then:
 *   arg 0: calls the host's itest.add(40, 2), gets a token from itest.grant
 *          and presents it to itest.check, expects net.open to be DENIED,
 *          then serves the host's calls until the session closes.
 *   arg N>0: calls bench.nop() N times (the L->H benchmark), then serves.
 *
 * calc.die exits the VM with status 7 in the middle of the call.
 */
#include "nxia.h"
#include "nxia_gemini.h"

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

static int calc_echo(const struct nxia_gm_value *a, unsigned n, struct nxia_gm_value *ret, void *user)
{
    (void)user;
    if (n != 1)
        return NXIA_GM_EBAD_ARGS;
    *ret = a[0]; /* points into the receive buffer, which stays put until the reply is encoded */
    return NXIA_GM_OK;
}

static int calc_die(const struct nxia_gm_value *a, unsigned n, struct nxia_gm_value *ret, void *user)
{
    (void)a, (void)n, (void)ret, (void)user;
    nxia_puts("dying mid-call\n");
    nxia_exit(7);
}

static void show(const char *what, int rc, const struct nxia_gm_value *v)
{
    nxia_puts(what);
    nxia_puts(": ");
    if (rc != NXIA_GM_OK) {
        nxia_puts("error ");
        nxia_put_i64(rc);
        nxia_puts(" ");
    }
    if (v->tag == NXIA_GM_I64)
        nxia_put_i64(v->i64);
    else if (v->tag == NXIA_GM_STR)
        nxia_write(v->ptr, v->len);
    else if (v->tag == NXIA_GM_TOKEN)
        nxia_puts("<token>");
    else if (v->tag == NXIA_GM_NULL)
        nxia_puts("null");
    nxia_putc('\n');
    nxia_flush();
}

int main(const struct nxia_boot *boot)
{
    struct nxia_gm_value args[2], ret;
    int rc = nxia_gemini_open(&g, "gemini-echo");
    if (rc != NXIA_GM_OK) {
        nxia_puts("gemini open failed: ");
        nxia_put_i64(rc);
        nxia_putc('\n');
        return 1;
    }
    nxia_gemini_export(&g, "calc", "add", calc_add, 0);
    nxia_gemini_export(&g, "calc", "nop", calc_nop, 0);
    nxia_gemini_export(&g, "calc", "die", calc_die, 0);
    nxia_gemini_export(&g, "calc", "echo", calc_echo, 0);
    nxia_puts("session ");
    nxia_put_u64(g.session);
    nxia_putc('\n');

    if (boot->arg > 0) {
        for (unsigned long i = 0; i < boot->arg; i++) {
            rc = nxia_gemini_call(&g, "bench", "nop", 0, 0, 0, 0, &ret);
            if (rc != NXIA_GM_OK) {
                show("bench.nop", rc, &ret);
                return 2;
            }
        }
        nxia_puts("bench done\n");
    } else {
        int ok = 1;
        args[0].tag = args[1].tag = NXIA_GM_I64;
        args[0].i64 = 40;
        args[1].i64 = 2;
        rc = nxia_gemini_call(&g, "itest", "add", args, 2, 0, 0, &ret);
        show("itest.add", rc, &ret);
        ok &= rc == NXIA_GM_OK && ret.tag == NXIA_GM_I64 && ret.i64 == 42;

        rc = nxia_gemini_call(&g, "itest", "grant", 0, 0, 0, 0, &ret);
        show("itest.grant", rc, &ret);
        uint8_t token[1][16];
        ok &= rc == NXIA_GM_OK && ret.tag == NXIA_GM_TOKEN;
        memcpy(token[0], ret.token, 16);
        rc = nxia_gemini_call(&g, "itest", "check", 0, 0, (const uint8_t (*)[16])token, 1, &ret);
        show("itest.check", rc, &ret);
        ok &= rc == NXIA_GM_OK;
        token[0][0] ^= 1; /* a forged token */
        rc = nxia_gemini_call(&g, "itest", "check", 0, 0, (const uint8_t (*)[16])token, 1, &ret);
        show("itest.check forged", rc, &ret);
        ok &= rc == NXIA_GM_ETOKEN;

        rc = nxia_gemini_call(&g, "net", "open", 0, 0, 0, 0, &ret);
        show("net.open", rc, &ret);
        ok &= rc == NXIA_GM_EDENIED;
        nxia_puts(ok ? "l2h ok\n" : "l2h FAILED\n");
    }
    nxia_puts("serving\n");
    nxia_flush();
    unsigned long served = nxia_gemini_serve(&g);
    nxia_puts("closed after serving ");
    nxia_put_u64(served);
    nxia_puts(" calls\n");
    return 0;
}
