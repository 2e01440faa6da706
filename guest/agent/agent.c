/* nxia-agent - the System VM's control agent (docs/control-protocol.md).
 *
 * As PID 1 it sets up the guest (proc, sys, dev, devpts, cgroup2), reaps every
 * orphan and serves the host on vsock port 1024. As an ordinary process
 * (--unix PATH, --fd N, --vsock PORT) it serves the same protocol for tests.
 * It is also the Gemini broker of the VM's Linux processes (broker.c): as
 * PID 1 on BROKER_SOCKET, as a test process with --broker PATH --gemini-unix HOST.
 * One thread, one poll loop: connections, child output pipes and a signalfd
 * for SIGCHLD. Everything the host sends is checked before use; a bad frame
 * costs its connection at most, never the agent. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/random.h>
#include <linux/vm_sockets.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#include "broker.h"
#include "confine.h"
#include "net.h"
#include "proto.h"
#include "regions.h"
#include "root.h"

#define MAX_CONNS   16
#define MAX_JOBS    64
#define MAX_ARGS    256
#define MAX_ENV     128
#define OUT_CHUNK   32768u
#define STDIN_LIMIT (1u << 20)   /* queued stdin per job; more is a host bug */
#define SEND_TIMEOUT_S 10        /* a host that stops reading loses its connection */
#define HANDSHAKE_MS 10000       /* a connection that has not authenticated by then is closed */
#define QUIESCE_DRAIN_MS 5000    /* how long QUIESCE waits for the broker's calls in flight */
#define SECRET_FILE "/etc/nxia/secret"  /* PID 1's: the host appends it to the initramfs */

struct conn {
    int fd;                      /* -1: free */
    int state;                   /* 0 want HELLO, 1 want AUTH, 2 ready */
    int dead;
    long long deadline;          /* ms (CLOCK_MONOTONIC) by which state 2 must be reached */
    uint8_t host_nonce[CTL_NONCE], agent_nonce[CTL_NONCE];
    size_t rlen;
    uint8_t rbuf[4 + CTL_MAX_BODY];
};

struct job {
    int used;
    unsigned gen;                /* which job this slot holds: a poll result of a freed one is stale */
    struct conn *conn;           /* NULL once its connection is gone */
    uint32_t id;
    pid_t pid;
    int pty;
    int in_fd, out_fd, err_fd;
    int notify_fd;               /* seccomp listener of its DENY_SYSCALLS, or -1 */
    int in_eof;
    uint8_t *inq;
    size_t inq_len, inq_cap;
};

static struct conn conns[MAX_CONNS];
static struct job jobs[MAX_JOBS];
static unsigned job_gen;
static int pid1, quiesced, listen_fd = -1, sig_fd = -1, stop;
static const char *unix_path;
static uint8_t secret[CTL_MAX_SECRET];
static size_t secret_len;        /* 0: no valid secret, every connection is refused */
static char *cfg_env[MAX_ENV];
static uint8_t scratch[CTL_MAX_PAYLOAD + 2 * MAX_ARGS + 16];

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    va_list ap;
    char line[512];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    if (write(2, "nxia-agent: ", 12) < 0 || write(2, line, (size_t)n) < 0)
        return;
}

/* ---- sending ------------------------------------------------------------ */

static void send_frame(struct conn *c, uint16_t type, uint32_t id, const void *payload, uint32_t len)
{
    uint8_t hdr[CTL_HEADER];
    struct iovec iov[2] = {{hdr, CTL_HEADER}, {(void *)payload, len}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};

    if (c->dead)
        return;
    ctl_header(hdr, type, id, len);
    while (m.msg_iovlen) {
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            c->dead = 1;     /* closed at the end of this loop turn */
            return;
        }
        while (m.msg_iovlen && (size_t)n >= m.msg_iov[0].iov_len) {
            n -= (ssize_t)m.msg_iov[0].iov_len;
            m.msg_iov++;
            m.msg_iovlen--;
        }
        if (m.msg_iovlen) {
            m.msg_iov[0].iov_base = (uint8_t *)m.msg_iov[0].iov_base + n;
            m.msg_iov[0].iov_len -= (size_t)n;
        }
    }
}

