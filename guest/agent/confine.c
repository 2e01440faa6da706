/* confine.c - Landlock and seccomp for the programs the agent starts
 * (docs/linux-vm.md, Confinement). Runs in the forked child only: nothing
 * here allocates, so it is safe after fork. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "confine.h"

/* <linux/landlock.h> of older build hosts may lack the later bits: the ABI's own numbers. */
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_EXECUTE     (1ull << 0)
#define LL_WRITE_FILE  (1ull << 1)
#define LL_READ_FILE   (1ull << 2)
#define LL_READ_DIR    (1ull << 3)
#define LL_MAKE_ETC    (0x1ffull << 4)   /* REMOVE_DIR, REMOVE_FILE, MAKE_CHAR .. MAKE_SYM */
#define LL_REFER       (1ull << 13)      /* ABI 2 */
#define LL_TRUNCATE    (1ull << 14)      /* ABI 3 */
#define LL_IOCTL_DEV   (1ull << 15)      /* ABI 5 */
/* the rights a rule on a file (not a directory) may hold */
#define LL_FILE_ONLY   (LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV)

struct ll_ruleset_attr { uint64_t handled_access_fs; };
struct ll_path_beneath { uint64_t allowed_access; int32_t parent_fd; } __attribute__((packed));

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

static uint64_t handled_by(int abi)
{
    uint64_t h = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_READ_DIR | LL_MAKE_ETC;
    if (abi >= 2)
        h |= LL_REFER;
    if (abi >= 3)
        h |= LL_TRUNCATE;
    if (abi >= 5)
        h |= LL_IOCTL_DEV;
    return h;
}

/* What read / write / execute mean in Landlock's terms: write is everything
 * that changes the tree (create, remove, rename, truncate). */
static uint64_t rights(uint32_t access)
{
    uint64_t r = 0;
    if (access & CONFINE_READ)
        r |= LL_READ_FILE | LL_READ_DIR;
    if (access & CONFINE_WRITE)
        r |= LL_WRITE_FILE | LL_MAKE_ETC | LL_REFER | LL_TRUNCATE;
    if (access & CONFINE_EXECUTE)
        r |= LL_EXECUTE;
    if (access & (CONFINE_READ | CONFINE_WRITE))
        r |= LL_IOCTL_DEV;    /* ioctl on a device opened beneath the path */
    return r;
}

int confine_landlock(const struct confine_rule *rules, int n, int *bad)
{
    *bad = -1;
    long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    if (abi < 1)
        return -1;    /* ENOSYS: not built in; EOPNOTSUPP: not enabled at boot */
    struct ll_ruleset_attr attr = {.handled_access_fs = handled_by((int)abi)};
    int rs = (int)syscall(__NR_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (rs < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        struct stat st;
        struct ll_path_beneath pb = {.parent_fd = open(rules[i].path, O_PATH | O_CLOEXEC)};
        if (pb.parent_fd < 0 || fstat(pb.parent_fd, &st) < 0) {
            *bad = i;
            goto fail;
        }
        pb.allowed_access = rights(rules[i].access) & attr.handled_access_fs;
        if (!S_ISDIR(st.st_mode))
            pb.allowed_access &= LL_FILE_ONLY;
        if (pb.allowed_access && syscall(__NR_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
            *bad = i;
            int e = errno;
            close(pb.parent_fd);
            errno = e;
            goto fail;
        }
        close(pb.parent_fd);
    }
    if (syscall(__NR_landlock_restrict_self, rs, 0) < 0)
        goto fail;
    close(rs);
    return 0;
fail:;
    int e = errno;
    close(rs);
    errno = e;
    return -1;
}

/* Writes "0 CONFINE_USER_BASE CONFINE_USER_IDS" to /proc/PID/{uid,gid}_map. */
static int write_id_maps(pid_t pid)
{
    static const char *names[] = {"uid_map", "gid_map"};
    char path[64], line[48];
    int n = snprintf(line, sizeof line, "0 %u %u\n", CONFINE_USER_BASE, CONFINE_USER_IDS);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, names[i]);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        ssize_t w = write(fd, line, (size_t)n);
        int e = errno;
        close(fd);
        if (w != n) {
            errno = w < 0 ? e : EIO;
            return -1;
        }
    }
    return 0;
}

/* unshare(CLONE_NEWUSER), its maps written by a helper that stays in the
 * agent's user namespace: a process inside the new one may map only itself. */
static int enter_user_namespace(void)
{
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0)
        return -1;
    pid_t self = getpid();
    pid_t helper = fork();
    if (helper < 0) {
        int e = errno;
        close(go[0]);
        close(go[1]);
        errno = e;
        return -1;
    }
    if (helper == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) != 1)
            _exit(0);    /* the unshare failed: nothing to map */
        _exit(write_id_maps(self) < 0 ? (errno > 0 && errno < 256 ? errno : EIO) : 0);
    }
    close(go[0]);
    int r = unshare(CLONE_NEWUSER);
    int e = errno;
    if (r == 0 && write(go[1], "u", 1) != 1) {
        r = -1;
        e = errno;
    }
    close(go[1]);
    int st = 0;
    while (waitpid(helper, &st, 0) < 0 && errno == EINTR)
        ;
    if (r == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        r = -1;
        e = WIFEXITED(st) ? WEXITSTATUS(st) : EIO;
    }
    if (r < 0) {
        errno = e;
        return -1;
    }
    /* Its credentials are still the agent's (uid 0 outside, which owns the
     * guest's files): become the namespace's root, CONFINE_USER_BASE outside. */
    if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
        return -1;
    return 0;
}

