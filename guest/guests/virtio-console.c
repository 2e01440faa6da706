/*
 * virtio-console - finds the virtio console (id 3): posts a 64-byte buffer
 * on receiveq (queue 0), sends "virtio-console: hello\n" on transmitq
 * (queue 1), then waits for the receive buffer (the host may send "ping\n")
 * and prints "virtio-console: got '<text>'". boot->arg, if nonzero, is the
 * number of polls to wait. Exits 0 if something arrived, 2 if nothing did,
 * 1 on a driver error, 10 if the VM has no virtio console.
 */
#include "nxia_virtio.h"

static struct nxia_virtio dev;
static struct nxia_virtq rxq, txq;
static char rxbuf[64] __attribute__((aligned(64)));
static const char hello[] = "virtio-console: hello\n";

static int fail(const char *what, int rc)
{
    nxia_puts("virtio-console: ");
    nxia_puts(what);
    nxia_puts(" failed: -");
    nxia_put_u64((unsigned long)-(long)rc);
    nxia_puts(" status 0x");
    uint8_t st = (uint8_t)nxia_virtio_status(&dev);
    nxia_put_hex(&st, 1);
    nxia_putc('\n');
    return 1;
}

int main(const struct nxia_boot *boot)
{
    int rc;
    uint32_t len = 0;
    unsigned long polls = boot->arg ? boot->arg : 100000000ul;

    if (nxia_virtio_find(NXIA_VIRTIO_ID_CONSOLE, &dev) != 0) {
        nxia_puts("virtio-console: no device\n");
        return 10;
    }
    if ((rc = nxia_virtio_init(&dev, 0)) != 0)
        return fail("init", rc);
    if ((rc = nxia_virtq_setup(&dev, 0, &rxq, 16)) != 0)
        return fail("receiveq setup", rc);
    if ((rc = nxia_virtq_setup(&dev, 1, &txq, 16)) != 0)
        return fail("transmitq setup", rc);
    if ((rc = nxia_virtio_driver_ok(&dev)) != 0)
        return fail("driver ok", rc);

    struct nxia_virtq_buf rb = NXIA_VIRTQ_BUF(rxbuf, sizeof rxbuf, 1);
    if ((rc = nxia_virtq_submit(&rxq, &rb, 1)) < 0)
        return fail("receive post", rc);

    struct nxia_virtq_buf tb = NXIA_VIRTQ_BUF(hello, sizeof hello - 1, 0);
    if ((rc = nxia_virtq_submit(&txq, &tb, 1)) < 0)
        return fail("transmit", rc);
    if ((rc = nxia_virtq_wait(&txq, &len, 10000000)) < 0)
        return fail("transmit wait", rc);
    nxia_puts("virtio-console: sent hello\n");

    rc = nxia_virtq_wait(&rxq, &len, polls);
    if (rc == NXIA_VIRTIO_ETIMEDOUT) {
        nxia_puts("virtio-console: nothing received\n");
        return 2;
    }
    if (rc < 0)
        return fail("receive wait", rc);
    unsigned n = len < sizeof rxbuf ? len : sizeof rxbuf;
    while (n && (rxbuf[n - 1] == '\n' || rxbuf[n - 1] == '\r'))
        n--;
    nxia_puts("virtio-console: got '");
    nxia_write(rxbuf, n);
    nxia_puts("'\n");
    return len ? 0 : 2;
}