static void send_error(struct conn *c, uint32_t id, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void send_error(struct conn *c, uint32_t id, uint32_t code, const char *fmt, ...)
{
    uint8_t p[4 + 256];
    va_list ap;
    int n;

    ctl_put32(p, code);
    va_start(ap, fmt);
    n = vsnprintf((char *)p + 4, sizeof p - 4, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof p - 5)
        n = sizeof p - 5;
    send_frame(c, CTL_ERROR, id, p, 4 + (uint32_t)n);
}

static void send_ok(struct conn *c, uint32_t id)
{
    send_frame(c, CTL_OK, id, NULL, 0);
}

/* ---- jobs ----------------------------------------------------------------- */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static struct job *find_job(struct conn *c, uint32_t id)
{
    for (int i = 0; i < MAX_JOBS; i++)
        if (jobs[i].used && jobs[i].conn == c && jobs[i].id == id)
            return &jobs[i];
    return NULL;
}

/* Forwards what is readable now; returns 0 at end of stream. */
static int pump_output(struct job *j, int *fd, uint16_t type)
{
    static uint8_t buf[OUT_CHUNK];

    for (;;) {
        ssize_t n = read(*fd, buf, sizeof buf);
        if (n > 0) {
            if (j->conn)
                send_frame(j->conn, type, j->id, buf, (uint32_t)n);
            if ((size_t)n < sizeof buf)
                return 1;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 1;
        close_fd(fd);    /* EOF, or EIO on a pty whose other side is closed */
        return 0;
    }
}

static void pump_stdin(struct job *j)
{
    while (j->inq_len) {
        ssize_t n = write(j->in_fd, j->inq, j->inq_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {             /* the program closed its stdin: drop the rest */
            j->inq_len = 0;
            close_fd(&j->in_fd);
            return;
        }
        memmove(j->inq, j->inq + n, j->inq_len - (size_t)n);
        j->inq_len -= (size_t)n;
    }
    if (j->in_eof && !j->pty)
        close_fd(&j->in_fd);
}

static void free_job(struct job *j)
{
    close_fd(&j->in_fd);
    close_fd(&j->out_fd);
    close_fd(&j->err_fd);
    /* a process of the program still running now gets ENOSYS for a denied call */
    close_fd(&j->notify_fd);
    free(j->inq);
    memset(j, 0, sizeof *j);
}

static void job_exited(struct job *j, int status)
{
    uint8_t p[8];

    /* The program is gone: what it wrote is in the pipes already. */
    if (j->out_fd >= 0)
        pump_output(j, &j->out_fd, CTL_STDOUT);
    if (j->err_fd >= 0)
        pump_output(j, &j->err_fd, CTL_STDERR);
    if (WIFSIGNALED(status)) {
        ctl_put32(p, 1);
        ctl_put32(p + 4, (uint32_t)WTERMSIG(status));
    } else {
        ctl_put32(p, 0);
        ctl_put32(p + 4, (uint32_t)WEXITSTATUS(status));
    }
    if (j->conn)
        send_frame(j->conn, CTL_EXIT, j->id, p, sizeof p);
    free_job(j);
}

static void reap(void)
{
    struct signalfd_siginfo si;
    int status;
    pid_t pid;

    while (read(sig_fd, &si, sizeof si) == sizeof si)
        if (pid1 && si.ssi_signo != SIGCHLD) {
            /* busybox's halt, poweroff and reboot signal init (SIGUSR1, SIGUSR2,
             * SIGTERM); so does the kernel's orderly poweroff, which runs
             * /sbin/poweroff (a Hyper-V host's shutdown request): power off */
            logmsg("signal %u: powering off", si.ssi_signo);
            stop = 1;
        }
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < MAX_JOBS; i++)
            if (jobs[i].used && jobs[i].pid == pid) {
                job_exited(&jobs[i], status);
                break;
            }
    }
}

/* ---- requests ------------------------------------------------------------- */

/* Copies a TLV value into scratch as a C string; NULL if it holds a NUL or
 * scratch is full (a payload's strings always fit: see scratch's size). */
static char *cstr(size_t *used, const uint8_t *val, uint32_t len)
{
    if (memchr(val, 0, len) || sizeof scratch - *used < (size_t)len + 1)
        return NULL;
    char *s = (char *)scratch + *used;
    memcpy(s, val, len);
    s[len] = 0;
    *used += (size_t)len + 1;
    return s;
}

/* Takes kv (malloc'd); -1 if it is a new key and MAX_ENV are set already. */
static int set_cfg_env(char *kv)
{
    size_t klen = strcspn(kv, "=");

    for (int i = 0; i < MAX_ENV; i++)
        if (cfg_env[i] && !strncmp(cfg_env[i], kv, klen) && cfg_env[i][klen] == '=') {
            free(cfg_env[i]);
            cfg_env[i] = kv;
            return 0;
        }
    for (int i = 0; i < MAX_ENV; i++)
        if (!cfg_env[i]) {
            cfg_env[i] = kv;
            return 0;
        }
    return -1;
}

static unsigned long mount_flags(char *opts)
{
    static const struct { const char *name; unsigned long flag; } known[] = {
        {"ro", MS_RDONLY}, {"nosuid", MS_NOSUID}, {"nodev", MS_NODEV},
        {"noexec", MS_NOEXEC}, {"relatime", MS_RELATIME}, {"noatime", MS_NOATIME},
    };
    unsigned long flags = 0;
    char *out = opts, *tok, *save = NULL;

    /* Flags leave the string; the rest is the file system's data. */
    for (tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t k;
        for (k = 0; k < sizeof known / sizeof known[0]; k++)
            if (!strcmp(tok, known[k].name))
                break;
        if (k < sizeof known / sizeof known[0]) {
            flags |= known[k].flag;
            continue;
        }
        if (out != opts)
            *out++ = ',';
        memmove(out, tok, strlen(tok));
        out += strlen(tok);
    }
    *out = 0;
    return flags;
}

static int mkdirs(const char *path)
{
    char p[4096];
    size_t n = strlen(path);

    if (n >= sizeof p)
        return -1;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++)
        if (p[i] == '/' || p[i] == 0) {
            char c = p[i];
            p[i] = 0;
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -1;
            p[i] = c;
        }
    return 0;
}

static void do_configure(struct conn *c, uint32_t id, const uint8_t *pl, uint32_t len)
{
    struct ctl_tlv t = {.p = pl, .end = pl + len};
    size_t used = 0;
    int r;

    if (quiesced) {
        send_error(c, id, CTL_E_QUIESCED, "quiesced: resume first");
        return;
    }
    while ((r = ctl_tlv_next(&t)) > 0) {
        used = 0;
        if (t.tag == CTL_T_HOSTNAME) {
            if (sethostname((const char *)t.val, t.len) < 0) {
                send_error(c, id, CTL_E_SYSTEM, "sethostname: %s", strerror(errno));
                return;
            }
        } else if (t.tag == CTL_T_ENV) {
            char *kv = cstr(&used, t.val, t.len);
            if (!kv || !strchr(kv, '=') || kv[0] == '=') {
                send_error(c, id, CTL_E_PROTO, "env entry is not KEY=VALUE");
                return;
            }
            char *copy = strdup(kv);
            if (!copy) {
                send_error(c, id, CTL_E_SYSTEM, "configure: out of memory");
                return;
            }
            if (set_cfg_env(copy) < 0) {
                free(copy);
                send_error(c, id, CTL_E_PROTO, "configure: more than %d variables", MAX_ENV);
                return;
            }
        } else if (t.tag == CTL_T_MOUNT) {
            /* source NUL target NUL fstype NUL options */
            const uint8_t *f[4], *end = t.val + t.len;
            size_t fl[4];
            const uint8_t *p = t.val;
            int k;
            for (k = 0; k < 4; k++) {
                const uint8_t *z = k < 3 ? memchr(p, 0, (size_t)(end - p)) : end;
                if (!z)
                    break;
                f[k] = p;
                fl[k] = (size_t)(z - p);
                p = z + (k < 3);
            }
            char *src, *dst, *fs, *opts;
            if (k < 4 || !(src = cstr(&used, f[0], (uint32_t)fl[0])) ||
                !(dst = cstr(&used, f[1], (uint32_t)fl[1])) || !(fs = cstr(&used, f[2], (uint32_t)fl[2])) ||
                !(opts = cstr(&used, f[3], (uint32_t)fl[3])) || dst[0] != '/') {
                send_error(c, id, CTL_E_PROTO, "mount entry is not source\\0/target\\0fstype\\0options");
                return;
            }
            unsigned long flags = mount_flags(opts);
            if (mkdirs(dst) < 0 || mount(src, dst, fs, flags, opts[0] ? opts : NULL) < 0) {
                send_error(c, id, CTL_E_SYSTEM, "mount %s on %s: %s", src, dst, strerror(errno));
                return;
            }
        } else {
            send_error(c, id, CTL_E_PROTO, "configure: unknown field %u", t.tag);
            return;
        }
    }
    if (r < 0) {
        send_error(c, id, CTL_E_PROTO, "configure: field length past the payload");
        return;
    }
    send_ok(c, id);
}

/* Hands the seccomp listener to the agent: a status message {-1, 0, 0} with the fd. */
static int send_listener(int sock, int fd)
{
    int e[3] = {-1, 0, 0};
    char cbuf[CMSG_SPACE(sizeof fd)];
    struct iovec iov = {.iov_base = e, .iov_len = sizeof e};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

    memset(cbuf, 0, sizeof cbuf);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fd);
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    return sendmsg(sock, &m, MSG_NOSIGNAL) == (ssize_t)sizeof e ? 0 : -1;
}

