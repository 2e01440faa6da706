/* fd-check - drives the agent over a socketpair (nxia-agent --fd N): handshake,
 * one program, then hang up; the agent must exit 0. Usage: fd-check AGENT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto.h"

static const char SECRET_HEX[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static int sock;

static void die(const char *what)
{
    fprintf(stderr, "fd-check: %s\n", what);
    exit(1);
}

static void send_frame(uint16_t type, uint32_t id, const void *p, uint32_t len)
{
    uint8_t buf[CTL_HEADER + 256];

    ctl_header(buf, type, id, len);
    memcpy(buf + CTL_HEADER, p, len);
    if (write(sock, buf, CTL_HEADER + len) != (ssize_t)(CTL_HEADER + len))
        die("write");
}

static void read_all(uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(sock, p, n);
        if (r <= 0)
            die("the agent hung up");
        p += r;
        n -= (size_t)r;
    }
}

/* Reads one frame; returns its payload length. */
static uint32_t read_frame(uint16_t want, uint32_t id, uint8_t *payload)
{
    uint8_t h[CTL_HEADER];

    read_all(h, sizeof h);
    if (ctl_scan(h, sizeof h, 0) < 0 || ctl_get32(h) > 8 + 256)
        die("bad frame header");
    uint32_t len = ctl_get32(h) - 8;
    read_all(payload, len);
    if (ctl_get16(h + 4) != want || ctl_get32(h + 8) != id) {
        fprintf(stderr, "fd-check: got type 0x%x id %u, want 0x%x id %u\n", ctl_get16(h + 4), ctl_get32(h + 8), want, id);
        exit(1);
    }
    return len;
}

int main(int argc, char **argv)
{
    uint8_t secret[32], hn[CTL_NONCE] = {1, 2, 3}, p[512], mac[CTL_MAC];
    int sv[2], status;
    char fd[16];

    if (argc != 2)
        die("usage: fd-check AGENT");
    ctl_unhex(SECRET_HEX, secret, sizeof secret);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        die("socketpair");
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        snprintf(fd, sizeof fd, "%d", sv[1]);
        execl(argv[1], argv[1], "--fd", fd, "--secret", SECRET_HEX, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    sock = sv[0];

    ctl_put16(p, 1);
    ctl_put16(p + 2, 1);
    memcpy(p + 4, hn, CTL_NONCE);
    send_frame(CTL_HELLO, 0, p, 4 + CTL_NONCE);
    if (read_frame(CTL_HELLO_REPLY, 0, p) != 4 + CTL_NONCE + CTL_MAC)
        die("HELLO_REPLY size");
    ctl_proof(secret, sizeof secret, 1, hn, p + 4, mac);
    if (!ctl_mac_equal(mac, p + 4 + CTL_NONCE))
        die("the agent's proof is wrong");
    ctl_proof(secret, sizeof secret, 0, p + 4, hn, mac);
    send_frame(CTL_AUTH, 0, mac, CTL_MAC);
    read_frame(CTL_READY, 0, p);

    size_t off = 0;
    ctl_tlv_put(p, sizeof p, &off, CTL_T_ARG, "sh", 2);
    ctl_tlv_put(p, sizeof p, &off, CTL_T_ARG, "-c", 2);
    ctl_tlv_put(p, sizeof p, &off, CTL_T_ARG, "echo hi; exit 3", 15);
    send_frame(CTL_EXEC, 9, p, (uint32_t)off);
    read_frame(CTL_STARTED, 9, p);
    if (read_frame(CTL_STDOUT, 9, p) != 3 || memcmp(p, "hi\n", 3))
        die("stdout is not hi");
    read_frame(CTL_EXIT, 9, p);
    if (ctl_get32(p) != 0 || ctl_get32(p + 4) != 3)
        die("exit status is not 3");

    close(sock);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("the agent did not exit 0 after its one connection closed");
    printf("fd-check: socketpair transport ok\n");
    return 0;
}