int confine_unshare(uint32_t ns)
{
    if (ns & CONFINE_NS_PID)
        ns |= CONFINE_NS_MOUNT;
    if ((ns & CONFINE_NS_USER) && enter_user_namespace() < 0)
        return -1;
    if (!(ns & ~CONFINE_NS_USER))
        return 0;
    int flags = (ns & CONFINE_NS_MOUNT ? CLONE_NEWNS : 0) | (ns & CONFINE_NS_NET ? CLONE_NEWNET : 0)
                | (ns & CONFINE_NS_PID ? CLONE_NEWPID : 0);
    if (unshare(flags) < 0)
        return -1;
    /* shared propagation (systemd's default) would carry the program's mounts out */
    if ((ns & CONFINE_NS_MOUNT) && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    if (ns & CONFINE_NS_NET) {    /* loopback works as before, nothing else exists */
        struct ifreq ifr = {.ifr_name = "lo"};
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int r = s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ? -1 : 0;
        ifr.ifr_flags |= IFF_UP;
        if (r == 0)
            r = ioctl(s, SIOCSIFFLAGS, &ifr);
        int e = errno;
        if (s >= 0)
            close(s);
        errno = e;
        return r;
    }
    return 0;
}

/* Closes every fd but keep: the program's stdio, pipes and status socket are its alone. */
static void let_go(int keep)
{
    if (keep > 0)
        syscall(__NR_close_range, 0u, (unsigned)keep - 1, 0u);
    syscall(__NR_close_range, (unsigned)keep + 1, ~0u, 0u);
}

int confine_pid_namespace(int keep_fd)
{
    int ws[2];
    if (pipe2(ws, O_CLOEXEC) < 0)
        return -1;
    pid_t init = fork();
    if (init < 0)
        return -1;
    if (init > 0) {
        /* The agent's child: signals to the job's group end the program, not this relay. */
        for (int sig = 1; sig < 32; sig++)
            if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD)
                signal(sig, SIG_IGN);
        close(ws[1]);
        let_go(ws[0]);
        int st = 0, raw;
        while (waitpid(init, &st, 0) < 0 && errno == EINTR)
            ;
        /* no word from pid 1: it was killed (SIGKILL to the group), and the program with it */
        if (read(ws[0], &raw, sizeof raw) != sizeof raw)
            raw = WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL;
        if (WIFEXITED(raw))
            _exit(WEXITSTATUS(raw));
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);    /* the program dumped its core, if any */
        signal(WTERMSIG(raw), SIG_DFL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, WTERMSIG(raw));
        sigprocmask(SIG_UNBLOCK, &one, NULL);
        raise(WTERMSIG(raw));
        _exit(128 + WTERMSIG(raw));
    }
    /* pid 1 of the new namespace */
    close(ws[0]);
    pid_t program = -1;
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0)
        program = fork();
    if (program == 0) {
        close(ws[1]);
        return 0;
    }
    if (program < 0) {
        int e[3] = {6, errno, -1};    /* agent.c's child_fail: "unshare namespaces for" */
        if (write(keep_fd, e, sizeof e) < 0)
            _exit(126);
        _exit(127);
    }
    let_go(ws[1]);
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p == program) {
            if (write(ws[1], &st, sizeof st) < 0)
                _exit(1);
            _exit(0);    /* the namespace's other processes die with its pid 1 */
        }
        if (p < 0 && errno != EINTR)
            _exit(1);
    }
}

#define X32_BIT 0x40000000u

int confine_notify_ok(const uint32_t *nrs, int n)
{
    for (int i = 0; i < n; i++)
        if (nrs[i] == __NR_sendmsg)
            return 0;
    return 1;
}

int confine_answer(int fd, int err, uint32_t *nr, uint32_t *pid)
{
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;

    memset(&req, 0, sizeof req);    /* the kernel insists */
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
        return -1;
    *nr = (uint32_t)req.data.nr;
    *pid = req.pid;
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    resp.error = -err;
    return ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

int confine_seccomp(const uint32_t *nrs, int n, int err, int notify)
{
    if (n < 0 || n > CONFINE_MAX_SYSCALLS) {
        errno = EINVAL;
        return -1;
    }
    /* arch check, x32 check, one compare per number, then allow / notify / deny */
    struct sock_filter f[9 + CONFINE_MAX_SYSCALLS];
    int k = 0;
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    /* jt 0 goes on; jf lands on the kill at the end */
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    /* x32 numbers are the same calls with a high bit: they would slip past the list */
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_BIT, 0, 1);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    /* a match jumps past the allow to the notify, or (sendmsg, or notify 0) to the deny after it */
    for (int i = 0; i < n; i++)
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nrs[i],
                                              (uint8_t)(n - i + (!notify || nrs[i] == __NR_sendmsg)), 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA));
    struct sock_fprog prog = {.len = (unsigned short)k, .filter = f};
    if (!notify)
        return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
    return (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}