/* Reads one status message of the child into e; an fd it carries goes to
 * *fd (closing one already there). The message's size, 0 at EOF (exec'd), -1. */
static ssize_t recv_status(int sock, int e[3], int *fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = e, .iov_len = 3 * sizeof(int)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t n;

    while ((n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&m) : NULL; cm; cm = CMSG_NXTHDR(&m, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int))) {
            close_fd(fd);
            memcpy(fd, CMSG_DATA(cm), sizeof(int));
        }
    return n;
}

/* A denied call of job j's program is waiting: it gets EPERM, the host a DENIED frame. */
static void answer_denial(struct job *j, short revents)
{
    uint32_t nr, pid;
    uint8_t p[8];

    if (!(revents & POLLIN)) {
        close_fd(&j->notify_fd);    /* POLLHUP: no process uses the filter any more */
        return;
    }
    if (confine_answer(j->notify_fd, EPERM, &nr, &pid) < 0)
        return;                     /* ENOENT: the caller died meanwhile */
    ctl_put32(p, nr);
    ctl_put32(p + 4, pid);
    if (j->conn)
        send_frame(j->conn, CTL_DENIED, j->id, p, sizeof p);
}

/* The child's report of why it did not get to run the program: stage (what
 * failed: see do_exec's what[]), errno, and the FS_RULE at fault or -1. */
static void child_fail(int fd, int stage, int rule)
{
    int e[3] = {stage, errno, rule};

    if (write(fd, e, sizeof e) < 0)
        _exit(126);
    _exit(127);
}

