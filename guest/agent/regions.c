/* regions.c - /run/nxia/portal/NAME: the devices of the Portal regions the VMM named. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "regions.h"

#define KEY          "nxia.portal="
#define DEV_WAIT_MS  2000        /* devtmpfs makes nodes a moment after the driver binds */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[300];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(line, sizeof line, fmt, ap) > 0)
        dprintf(2, "nxia-agent: portal %s\n", line);
    va_end(ap);
}

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= REGION_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

static int hex_ok(const char *s, size_t n, uint64_t *v)
{
    if (n < 3 || n > 18 || s[0] != '0' || s[1] != 'x')
        return 0;
    *v = 0;
    for (size_t i = 2; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return 0;
        *v = *v << 4 | (uint64_t)d;
    }
    return 1;
}

int regions_parse(const char *cmdline, size_t n, struct region_arg *out, int max, const char **why)
{
    static const size_t kl = sizeof KEY - 1;
    int count = 0;

    for (size_t i = 0; i < n;) {
        size_t w;
        while (i < n && (cmdline[i] == ' ' || cmdline[i] == '\n' || cmdline[i] == '\t' || cmdline[i] == 0))
            i++;
        for (w = i; w < n && cmdline[w] != ' ' && cmdline[w] != '\n' && cmdline[w] != '\t' && cmdline[w] != 0; w++)
            ;
        if (w - i > kl && !memcmp(cmdline + i, KEY, kl)) {
            const char *v = cmdline + i + kl, *at = memchr(v, '@', w - i - kl);
            uint64_t gpa;
            if (!at || !name_ok(v, (size_t)(at - v)) || !hex_ok(at + 1, (size_t)(cmdline + w - at - 1), &gpa)) {
                *why = "nxia.portal= wants NAME@0xADDRESS with a Portal name ([a-z0-9][a-z0-9_-]{0,14})";
                return -1;
            }
            for (int k = 0; k < count; k++)
                if (strlen(out[k].name) == (size_t)(at - v) && !memcmp(out[k].name, v, (size_t)(at - v))) {
                    *why = "nxia.portal= names a region twice";
                    return -1;
                }
            if (count == max) {
                *why = "more nxia.portal= regions than " REGIONS_DIR " takes";
                return -1;
            }
            memcpy(out[count].name, v, (size_t)(at - v));
            out[count].name[at - v] = '\0';
            out[count].gpa = gpa;
            count++;
        }
        i = w;
    }
    return count;
}

/* The id of the nd region that starts at gpa, or -1. */
static int nd_region_at(uint64_t gpa)
{
    DIR *d = opendir("/sys/bus/nd/devices");
    struct dirent *e;
    int id = -1;

    if (!d)
        return -1;
    while (id < 0 && (e = readdir(d)) != NULL) {
        char path[300], text[32];
        int region, fd;
        ssize_t r;
        if (sscanf(e->d_name, "region%d", &region) != 1)
            continue;
        snprintf(path, sizeof path, "/sys/bus/nd/devices/%s/resource", e->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        r = read(fd, text, sizeof text - 1);
        close(fd);
        if (r > 0) {
            text[r] = '\0';
            if (strtoull(text, NULL, 16) == gpa)
                id = region;
        }
    }
    closedir(d);
    return id;
}

static long long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void regions_link(void)
{
    struct region_arg r[REGIONS_MAX];
    char cmdline[4096];
    const char *why = NULL;
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC), count;
    ssize_t n = fd < 0 ? -1 : read(fd, cmdline, sizeof cmdline);

    if (fd >= 0)
        close(fd);
    if (n < 0) {
        say("names: /proc/cmdline: %s", strerror(errno));
        return;
    }
    count = regions_parse(cmdline, (size_t)n, r, REGIONS_MAX, &why);
    if (count < 0) {
        say("names: %s", why);
        return;
    }
    if (count == 0)
        return;
    if ((mkdir(REGIONS_DIR, 0755) < 0 && errno != EEXIST)) {
        say("names: %s: %s", REGIONS_DIR, strerror(errno));
        return;
    }
    for (int i = 0; i < count; i++) {
        char dax[32], pmem[32], link[64];
        const char *dev = NULL;
        int id = nd_region_at(r[i].gpa);
        if (id < 0) {
            say("%s: no pmem region at 0x%llx (no virtio-pmem:region=%s)", r[i].name, (unsigned long long)r[i].gpa, r[i].name);
            continue;
        }
        snprintf(dax, sizeof dax, "/dev/dax%d.0", id);
        snprintf(pmem, sizeof pmem, "/dev/pmem%d", id);
        for (long long until = now_ms() + DEV_WAIT_MS; !dev; usleep(10000)) {
            dev = access(dax, F_OK) == 0 ? dax : access(pmem, F_OK) == 0 ? pmem : NULL;
            if (!dev && now_ms() > until)
                break;
        }
        if (!dev) {
            say("%s: region%d has neither %s nor %s", r[i].name, id, dax, pmem);
            continue;
        }
        snprintf(link, sizeof link, REGIONS_DIR "/%.15s", r[i].name);
        unlink(link);
        if (symlink(dev, link) < 0)
            say("%s: %s: %s", r[i].name, link, strerror(errno));
        else
            say("%s: %s -> %s", r[i].name, link, dev);
    }
}
