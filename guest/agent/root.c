/* root.c - PID 1 switches from the initramfs to the Debian root: the shared
 * base image read-only, an overlay with this VM's own upper layer on top.
 *
 * The agent stays PID 1 and is not executed again: its code, the secret and
 * the console stay in this process, and the new root holds no copy of the
 * agent that a guest program could replace. The initramfs is left in RAM
 * (busybox and the agent, about 3 MB), out of sight under the new root; the
 * agent's tools in it (nxia-call, nxia-serve, nxia-portal) are bound into the
 * new root read-only at the same paths, so they always match the agent and
 * a manifest's caller=exe:/usr/bin/nxia-call holds on either root. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "root.h"

#define NEW_ROOT   "/nxia/root"
#define BASE_DIR   "/nxia/base"
#define RW_DIR     "/nxia/rw"
#define DEV_WAIT_MS 5000         /* virtio-blk probes before init runs; this is slack */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[400];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        dprintf(2, "nxia-agent: root: %s\n", line);
}

static int set_value(char *dst, size_t cap, const char *v, size_t n, int device)
{
    if (dst[0] || n == 0 || n >= cap)
        return -1;
    if (device && (n <= 5 || strncmp(v, "/dev/", 5)))
        return -1;
    for (size_t i = device ? 5 : 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return -1;
    }
    memcpy(dst, v, n);
    dst[n] = 0;
    return 0;
}

int root_parse(const char *cmdline, size_t n, struct root_args *a, const char **why)
{
    static const struct { const char *key; size_t off, cap; int device; } keys[] = {
        {"nxia.root=", offsetof(struct root_args, root), ROOT_DEV_MAX, 1},
        {"nxia.upper=", offsetof(struct root_args, upper), ROOT_DEV_MAX, 1},
        {"nxia.rootfstype=", offsetof(struct root_args, fstype), sizeof a->fstype, 0},
    };
    size_t i = 0;

    memset(a, 0, sizeof *a);
    while (i < n) {
        size_t w;
        while (i < n && (cmdline[i] == ' ' || cmdline[i] == '\n' || cmdline[i] == '\t' || cmdline[i] == 0))
            i++;
        for (w = i; w < n && cmdline[w] != ' ' && cmdline[w] != '\n' && cmdline[w] != '\t' && cmdline[w] != 0; w++)
            ;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t kl = strlen(keys[k].key);
            if (w - i >= kl && !memcmp(cmdline + i, keys[k].key, kl)) {
                if (set_value((char *)a + keys[k].off, keys[k].cap, cmdline + i + kl, w - i - kl, keys[k].device) < 0) {
                    *why = keys[k].device ? "device is not /dev/NAME ([A-Za-z0-9_-], given once)"
                                          : "file system type is not [A-Za-z0-9_-] (given once)";
                    return -1;
                }
            }
        }
        i = w;
    }
    if (!a->root[0] && (a->upper[0] || a->fstype[0])) {
        *why = "nxia.upper or nxia.rootfstype without nxia.root";
        return -1;
    }
    if (!a->root[0])
        return 0;
    if (!a->fstype[0])
        strcpy(a->fstype, "ext4");
    return 1;
}

static int wait_for(const char *dev)
{
    struct stat st;
    struct timespec ms50 = {0, 50 * 1000000L};

    for (int waited = 0; stat(dev, &st) < 0; waited += 50) {
        if (waited >= DEV_WAIT_MS) {
            say("%s did not appear in %d ms", dev, DEV_WAIT_MS);
            return -1;
        }
        nanosleep(&ms50, NULL);
    }
    if (!S_ISBLK(st.st_mode)) {
        say("%s is not a block device", dev);
        return -1;
    }
    return 0;
}

static int step(int r, const char *what, const char *where)
{
    if (r < 0)
        say("%s %s: %s", what, where, strerror(errno));
    return r;
}

static int mkdir_p(const char *dir)
{
    return mkdir(dir, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* Binds the initramfs's tools over the same paths in the new root (an empty
 * file in this VM's upper layer is the mount point); a tool that cannot be
 * bound is said and left out: the root is still usable without it. */
static void bind_tools(void)
{
    static const char *const tools[] = {"/usr/bin/nxia-call", "/usr/bin/nxia-serve", "/usr/bin/nxia-portal"};
    char dst[64];

    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
        if (access(tools[i], X_OK) < 0)
            continue;
        snprintf(dst, sizeof dst, NEW_ROOT "%s", tools[i]);
        int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0755);
        if (step(fd, "create", dst) < 0)
            continue;
        close(fd);
        if (step(mount(tools[i], dst, NULL, MS_BIND, NULL), "bind", tools[i]) == 0)
            step(mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL), "make read-only", dst);
    }
}