static void do_exec(struct conn *c, uint32_t id, const uint8_t *pl, uint32_t len)
{
    struct ctl_tlv t = {.p = pl, .end = pl + len};
    char *argv[MAX_ARGS + 1], *envv[MAX_ENV], *cwd = NULL;
    int argc = 0, envc = 0, r, pty = 0, nrules = 0, ndeny = -1;
    uint32_t unshare_ns = 0;
    struct confine_rule rules[CONFINE_MAX_RULES];
    uint32_t deny[CONFINE_MAX_SYSCALLS];
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    size_t used = 0;
    struct job *j = NULL;

    if (quiesced) {
        send_error(c, id, CTL_E_QUIESCED, "quiesced: resume first");
        return;
    }
    if (id == 0 || find_job(c, id)) {
        send_error(c, id, CTL_E_PROTO, "exec id %u is 0 or in use", id);
        return;
    }
    while ((r = ctl_tlv_next(&t)) > 0) {
        char *s = NULL;
        if (t.tag == CTL_T_FS_RULE) {
            uint32_t a = t.len > 4 ? ctl_get32(t.val) : 0;
            if (nrules == CONFINE_MAX_RULES || a == 0 || (a & ~CONFINE_ALL) || t.len - 4 > CONFINE_MAX_PATH
                || t.val[4] != '/' || !(s = cstr(&used, t.val + 4, t.len - 4))) {
                send_error(c, id, CTL_E_PROTO, "exec: bad FS_RULE (access 1..7, absolute path of at most %d bytes,"
                           " at most %d rules)", CONFINE_MAX_PATH, CONFINE_MAX_RULES);
                return;
            }
            rules[nrules++] = (struct confine_rule){.access = a, .path = s};
            continue;
        }
        if (t.tag == CTL_T_DENY_SYSCALLS) {
            uint32_t n = t.len / 4;
            int ok = ndeny < 0 && t.len % 4 == 0 && n >= 1 && n <= CONFINE_MAX_SYSCALLS;
            for (uint32_t i = 0; ok && i < n; i++)
                ok = (deny[i] = ctl_get32(t.val + 4 * i)) <= CONFINE_MAX_NR;
            if (!ok) {
                send_error(c, id, CTL_E_PROTO, "exec: bad DENY_SYSCALLS (once, 1..%d numbers of at most %d)",
                           CONFINE_MAX_SYSCALLS, CONFINE_MAX_NR);
                return;
            }
            ndeny = (int)n;
            continue;
        }
        if (t.tag == CTL_T_UNSHARE) {
            uint32_t ns = t.len == 4 ? ctl_get32(t.val) : 0;
            if (unshare_ns || ns == 0 || (ns & ~CONFINE_NS_ALL)) {
                send_error(c, id, CTL_E_PROTO, "exec: bad UNSHARE (once, u32 of bits 1 mount, 2 net, 4 pid, 8 user)");
                return;
            }
            unshare_ns = ns;
            continue;
        }
        if (t.tag != CTL_T_PTY && !(s = cstr(&used, t.val, t.len))) {
            send_error(c, id, CTL_E_PROTO, "exec: string holds a NUL");
            return;
        }
        if (t.tag == CTL_T_ARG && argc < MAX_ARGS)
            argv[argc++] = s;
        else if (t.tag == CTL_T_ENV && envc < MAX_ENV && strchr(s, '=') && s[0] != '=')
            envv[envc++] = s;
        else if (t.tag == CTL_T_CWD)
            cwd = s;
        else if (t.tag == CTL_T_PTY && t.len == 4) {
            pty = 1;
            ws.ws_row = ctl_get16(t.val);
            ws.ws_col = ctl_get16(t.val + 2);
        } else {
            send_error(c, id, CTL_E_PROTO, "exec: bad field %u (or too many args/env)", t.tag);
            return;
        }
    }
    if (r < 0 || argc == 0) {
        send_error(c, id, CTL_E_PROTO, r < 0 ? "exec: field length past the payload" : "exec: no argv");
        return;
    }
    argv[argc] = NULL;
    for (int i = 0; i < MAX_JOBS && !j; i++)
        if (!jobs[i].used)
            j = &jobs[i];
    if (!j) {
        send_error(c, id, CTL_E_SYSTEM, "too many running programs (%d)", MAX_JOBS);
        return;
    }

    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, status[2] = {-1, -1}, master = -1;
    char *slave = NULL;
    /* a socket, not a pipe: it also carries the seccomp listener */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, status) < 0)
        goto sys;
    if (pty) {
        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || !(slave = ptsname(master)))
            goto sys;
        ioctl(master, TIOCSWINSZ, &ws);
    } else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        goto sys;
    }

    pid_t pid = fork();
    if (pid < 0)
        goto sys;
    if (pid == 0) {
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);
        setsid();    /* its own process group: SIGNAL reaches the whole group */
        if (pty) {
            int s = open(slave, O_RDWR);
            if (s < 0 || ioctl(s, TIOCSCTTY, 0) < 0)
                child_fail(status[1], 0, -1);
            in[0] = out[1] = err[1] = s;
        }
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
            child_fail(status[1], 0, -1);
        if (pty && in[0] > 2)
            close(in[0]);
        if (cwd && chdir(cwd) < 0)
            child_fail(status[1], 1, -1);
        for (int i = 0; i < MAX_ENV; i++)
            if (cfg_env[i])
                putenv(cfg_env[i]);
        for (int i = 0; i < envc; i++)
            putenv(envv[i]);
        /* Last, so that nothing above needs what the program is denied. A
         * confinement that cannot be applied fails the exec: never unconfined. */
        if (unshare_ns && confine_unshare(unshare_ns) < 0)
            child_fail(status[1], 6, -1);
        if ((unshare_ns & CONFINE_NS_PID) && confine_pid_namespace(status[1]) < 0)
            child_fail(status[1], 6, -1);
        if ((nrules || ndeny > 0) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            child_fail(status[1], 3, -1);
        int bad;
        if (nrules && confine_landlock(rules, nrules, &bad) < 0)
            child_fail(status[1], 4, bad);
        if (ndeny > 0) {
            int notify = confine_notify_ok(deny, ndeny);
            int lfd = confine_seccomp(deny, ndeny, EPERM, notify);
            if (lfd < 0 || (notify && send_listener(status[1], lfd) < 0))
                child_fail(status[1], 5, -1);
        }
        execvp(argv[0], argv);
        child_fail(status[1], 2, -1);
    }

    close_fd(&status[1]);
    int e[3], notify = -1;
    ssize_t n;
    for (;;) {
        /* Until the exec, a denied call of the child (execve itself) is answered here. */
        struct pollfd pw[2] = {{.fd = status[0], .events = POLLIN}, {.fd = notify, .events = POLLIN}};
        if (poll(pw, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            n = -1;
            break;
        }
        /* Only while the status socket is still open (looked at again: the
         * exec may have closed it since): later calls are the program's,
         * answered and reported by the poll loop. */
        struct pollfd ps = {.fd = status[0], .events = POLLIN};
        if ((pw[1].revents & POLLIN) && !pw[0].revents && poll(&ps, 1, 0) == 0) {
            uint32_t nr, cpid;
            confine_answer(notify, EPERM, &nr, &cpid);
            continue;
        }
        if (!pw[0].revents)
            continue;
        n = recv_status(status[0], e, &notify);
        if (n != sizeof e || e[0] != -1)
            break;    /* else: the listener came, the exec is still to come */
    }
    close_fd(&status[0]);
    if (n == sizeof e) {
        close_fd(&notify);
        static const char *what[] = {"set up stdio for", "change to the directory of", "run",
                                     "set no_new_privs for", "confine (Landlock)", "confine (seccomp)",
                                     "unshare namespaces for"};
        waitpid(pid, NULL, 0);
        if (e[0] == 1)
            send_error(c, id, CTL_E_EXEC, "cannot change to %s: %s", cwd, strerror(e[1]));
        else if (e[0] == 4 && e[2] >= 0 && e[2] < nrules)
            send_error(c, id, CTL_E_EXEC, "cannot confine (Landlock) %s: rule %d, %s: %s", argv[0], e[2],
                       rules[e[2]].path, strerror(e[1]));
        else
            send_error(c, id, CTL_E_EXEC, "cannot %s %s: %s", what[e[0] >= 0 && e[0] <= 6 ? e[0] : 0], argv[0],
                       strerror(e[1]));
        close_fd(&in[0]); close_fd(&in[1]); close_fd(&out[0]); close_fd(&out[1]);
        close_fd(&err[0]); close_fd(&err[1]); close_fd(&master);
        return;
    }

    memset(j, 0, sizeof *j);
    j->used = 1;
    j->gen = ++job_gen;
    j->conn = c;
    j->id = id;
    j->pid = pid;
    j->pty = pty;
    j->notify_fd = notify;
    if (pty) {
        j->out_fd = master;
        j->in_fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
        j->err_fd = -1;
    } else {
        close(in[0]); close(out[1]); close(err[1]);
        j->in_fd = in[1];
        j->out_fd = out[0];
        j->err_fd = err[0];
    }
    fcntl(j->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(j->out_fd, F_SETFL, O_NONBLOCK);
    if (j->err_fd >= 0)
        fcntl(j->err_fd, F_SETFL, O_NONBLOCK);
    uint8_t p[4];
    ctl_put32(p, (uint32_t)pid);
    send_frame(c, CTL_STARTED, id, p, sizeof p);
    return;

sys:
    send_error(c, id, CTL_E_SYSTEM, "cannot start %s: %s", argv[0], strerror(errno));
    close_fd(&in[0]); close_fd(&in[1]); close_fd(&out[0]); close_fd(&out[1]);
    close_fd(&err[0]); close_fd(&err[1]); close_fd(&status[0]); close_fd(&status[1]);
    close_fd(&master);
}

static void do_stdin(struct conn *c, uint32_t id, const uint8_t *pl, uint32_t len)
{
    struct job *j = find_job(c, id);

    /* The program may have just exited: its input has nowhere to go. */
    if (!j || j->in_fd < 0 || j->in_eof)
        return;
    if (len == 0) {
        j->in_eof = 1;
        if (!j->pty) {
            pump_stdin(j);
            return;
        }
        static const uint8_t eot = 4;    /* a terminal's end of input: ^D */
        pl = &eot;
        len = 1;
    }
    if (j->inq_len + len > STDIN_LIMIT) {
        send_error(c, id, CTL_E_PROTO, "more than %u bytes of stdin queued", STDIN_LIMIT);
        return;
    }
    if (j->inq_cap < j->inq_len + len) {
        size_t cap = j->inq_cap ? j->inq_cap : 4096;
        while (cap < j->inq_len + len)
            cap *= 2;
        uint8_t *q = realloc(j->inq, cap);
        if (!q) {
            send_error(c, id, CTL_E_SYSTEM, "out of memory for stdin");
            return;
        }
        j->inq = q;
        j->inq_cap = cap;
    }
    memcpy(j->inq + j->inq_len, pl, len);
    j->inq_len += len;
    pump_stdin(j);
}

static void do_signal(struct conn *c, uint32_t id, uint16_t type, const uint8_t *pl, uint32_t len)
{
    if (len != 8) {
        send_error(c, id, CTL_E_PROTO, "payload must be 8 bytes");
        return;
    }
    struct job *j = find_job(c, ctl_get32(pl));
    if (!j) {
        send_error(c, id, CTL_E_NO_SUCH_ID, "no running program with id %u", ctl_get32(pl));
        return;
    }
    if (type == CTL_RESIZE) {
        struct winsize ws = {.ws_row = ctl_get16(pl + 4), .ws_col = ctl_get16(pl + 6)};
        if (!j->pty || ioctl(j->out_fd, TIOCSWINSZ, &ws) < 0) {
            send_error(c, id, CTL_E_PROTO, "program %u has no terminal", j->id);
            return;
        }
    } else {
        uint32_t sig = ctl_get32(pl + 4);
        if (sig == 0 || sig >= 65 || (kill(-j->pid, (int)sig) < 0 && kill(j->pid, (int)sig) < 0)) {
            send_error(c, id, CTL_E_PROTO, "signal %u: %s", sig, sig && sig < 65 ? strerror(errno) : "out of range");
            return;
        }
    }
    send_ok(c, id);
}

static void power_off(void)
{
    logmsg("powering off");
    kill(-1, SIGTERM);
    for (int i = 0; i < 20 && waitpid(-1, NULL, WNOHANG) >= 0; i++)
        usleep(50000);
    kill(-1, SIGKILL);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    sync();
    reboot(RB_POWER_OFF);
    for (;;)
        pause();     /* PID 1 must never exit */
}

/* Mixes the host's seed into the kernel's pool and makes the CRNG reseed from
 * it now: a clone must not go on drawing the random numbers its siblings draw.
 * Credited entropy and the reseed need CAP_SYS_ADMIN (PID 1 has it); a host
 * process only mixes the seed in, uncredited. */
static const char *reseed(const uint8_t *seed, uint32_t n)
{
    struct {
        int entropy_count, buf_size;
        uint8_t buf[CTL_MAX_SEED];
    } info;
    int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    const char *how = "credited";

    if (fd < 0)
        return NULL;
    info.entropy_count = (int)n * 8;
    info.buf_size = (int)n;
    memcpy(info.buf, seed, n);
    if (ioctl(fd, RNDADDENTROPY, &info) < 0) {
        how = write(fd, seed, n) == (ssize_t)n ? "mixed" : NULL;
    } else if (ioctl(fd, RNDRESEEDCRNG) < 0) {
        how = "credited, no reseed";
    }
    explicit_bzero(&info, sizeof info);
    close(fd);
    return how;
}

/* A QUIESCE that waits for the broker's calls in flight to end (the connection, its request). */
static struct {
    struct conn *conn;           /* NULL: none */
    uint32_t id;
    long long deadline;          /* ms (CLOCK_MONOTONIC) */
} draining;

static long long now_ms(void);

/* RESUME. With GENERATION, SEED and SECRET (a clone resuming from a snapshot,
 * or the original after one): the generation must be later than this agent's,
 * the guest's entropy is reseeded, and later connections must prove the new
 * secret (this one stays authenticated). All three or none: a clone that kept
 * its sibling's secret or random state is what this exists to prevent. */
static void do_resume(struct conn *c, uint32_t id, const uint8_t *pl, uint32_t len)
{
    static uint64_t generation;
    struct ctl_tlv t = {.p = pl, .end = pl + len};
    const uint8_t *seed = NULL, *key = NULL;
    uint32_t seed_len = 0, key_len = 0;
    uint64_t gen = 0;
    int have_gen = 0, r;

    while ((r = ctl_tlv_next(&t)) > 0) {
        if (t.tag == CTL_T_GENERATION && t.len == 8 && !have_gen) {
            for (int i = 7; i >= 0; i--)
                gen = (gen << 8) | t.val[i];
            have_gen = 1;
        } else if (t.tag == CTL_T_SEED && !seed && t.len >= CTL_MIN_SEED && t.len <= CTL_MAX_SEED) {
            seed = t.val;
            seed_len = t.len;
        } else if (t.tag == CTL_T_SECRET && !key && t.len >= CTL_MIN_SECRET && t.len <= CTL_MAX_SECRET) {
            key = t.val;
            key_len = t.len;
        } else {
            send_error(c, id, CTL_E_PROTO, "resume: field %u of %u bytes is not allowed here (generation: 8 bytes; "
                       "seed: %u..%u; secret: %u..%u; each once)", t.tag, t.len, CTL_MIN_SEED, CTL_MAX_SEED,
                       CTL_MIN_SECRET, CTL_MAX_SECRET);
            return;
        }
    }
    if (r < 0) {
        send_error(c, id, CTL_E_PROTO, "resume: a field runs past the payload");
        return;
    }
    if (have_gen || seed || key) {
        if (!have_gen || !seed || !key) {
            send_error(c, id, CTL_E_PROTO, "resume: a new generation needs its generation, seed and secret together");
            return;
        }
        if (gen <= generation) {
            send_error(c, id, CTL_E_PROTO, "resume: generation %llu is not after this agent's %llu",
                       (unsigned long long)gen, (unsigned long long)generation);
            return;
        }
        const char *how = reseed(seed, seed_len);
        if (!how && pid1) {
            send_error(c, id, CTL_E_SYSTEM, "resume: cannot reseed the guest's entropy: %s", strerror(errno));
            return;
        }
        explicit_bzero(secret, sizeof secret);
        memcpy(secret, key, key_len);
        secret_len = key_len;
        generation = gen;
        logmsg("generation %llu: entropy reseeded (%s), new secret", (unsigned long long)gen, how ? how : "not as a process");
    }
    if (draining.conn) {    /* a RESUME while a QUIESCE waits: that one ends unfinished */
        send_error(draining.conn, draining.id, CTL_E_SYSTEM, "quiesce: resumed before calls in flight had ended");
        draining.conn = NULL;
    }
    quiesced = 0;
    broker_hold(0);
    send_ok(c, id);
}

/*
 * QUIESCE, once the broker has no call in flight: file systems synced, then every pmem disk
 * fsynced, which virtio-pmem turns into a FLUSH the host answers once a file-backed region is
 * on disk: the saved VM and the file agree. A flush that fails leaves the agent running
 * unquiesced and says which disk.
 */
static void finish_quiesce(struct conn *c, uint32_t id)
{
    sync();
    DIR *d = opendir("/dev");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            unsigned n;
            char tail;
            if (sscanf(e->d_name, "pmem%u%c", &n, &tail) != 1) {
                continue;   /* not a whole pmem disk (pmem0p1 is a partition of one) */
            }
            char path[32];
            snprintf(path, sizeof path, "/dev/pmem%u", n);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || fsync(fd) != 0) {
                int err = errno;
                if (fd >= 0) {
                    close(fd);
                }
                closedir(d);
                quiesced = 0;
                broker_hold(0);
                send_error(c, id, CTL_E_SYSTEM, "quiesce: flushing %s: %s", path, strerror(err));
                return;
            }
            close(fd);
        }
        closedir(d);
    }
    quiesced = 1;
    send_ok(c, id);
}

