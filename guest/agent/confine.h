#ifndef NXIA_AGENT_CONFINE_H
#define NXIA_AGENT_CONFINE_H

/* Confinement of a program the agent starts (issue 13 §5): the EXEC fields
 * FS_RULE and DENY_SYSCALLS, applied in the child between fork and execve. */
#include <stdint.h>

#define CONFINE_READ     1u
#define CONFINE_WRITE    2u
#define CONFINE_EXECUTE  4u
#define CONFINE_ALL      7u
#define CONFINE_MAX_RULES    64     /* FS_RULEs per EXEC */
#define CONFINE_MAX_PATH     4095   /* bytes of a rule's path (PATH_MAX less its NUL) */
#define CONFINE_MAX_SYSCALLS 128    /* numbers in DENY_SYSCALLS */
#define CONFINE_MAX_NR       1023   /* the largest syscall number it takes */

#define CONFINE_NS_MOUNT 1u         /* UNSHARE bits */
#define CONFINE_NS_NET   2u
#define CONFINE_NS_PID   4u         /* implies MOUNT: the program's /proc is its namespace's */
#define CONFINE_NS_USER  8u         /* root inside is CONFINE_USER_BASE outside */
#define CONFINE_NS_ALL   15u
/* A user namespace maps ids 0..CONFINE_USER_IDS-1 to CONFINE_USER_BASE.. outside
 * (the subordinate range useradd gives the first user): uid 0 in the program's
 * namespace owns nothing of the guest's. */
#define CONFINE_USER_BASE 100000u
#define CONFINE_USER_IDS  65536u

struct confine_rule {
    uint32_t access;             /* CONFINE_READ | CONFINE_WRITE | CONFINE_EXECUTE */
    const char *path;            /* absolute */
};

/* Moves the caller into new namespaces (CONFINE_NS_*): first a user namespace
 * (its uid and gid maps written by a helper forked in the agent's namespace,
 * which only there has the right to map other ids), which then owns the
 * others; a mount namespace whose mounts no longer propagate either way, a
 * network namespace with only lo, up. Needs CAP_SYS_ADMIN (and CAP_SETUID,
 * CAP_SETGID for a user namespace). -1 with errno on failure. */
int confine_unshare(uint32_t ns);

/* After confine_unshare(CONFINE_NS_PID): returns 0 in the program's process,
 * pid 2 of the new PID namespace, or -1 with errno before anything forked.
 * Forks twice and never returns in the other two: the caller stays in the
 * agent's namespace and ends as the program ended (exit status or signal,
 * re-raised), so the agent sees the program's outcome; between them pid 1
 * of the namespace mounts its /proc, reaps orphans and, once the program
 * ended, exits, which kills whatever the program left running. The program
 * is not pid 1, so a signal it does not handle ends it as anywhere else.
 * Both close keep_fd (the exec status socket) and stdio, which stay the
 * program's alone. */
int confine_pid_namespace(int keep_fd);

/* Restricts the calling thread (and what it execs) to rules[0..n) with
 * Landlock, handling every file-system access of the kernel's ABI. Needs
 * no_new_privs (or CAP_SYS_ADMIN). -1 with errno on failure; *bad is then
 * the index of the rule whose path failed, or -1. */
int confine_landlock(const struct confine_rule *rules, int n, int *bad);

/* Installs a seccomp filter: on x86_64 the syscalls nrs[0..n) are denied,
 * every other one runs; any other architecture (or x32) is killed. Needs
 * no_new_privs. notify 0: a denied call fails with err at once, returns 0.
 * notify 1: it waits for the listener this returns (an fd, close-on-exec) to
 * answer; if nrs holds sendmsg it fails with err at once, so that the caller
 * can hand the listener over with sendmsg (see confine_notify_ok). -1 with
 * errno on failure. */
int confine_seccomp(const uint32_t *nrs, int n, int err, int notify);

/* Whether a listener can be handed over: nrs does not deny sendmsg. */
int confine_notify_ok(const uint32_t *nrs, int n);

/* Answers one waiting notification of listener fd with -err; *nr and *pid
 * say what was denied. 0, or -1 with errno (ENOENT: the caller died). */
int confine_answer(int fd, int err, uint32_t *nr, uint32_t *pid);

#endif
