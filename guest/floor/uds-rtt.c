/* uds-rtt - the floor of bench:gemini-linux: a round trip of BYTES bytes over
 * a Unix stream socket between two host processes (parent and child).
 *
 *   uds-rtt N BYTES     prints N round-trip times in nanoseconds, one a line,
 *                       after N/10 round trips of warm-up */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int full(int fd, unsigned char *b, size_t n, int writing)
{
    for (size_t off = 0; off < n;) {
        ssize_t r = writing ? write(fd, b + off, n - off) : read(fd, b + off, n - off);
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int sv[2];
    long n = argc == 3 ? atol(argv[1]) : 0, bytes = argc == 3 ? atol(argv[2]) : 0;
    static unsigned char buf[1 << 20];
    struct timespec a, b;

    if (n < 1 || n > 10000000 || bytes < 1 || bytes > (long)sizeof buf) {
        fprintf(stderr, "usage: uds-rtt N BYTES (1 <= BYTES <= 1 MiB)\n");
        return 2;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 1;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(sv[0]);
        while (full(sv[1], buf, (size_t)bytes, 0) == 0 && full(sv[1], buf, (size_t)bytes, 1) == 0)
            ;
        _exit(0);
    }
    close(sv[1]);
    memset(buf, 7, sizeof buf);
    for (long i = -(n / 10); i < n; i++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (full(sv[0], buf, (size_t)bytes, 1) || full(sv[0], buf, (size_t)bytes, 0))
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (i >= 0)
            printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
    }
    close(sv[0]);
    waitpid(pid, NULL, 0);
    return 0;
}