/*
 * QUIESCE: no new work from here on (EXEC and CONFIGURE refused, the broker holds the calls
 * processes start and refuses the host's), then, once every call in flight through the broker
 * has ended (each may hold Portal references a process is still writing or the host reading),
 * the flushes above. Calls that do not end within QUIESCE_DRAIN_MS leave the agent running as
 * before and the host told how many.
 */
static void do_quiesce(struct conn *c, uint32_t id)
{
    if (draining.conn) {
        send_error(c, id, CTL_E_QUIESCED, "quiesce: one is already waiting for calls in flight");
        return;
    }
    quiesced = 1;
    broker_hold(1);
    if (broker_in_flight() == 0) {
        finish_quiesce(c, id);
        return;
    }
    draining.conn = c;
    draining.id = id;
    draining.deadline = now_ms() + QUIESCE_DRAIN_MS;
}

/* A waiting QUIESCE: finished once no call is in flight, refused at its deadline. Returns how
 * long poll may wait (ms) for it, or -1. */
static int drain_step(void)
{
    if (!draining.conn)
        return -1;
    long long left = draining.deadline - now_ms();
    int n = broker_in_flight();
    if (n == 0 || left <= 0) {
        struct conn *c = draining.conn;
        draining.conn = NULL;
        if (n == 0) {
            finish_quiesce(c, draining.id);
        } else {
            quiesced = 0;
            broker_hold(0);
            send_error(c, draining.id, CTL_E_SYSTEM, "quiesce: %d Gemini call%s of this System VM's processes still in "
                       "flight after %d ms: not quiesced, the VM runs on", n, n == 1 ? "" : "s", QUIESCE_DRAIN_MS);
        }
        return -1;
    }
    return left > INT_MAX ? INT_MAX : (int)left;
}