int root_switch(const struct root_args *a)
{
    static const char *const moved[] = {"/dev", "/proc", "/sys", "/run", "/tmp"};
    char opts[128], dst[64];

    if (wait_for(a->root) < 0 || (a->upper[0] && wait_for(a->upper) < 0))
        return -1;
    if (step(mkdir_p("/nxia"), "mkdir", "/nxia") < 0 || step(mkdir_p(BASE_DIR), "mkdir", BASE_DIR) < 0 ||
        step(mkdir_p(RW_DIR), "mkdir", RW_DIR) < 0 || step(mkdir_p(NEW_ROOT), "mkdir", NEW_ROOT) < 0)
        return -1;
    /* The base is shared by every VM: read-only here, and the VMM opens it read-only too. */
    if (step(mount(a->root, BASE_DIR, a->fstype, MS_RDONLY | MS_NOATIME, NULL), "mount (read-only)", a->root) < 0)
        return -1;
    if (a->upper[0] ? step(mount(a->upper, RW_DIR, a->fstype, MS_NOATIME, NULL), "mount", a->upper)
                    : step(mount("tmpfs", RW_DIR, "tmpfs", MS_NOATIME, "mode=0755"), "mount tmpfs on", RW_DIR))
        goto undo_base;
    if (step(mkdir_p(RW_DIR "/upper"), "mkdir", RW_DIR "/upper") < 0 || step(mkdir_p(RW_DIR "/work"), "mkdir", RW_DIR "/work") < 0)
        goto undo_rw;
    snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s/upper,workdir=%s/work", BASE_DIR, RW_DIR, RW_DIR);
    if (step(mount("overlay", NEW_ROOT, "overlay", 0, opts), "mount overlay on", NEW_ROOT) < 0)
        goto undo_rw;
    for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++) {
        snprintf(dst, sizeof dst, NEW_ROOT "%s", moved[i]);
        if (step(mkdir_p(dst), "mkdir", dst) < 0 || step(mount(moved[i], dst, NULL, MS_MOVE, NULL), "move mount", moved[i]) < 0) {
            /* Half moved: put back what moved so the initramfs keeps working. */
            while (i-- > 0) {
                snprintf(dst, sizeof dst, NEW_ROOT "%s", moved[i]);
                mount(dst, moved[i], NULL, MS_MOVE, NULL);
            }
            umount(NEW_ROOT);
            goto undo_rw;
        }
    }
    bind_tools();
    /* The layers stay visible in the new root for inspection (findmnt, df). */
    if (mkdir_p(NEW_ROOT "/run/nxia") == 0 && mkdir_p(NEW_ROOT "/run/nxia/base") == 0 && mkdir_p(NEW_ROOT "/run/nxia/rw") == 0) {
        step(mount(BASE_DIR, NEW_ROOT "/run/nxia/base", NULL, MS_MOVE, NULL), "move mount", BASE_DIR);
        step(mount(RW_DIR, NEW_ROOT "/run/nxia/rw", NULL, MS_MOVE, NULL), "move mount", RW_DIR);
    }
    if (step(chdir(NEW_ROOT), "chdir", NEW_ROOT) < 0 || step(mount(".", "/", NULL, MS_MOVE, NULL), "move mount", NEW_ROOT) < 0 ||
        step(chroot("."), "chroot", NEW_ROOT) < 0 || step(chdir("/"), "chdir", "/") < 0) {
        say("the root is half switched: this VM is unusable");
        return -1;
    }
    say("%s (%s, read-only) under an overlay with its upper layer on %s", a->root, a->fstype, a->upper[0] ? a->upper : "tmpfs");
    return 0;
undo_rw:
    umount(RW_DIR);
undo_base:
    umount(BASE_DIR);
    return -1;
}

void root_from_cmdline(void)
{
    char line[4096];
    struct root_args a;
    const char *why = NULL;
    ssize_t n = -1;
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);

    if (fd >= 0) {
        while ((n = read(fd, line, sizeof line)) < 0 && errno == EINTR)
            ;
        close(fd);
    }
    if (n < 0) {
        say("/proc/cmdline: %s", strerror(errno));
        return;
    }
    int r = root_parse(line, (size_t)n, &a, &why);
    if (r < 0)
        say("the command line's root is not used: %s", why);
    else if (r > 0 && root_switch(&a) < 0)
        say("staying on the initramfs");
}
