/* deny-run - runs a program as if the kernel lacked some system calls:
 * they fail with ENOSYS (a seccomp filter, confine.c). AgentConfineTest runs
 * the agent under it to see an EXEC with FS_RULEs refused, not run
 * unconfined, on a kernel without Landlock.
 *
 *   deny-run NR[,NR...] PROGRAM [ARG...]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>

#include "confine.h"

int main(int argc, char **argv)
{
    uint32_t nrs[CONFINE_MAX_SYSCALLS];
    int n = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: deny-run NR[,NR...] PROGRAM [ARG...]\n");
        return 2;
    }
    for (char *s = argv[1], *end; *s && n < CONFINE_MAX_SYSCALLS; s = *end ? end + 1 : end) {
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v > CONFINE_MAX_NR || (*end && *end != ',')) {
            fprintf(stderr, "deny-run: bad syscall list %s\n", argv[1]);
            return 2;
        }
        nrs[n++] = (uint32_t)v;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || confine_seccomp(nrs, n, ENOSYS, 0) < 0) {
        fprintf(stderr, "deny-run: seccomp: %s\n", strerror(errno));
        return 1;
    }
    execvp(argv[2], argv + 2);
    fprintf(stderr, "deny-run: %s: %s\n", argv[2], strerror(errno));
    return 127;
}