/* The connection that asked for a waiting QUIESCE is gone: nobody will save the VM. */
static void drain_dropped(struct conn *c)
{
    if (draining.conn == c) {
        draining.conn = NULL;
        quiesced = 0;
        broker_hold(0);
    }
}

static void handle_frame(struct conn *c, uint16_t type, uint32_t id, const uint8_t *pl, uint32_t len)
{
    if (c->state == 0) {
        /* Fail closed: HMAC over an empty key is a proof anyone can compute. */
        if (!secret_len) {
            send_error(c, id, CTL_E_AUTH, "this agent has no valid secret: it refuses every connection");
            c->dead = 1;
            return;
        }
        if (type != CTL_HELLO || len != 4 + CTL_NONCE) {
            send_error(c, id, CTL_E_PROTO, "expected HELLO (36 bytes)");
            c->dead = 1;
            return;
        }
        uint16_t lo = ctl_get16(pl), hi = ctl_get16(pl + 2);
        if (lo > CTL_VERSION || hi < CTL_VERSION) {
            send_error(c, id, CTL_E_VERSION, "protocol versions %u..%u not supported; this agent speaks %u",
                       lo, hi, CTL_VERSION);
            c->dead = 1;
            return;
        }
        uint8_t r[4 + CTL_NONCE + CTL_MAC];
        memcpy(c->host_nonce, pl + 4, CTL_NONCE);
        if (getrandom(c->agent_nonce, CTL_NONCE, 0) != CTL_NONCE) {
            send_error(c, id, CTL_E_SYSTEM, "getrandom: %s", strerror(errno));
            c->dead = 1;
            return;
        }
        ctl_put16(r, CTL_VERSION);
        ctl_put16(r + 2, 0);
        memcpy(r + 4, c->agent_nonce, CTL_NONCE);
        ctl_proof(secret, secret_len, 1, c->host_nonce, c->agent_nonce, r + 4 + CTL_NONCE);
        send_frame(c, CTL_HELLO_REPLY, id, r, sizeof r);
        c->state = 1;
        return;
    }
    if (c->state == 1) {
        uint8_t want[CTL_MAC];
        ctl_proof(secret, secret_len, 0, c->agent_nonce, c->host_nonce, want);
        if (type != CTL_AUTH || len != CTL_MAC || !ctl_mac_equal(want, pl)) {
            send_error(c, id, CTL_E_AUTH, "authentication failed");
            logmsg("a connection failed to authenticate");
            c->dead = 1;
            return;
        }
        static const char ident[] = "nxia-agent 0.1";
        uint8_t r[4 + sizeof ident - 1];
        ctl_put32(r, pid1 ? 1u : 0u);
        memcpy(r + 4, ident, sizeof ident - 1);
        send_frame(c, CTL_READY, id, r, sizeof r);
        c->state = 2;
        return;
    }
    switch (type) {
    case CTL_CONFIGURE: do_configure(c, id, pl, len); break;
    case CTL_EXEC: do_exec(c, id, pl, len); break;
    case CTL_STDIN: do_stdin(c, id, pl, len); break;
    case CTL_SIGNAL:
    case CTL_RESIZE: do_signal(c, id, type, pl, len); break;
    case CTL_QUIESCE:
        do_quiesce(c, id);
        break;
    case CTL_RESUME:
        do_resume(c, id, pl, len);
        break;
    case CTL_SHUTDOWN:
        send_ok(c, id);
        stop = 1;
        break;
    default:
        send_error(c, id, CTL_E_UNKNOWN_TYPE, "unknown frame type 0x%x", type);
    }
}

/* ---- connections ---------------------------------------------------------- */

static void close_conn(struct conn *c)
{
    drain_dropped(c);
    for (int i = 0; i < MAX_JOBS; i++)
        if (jobs[i].used && jobs[i].conn == c) {
            /* Nobody is left to read its output: end it; reap() frees the slot. */
            kill(-jobs[i].pid, SIGKILL);
            jobs[i].conn = NULL;
            close_fd(&jobs[i].in_fd);
            close_fd(&jobs[i].out_fd);
            close_fd(&jobs[i].err_fd);
        }
    close(c->fd);
    c->fd = -1;
    c->dead = 0;
    c->rlen = 0;
    c->state = 0;
}

static long long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* With every slot taken, a new connection takes the slot of the oldest one
 * still in its handshake: clients that connect and say nothing cannot lock
 * the host out (authenticated connections are never displaced). */
static void add_conn(int fd)
{
    struct timeval tv = {.tv_sec = SEND_TIMEOUT_S};
    struct conn *c = NULL;

    for (int i = 0; i < MAX_CONNS && !c; i++)
        if (conns[i].fd < 0)
            c = &conns[i];
    for (int i = 0; i < MAX_CONNS && !c; i++)
        if (conns[i].state < 2 && !conns[i].dead)
            c = &conns[i];
    for (int i = 0; i < MAX_CONNS && c && c->fd >= 0; i++)
        if (conns[i].state < 2 && !conns[i].dead && conns[i].deadline < c->deadline)
            c = &conns[i];
    if (!c) {
        logmsg("%d authenticated connections: refusing another", MAX_CONNS);
        close(fd);
        return;
    }
    if (c->fd >= 0) {
        send_error(c, 0, CTL_E_PROTO, "displaced by a newer connection before authenticating");
        close_conn(c);
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    c->fd = fd;
    c->deadline = now_ms() + HANDSHAKE_MS;
}

/* Ends (marks dead) the connections whose handshake is overdue; returns the
 * poll timeout until the next deadline (-1: none). */
static int expire_handshakes(void)
{
    long long now = now_ms(), next = -1;

    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &conns[i];
        if (c->fd < 0 || c->state == 2 || c->dead)
            continue;
        if (c->deadline <= now) {
            send_error(c, 0, CTL_E_PROTO, "no handshake within %d ms", HANDSHAKE_MS);
            c->dead = 1;
        } else if (next < 0 || c->deadline - now < next) {
            next = c->deadline - now;
        }
    }
    return (int)next;
}

