/*
 * virtio-rng - finds the virtio entropy device (id 4), asks it for 64 bytes
 * through its one queue and prints "virtio-rng: <n> bytes <hex>".
 * Exits 0 if 64 bytes came and they are not all zero, 1 otherwise, 10 if
 * the VM has no virtio-rng device.
 */
#include "nxia_virtio.h"

static struct nxia_virtio dev;
static struct nxia_virtq q;
static uint8_t buf[64] __attribute__((aligned(64)));

static int fail(const char *what, int rc)
{
    nxia_puts("virtio-rng: ");
    nxia_puts(what);
    nxia_puts(" failed: ");
    nxia_putc('-');
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

    (void)boot;
    if (nxia_virtio_find(NXIA_VIRTIO_ID_RNG, &dev) != 0) {
        nxia_puts("virtio-rng: no device\n");
        return 10;
    }
    if ((rc = nxia_virtio_init(&dev, 0)) != 0)
        return fail("init", rc);
    if ((rc = nxia_virtq_setup(&dev, 0, &q, 16)) != 0)
        return fail("queue setup", rc);
    if ((rc = nxia_virtio_driver_ok(&dev)) != 0)
        return fail("driver ok", rc);

    struct nxia_virtq_buf b = NXIA_VIRTQ_BUF(buf, sizeof buf, 1);
    if ((rc = nxia_virtq_submit(&q, &b, 1)) < 0)
        return fail("submit", rc);
    if ((rc = nxia_virtq_wait(&q, &len, 10000000)) < 0)
        return fail("wait", rc);

    unsigned n = len < sizeof buf ? len : sizeof buf;
    uint8_t any = 0;
    for (unsigned i = 0; i < n; i++)
        any |= buf[i];
    nxia_puts("virtio-rng: ");
    nxia_put_u64(len);
    nxia_puts(" bytes ");
    nxia_put_hex(buf, n);
    nxia_putc('\n');
    return len == sizeof buf && any ? 0 : 1;
}
