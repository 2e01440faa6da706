/* libnxia-demo - a C program on libnxia (nxia_linux.h), for GeminiBrokerTest:
 *
 *   libnxia-demo SERVICE METHOD TEXT
 *
 * calls SERVICE.METHOD(TEXT) on the host and prints the string it returns;
 * then serves demo.echo to the host, answers one call with its first
 * argument, and exits 0. */
#include <stdio.h>
#include <string.h>

#include "nxia_linux.h"

int main(int argc, char **argv)
{
    static struct nxia_link l;
    struct nxia_gm_frame f;
    struct nxia_gm_value arg;
    int rc;

    if (argc != 4) {
        fprintf(stderr, "usage: libnxia-demo SERVICE METHOD TEXT\n");
        return 2;
    }
    if ((rc = nxia_link_open(&l, "libnxia-demo")) != 0) {
        fprintf(stderr, "libnxia-demo: %s\n", l.why);
        return 3;
    }
    arg = nxia_str(argv[3]);
    rc = nxia_link_call(&l, argv[1], argv[2], &arg, 1, 10000, &f);
    if (rc) {
        fprintf(stderr, "libnxia-demo: %s: %.*s\n", rc < 0 ? "link" : nxia_gm_code_name((unsigned)rc),
                rc < 0 ? (int)strlen(l.why) : (int)f.message_len, rc < 0 ? l.why : (const char *)f.message);
        return 4;
    }
    printf("%.*s\n", (int)f.value.len, f.value.ptr);
    if ((rc = nxia_link_export(&l, "demo", "echo", &f)) != 0) {
        fprintf(stderr, "libnxia-demo: export: %d\n", rc);
        return 5;
    }
    printf("serving demo.echo\n");
    fflush(stdout);
    while ((rc = nxia_link_next(&l, &f, 30000)) == 1 && f.type != NXIA_GM_CALL)
        ;
    if (rc != 1) {
        fprintf(stderr, "libnxia-demo: no host call: %s\n", rc ? l.why : "timeout");
        return 6;
    }
    struct nxia_gm_frame ret = {.type = NXIA_GM_RETURN, .id = f.id};
    if (f.nargs)
        ret.value = f.args[0];
    if (nxia_link_send(&l, &ret) < 0)
        return 7;
    nxia_link_close(&l);
    return 0;
}