static void conn_readable(struct conn *c)
{
    /* Never a zero-length read: rbuf holds the largest frame, and a whole frame is consumed below. */
    ssize_t n = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        if (c->rlen)
            send_error(c, 0, CTL_E_TRUNCATED, "connection ended inside a frame (%zu bytes of it)", c->rlen);
        c->dead = 1;
        return;
    }
    c->rlen += (size_t)n;
    size_t off = 0;
    while (!c->dead && !stop) {
        const uint8_t *h = c->rbuf + off;
        long r = ctl_scan(h, c->rlen - off, 0);
        if (r == 0)
            break;
        if (r < 0) {
            if (-r == CTL_E_TOO_BIG)    /* named by its id if that has arrived yet */
                send_error(c, c->rlen - off >= CTL_HEADER ? ctl_get32(h + 8) : 0, CTL_E_TOO_BIG,
                           "frame of %u bytes is over the limit of %u", ctl_get32(h), CTL_MAX_BODY);
            else
                send_error(c, 0, CTL_E_PROTO, "malformed frame header");
            c->dead = 1;
            break;
        }
        handle_frame(c, ctl_get16(h + 4), ctl_get32(h + 8), h + CTL_HEADER, (uint32_t)r - CTL_HEADER);
        off += (size_t)r;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
}

/* ---- set-up --------------------------------------------------------------- */

/* Takes the secret from hex (trailing newlines and spaces ignored); NULL, or
 * why it is not a valid secret. Leaves no copy but the key. */
static const char *load_secret_hex(const char *hex, size_t n)
{
    char buf[2 * CTL_MAX_SECRET + 1];
    const char *why = NULL;
    long len;

    while (n && (hex[n - 1] == '\n' || hex[n - 1] == ' '))
        n--;
    if (n == 0)
        return "it is empty";
    if (n % 2)
        return "an odd number of hex digits";
    if (n >= sizeof buf)
        return "longer than 64 bytes";
    memcpy(buf, hex, n);
    buf[n] = 0;
    len = ctl_unhex(buf, secret, sizeof secret);
    explicit_bzero(buf, sizeof buf);
    if (len < 0)
        why = "not hex";
    else if (len < (long)CTL_MIN_SECRET)
        why = "shorter than 16 bytes";
    if (why) {
        explicit_bzero(secret, sizeof secret);
        return why;
    }
    secret_len = (size_t)len;
    return NULL;
}

/* The secret file is a hand-over, not a store: read, zeroed and unlinked, so
 * nothing started after the agent finds it. */
static const char *load_secret_file(const char *path)
{
    static char why[160];
    static const char zeros[2 * CTL_MAX_SECRET + 8];
    char buf[sizeof zeros];
    const char *bad;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n;

    if (fd < 0) {
        snprintf(why, sizeof why, "%s: %s", path, strerror(errno));
        return why;
    }
    while ((n = read(fd, buf, sizeof buf)) < 0 && errno == EINTR)
        ;
    if (n > 0 && (pwrite(fd, zeros, (size_t)n, 0) != n || fsync(fd) < 0))
        logmsg("cannot zero %s: %s", path, strerror(errno));
    close(fd);
    if (unlink(path) < 0)
        logmsg("cannot remove %s: %s", path, strerror(errno));
    if (n < 0) {
        snprintf(why, sizeof why, "%s: %s", path, strerror(errno));
        return why;
    }
    bad = (size_t)n == sizeof buf ? "longer than 64 bytes" : load_secret_hex(buf, (size_t)n);
    explicit_bzero(buf, sizeof buf);
    if (bad)
        snprintf(why, sizeof why, "%s: %s", path, bad);
    return bad ? why : NULL;
}

static void setup_pid1(void)
{
    static const struct { const char *src, *dst, *fs, *opts; unsigned long flags; } m[] = {
        {"proc", "/proc", "proc", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC},
        {"sysfs", "/sys", "sysfs", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC},
        {"devtmpfs", "/dev", "devtmpfs", "mode=0755", MS_NOSUID},
        {"devpts", "/dev/pts", "devpts", "gid=5,mode=620,ptmxmode=666", MS_NOSUID | MS_NOEXEC},
        {"tmpfs", "/dev/shm", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV},
        {"cgroup2", "/sys/fs/cgroup", "cgroup2", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC},
        {"tmpfs", "/run", "tmpfs", "mode=0755", MS_NOSUID | MS_NODEV},
        {"tmpfs", "/tmp", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV},
    };
    int fd;

    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if ((mkdir(m[i].dst, 0755) < 0 && errno != EEXIST) ||
            (mount(m[i].src, m[i].dst, m[i].fs, m[i].flags, m[i].opts) < 0 && errno != EBUSY))
            logmsg("mount %s: %s", m[i].dst, strerror(errno));
    fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 0);
    setenv("HOME", "/", 0);
    setenv("TERM", "linux", 0);
}

static int listen_on(int family, const char *path, unsigned port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (family == AF_UNIX) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof a.sun_path) {
            errno = ENAMETOOLONG;
            close(fd);
            return -1;
        }
        strcpy(a.sun_path, path);
        unlink(path);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
            goto fail;
    } else {
        struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
            goto fail;
    }
    if (listen(fd, MAX_CONNS) < 0)
        goto fail;
    return fd;
fail:
    {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: nxia-agent (--unix PATH | --fd N | --vsock PORT) (--secret HEX | --secret-file PATH)\n"
                    "                  [--broker PATH [--gemini-unix HOST_PATH]]\n"
                    "       as PID 1: vsock port %u, secret from " SECRET_FILE ", Gemini broker on " BROKER_SOCKET "\n"
                    "       to the host's vsock port %u\n"
                    "       (a secret file is erased once read; without a valid secret every connection is refused)\n",
            CTL_VSOCK_PORT, BROKER_HOST_PORT);
    exit(2);
}

