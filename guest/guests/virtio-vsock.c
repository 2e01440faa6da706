/*
 * virtio-vsock - echo over virtio-vsock (device id 19) in both directions.
 *
 * boot->arg:
 *   bits 0-31   host port to connect to (0: skip): the guest sends its input
 *               (or, without input, 4096 pattern bytes), reads the same number
 *               of bytes back and checks they are what it sent (the host runs
 *               an echo server there)
 *   bits 32-63  guest port to listen on (0: skip): the guest accepts one host
 *               connection and echoes everything it receives until the host
 *               shuts its side down; the first output_cap bytes received are
 *               the guest's output
 *
 * Exit 0 when every step worked, 1 on a driver or connection error, 3 when
 * the echo differs from what was sent, 10 if the VM has no vsock device.
 */
#include "nxia_vsock.h"

#define WAIT 4000000000ul

static uint8_t pattern[4096];
static uint8_t chunk[4096];

static int fail(const char *what, long rc)
{
    nxia_puts("virtio-vsock: ");
    nxia_puts(what);
    nxia_puts(" failed: ");
    nxia_put_i64(rc);
    nxia_putc('\n');
    return 1;
}

/* (a) the guest connects; the host echoes. */
static int echo_through_host(const struct nxia_boot *boot, uint32_t port)
{
    const uint8_t *data = pattern;
    unsigned long len = sizeof pattern;
    unsigned long got = 0;

    if (boot->input_len) {
        data = (const uint8_t *)(uintptr_t)boot->input_gpa;
        len = boot->input_len;
    } else {
        for (unsigned i = 0; i < sizeof pattern; i++)
            pattern[i] = (uint8_t)(i * 13 + 7);
    }
    int c = nxia_vsock_connect(port, WAIT);
    if (c < 0)
        return fail("connect", c);
    for (unsigned long sent = 0; sent < len || got < len;) {
        if (sent < len) {
            /* interleave: the host's echo needs our credit while we send */
            unsigned long n = len - sent < sizeof chunk ? len - sent : sizeof chunk;
            long rc = nxia_vsock_send(c, data + sent, n, WAIT);
            if (rc < 0)
                return fail("send", rc);
            sent += n;
        }
        while (got < sent) {
            long n = nxia_vsock_recv(c, chunk, sizeof chunk < sent - got ? sizeof chunk : sent - got, WAIT);
            if (n <= 0)
                return fail("receive", n);
            if (memcmp(chunk, data + got, (size_t)n) != 0) {
                nxia_puts("virtio-vsock: the echo differs at byte ");
                nxia_put_u64(got);
                nxia_putc('\n');
                return 3;
            }
            got += (unsigned long)n;
        }
    }
    nxia_vsock_close(c, WAIT);
    nxia_puts("virtio-vsock: ");
    nxia_put_u64(got);
    nxia_puts(" bytes echoed by host port ");
    nxia_put_u64(port);
    nxia_putc('\n');
    return 0;
}

/* (b) the host connects; the guest echoes. */
static int echo_for_host(struct nxia_boot *boot, uint32_t port)
{
    uint8_t *out = (uint8_t *)(uintptr_t)boot->output_gpa;
    unsigned long total = 0;

    nxia_vsock_listen(port);
    nxia_puts("virtio-vsock: listening on port ");
    nxia_put_u64(port);
    nxia_putc('\n');
    nxia_flush();
    int c = nxia_vsock_accept(WAIT);
    if (c < 0)
        return fail("accept", c);
    for (;;) {
        long n = nxia_vsock_recv(c, chunk, sizeof chunk, WAIT);
        if (n == 0)
            break;
        if (n < 0)
            return fail("receive", n);
        if (total < boot->output_cap) {
            unsigned long k = boot->output_cap - total < (unsigned long)n ? boot->output_cap - total : (unsigned long)n;
            memcpy(out + total, chunk, k);
            boot->output_len = total + k;
        }
        long rc = nxia_vsock_send(c, chunk, (unsigned long)n, WAIT);
        if (rc < 0)
            return fail("send", rc);
        total += (unsigned long)n;
    }
    nxia_vsock_close(c, WAIT);
    nxia_puts("virtio-vsock: echoed ");
    nxia_put_u64(total);
    nxia_puts(" bytes for the host\n");
    return 0;
}

int main(const struct nxia_boot *boot)
{
    uint32_t host_port = (uint32_t)boot->arg;
    uint32_t listen_port = (uint32_t)(boot->arg >> 32);
    int rc = nxia_vsock_init();

    if (rc == NXIA_VIRTIO_ENODEV) {
        nxia_puts("virtio-vsock: no device\n");
        return 10;
    }
    if (rc != 0)
        return fail("init", rc);
    nxia_puts("virtio-vsock: guest cid ");
    nxia_put_u64(nxia_vsock_cid());
    nxia_putc('\n');
    if (host_port && (rc = echo_through_host(boot, host_port)) != 0)
        return rc;
    if (listen_port && (rc = echo_for_host((struct nxia_boot *)boot, listen_port)) != 0)
        return rc;
    return 0;
}