int main(int argc, char **argv)
{
    int conn_fd = -1, vsock_port = -1;
    const char *broker_path = NULL, *gemini_unix = NULL;
    const char *secret_from = NULL, *no_secret = NULL;
    sigset_t mask;

    pid1 = getpid() == 1;
    for (int i = 0; i < MAX_CONNS; i++)
        conns[i].fd = -1;
    for (int i = 1; i < argc; i++) {
        const char *v = argv[i + 1];
        /* The kernel hands init the command line's unknown words as arguments:
         * PID 1 must not die of them. */
        if (pid1 && (!v || strncmp(argv[i], "--", 2))) {
            logmsg("ignoring argument %s", argv[i]);
            continue;
        }
        if (!v)
            usage();
        if (!strcmp(argv[i], "--unix"))
            unix_path = v;
        else if (!strcmp(argv[i], "--fd"))
            conn_fd = atoi(v);
        else if (!strcmp(argv[i], "--vsock"))
            vsock_port = atoi(v);
        else if (!strcmp(argv[i], "--broker"))
            broker_path = v;
        else if (!strcmp(argv[i], "--gemini-unix"))
            gemini_unix = v;
        else if (!strcmp(argv[i], "--secret") && !secret_from) {
            secret_from = "--secret";
            no_secret = load_secret_hex(v, strlen(v));
            memset(argv[i + 1], 'x', strlen(v));    /* out of /proc/PID/cmdline */
        } else if (!strcmp(argv[i], "--secret-file") && !secret_from) {
            secret_from = v;
            no_secret = load_secret_file(v);
        } else if (pid1) {
            logmsg("ignoring argument %s", argv[i]);
            continue;
        } else
            usage();
        i++;
    }
    if (pid1) {
        setup_pid1();
        net_up();
        if (vsock_port < 0 && !unix_path && conn_fd < 0)
            vsock_port = CTL_VSOCK_PORT;
        if (!secret_from)
            no_secret = load_secret_file(SECRET_FILE);
        root_from_cmdline();    /* after the secret: it is in the initramfs */
        mkdir("/run", 0755);
        mkdir("/run/nxia", 0755);
        regions_link();         /* after the root switch: /run moved into the new root */
        if (!broker_path)
            broker_path = BROKER_SOCKET;
    } else {
        if ((vsock_port < 0) + !unix_path + (conn_fd < 0) != 2 || !secret_from)
            usage();
        /* Grandchildren whose parent exits come to us, as they would to PID 1. */
        prctl(PR_SET_CHILD_SUBREAPER, 1);
    }
    if (no_secret)
        logmsg("no valid secret (%s): refusing every connection", no_secret);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    if (pid1) {
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGUSR2);
        sigaddset(&mask, SIGTERM);
    }
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0) {
        logmsg("signalfd: %s", strerror(errno));
        return 1;
    }

    if (conn_fd >= 0) {
        fcntl(conn_fd, F_SETFD, FD_CLOEXEC);
        add_conn(conn_fd);
    } else {
        listen_fd = unix_path ? listen_on(AF_UNIX, unix_path, 0) : listen_on(AF_VSOCK, NULL, (unsigned)vsock_port);
        if (listen_fd < 0) {
            if (!pid1) {
                logmsg("cannot listen on %s: %s", unix_path ? unix_path : "vsock", strerror(errno));
                return 1;
            }
            /* Keep the boot going (the console still works): a guest without
             * vsock simply has no control channel. */
            logmsg("no control channel: vsock port %d: %s", vsock_port, strerror(errno));
        }
    }
    if (broker_path && broker_start(broker_path, gemini_unix, BROKER_HOST_PORT) < 0)
        logmsg("no Gemini broker: %s: %s", broker_path, strerror(errno));    /* exec still works */
    if (pid1) {
        int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
        static const char ready[] = "nxia-agent: ready\n";
        if (fd >= 0) {
            if (write(fd, ready, sizeof ready - 1) < 0)
                logmsg("console: %s", strerror(errno));
            close(fd);
        }
    }

    while (!stop) {
        struct pollfd pf[2 + MAX_CONNS + 4 * MAX_JOBS + BROKER_MAX_FDS];
        void *who[2 + MAX_CONNS + 4 * MAX_JOBS];
        int kind[2 + MAX_CONNS + 4 * MAX_JOBS];
        unsigned gen[2 + MAX_CONNS + 4 * MAX_JOBS];
        nfds_t n = 0;
        int timeout = expire_handshakes(), drain = drain_step();
        if (drain >= 0 && (timeout < 0 || drain < timeout))
            timeout = drain;

        for (int i = 0; i < MAX_CONNS; i++)
            if (conns[i].fd >= 0 && conns[i].dead) {
                close_conn(&conns[i]);
                if (conn_fd >= 0)
                    stop = 1;    /* --fd serves one connection */
            }
        if (stop)
            break;

        pf[n] = (struct pollfd){.fd = sig_fd, .events = POLLIN}; kind[n++] = 0;
        if (listen_fd >= 0) {
            pf[n] = (struct pollfd){.fd = listen_fd, .events = POLLIN}; kind[n++] = 1;
        }
        for (int i = 0; i < MAX_CONNS; i++)
            if (conns[i].fd >= 0) {
                pf[n] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
                who[n] = &conns[i]; kind[n++] = 2;
            }
        for (int i = 0; i < MAX_JOBS; i++) {
            struct job *j = &jobs[i];
            if (!j->used)
                continue;
            if (j->out_fd >= 0) {
                pf[n] = (struct pollfd){.fd = j->out_fd, .events = POLLIN}; who[n] = j; gen[n] = j->gen; kind[n++] = 3;
            }
            if (j->err_fd >= 0) {
                pf[n] = (struct pollfd){.fd = j->err_fd, .events = POLLIN}; who[n] = j; gen[n] = j->gen; kind[n++] = 4;
            }
            if (j->in_fd >= 0 && j->inq_len) {
                pf[n] = (struct pollfd){.fd = j->in_fd, .events = POLLOUT}; who[n] = j; gen[n] = j->gen; kind[n++] = 5;
            }
            if (j->notify_fd >= 0) {
                pf[n] = (struct pollfd){.fd = j->notify_fd, .events = POLLIN}; who[n] = j; gen[n] = j->gen; kind[n++] = 6;
            }
        }
        nfds_t broker_at = n;
        n += (nfds_t)broker_fill(pf + broker_at);
        if (poll(pf, n, timeout) < 0) {
            if (errno != EINTR)
                logmsg("poll: %s", strerror(errno));
            continue;
        }
        for (nfds_t i = 0; i < broker_at && !stop; i++) {
            if (!pf[i].revents)
                continue;
            struct job *j = who[i];
            switch (kind[i]) {
            case 0: reap(); break;
            case 1: {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0)
                    add_conn(fd);
                break;
            }
            case 2:    /* add_conn may have given the slot to a newer connection */
                if (((struct conn *)who[i])->fd == pf[i].fd)
                    conn_readable(who[i]);
                break;
            /* A job may have been freed by reap() earlier in this turn, and its
             * slot (and fd numbers) given to a job that an EXEC in this turn started. */
            case 3: if (j->used && j->gen == gen[i] && j->out_fd == pf[i].fd) pump_output(j, &j->out_fd, CTL_STDOUT); break;
            case 4: if (j->used && j->gen == gen[i] && j->err_fd == pf[i].fd) pump_output(j, &j->err_fd, CTL_STDERR); break;
            case 5: if (j->used && j->gen == gen[i] && j->in_fd == pf[i].fd) pump_stdin(j); break;
            case 6: if (j->used && j->gen == gen[i] && j->notify_fd == pf[i].fd) answer_denial(j, pf[i].revents); break;
            }
        }
        if (!stop)
            broker_ready(pf + broker_at, (int)(n - broker_at));
    }

    if (pid1)
        power_off();
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].fd >= 0)
            close_conn(&conns[i]);
    if (unix_path)
        unlink(unix_path);
    broker_stop();
    return 0;
}
