/*
 * virtio-blk - drives the virtio block device (id 2) through one queue:
 * prints the capacity, writes 4096 bytes (byte i = (i*7+3) & 0xff) at
 * sector 8, flushes (if VIRTIO_BLK_F_FLUSH is offered), reads sectors 8..15
 * back and compares, asks for the device id (GET_ID) and prints it, and
 * reads sector 0 into the output buffer (output_len = 512).
 * On a read-only device (VIRTIO_BLK_F_RO) the write and flush are skipped;
 * with boot->arg == 1 a write is attempted and must fail with IOERR.
 * Exits 0 if every step behaved, 1 otherwise, 10 if there is no device.
 */
#include "nxia_virtio.h"

#define NXIA_BLK_F_RO        (1ull << 5)
#define NXIA_BLK_F_FLUSH     (1ull << 9)

static struct nxia_virtio dev;
static struct nxia_virtq q;
static struct nxia_blk_req_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t status_byte;
static uint8_t wbuf[4096] __attribute__((aligned(4096)));
static uint8_t rbuf[4096] __attribute__((aligned(4096)));
static char id[21];

/*
 * One request: header, optional data, status. Returns the status byte
 * (0..255), 0x100 + driver error if the request did not complete.
 */
static int request(uint32_t type, uint64_t sector, void *data, uint32_t len, int data_writable,
                   uint32_t *used_len)
{
    struct nxia_virtq_buf b[3];
    unsigned n = 0;

    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    status_byte = 0xff;
    b[n++] = NXIA_VIRTQ_BUF(&hdr, sizeof hdr, 0);
    if (len)
        b[n++] = NXIA_VIRTQ_BUF(data, len, data_writable);
    b[n++] = NXIA_VIRTQ_BUF(&status_byte, 1, 1);

    int rc = nxia_virtq_submit(&q, b, n);
    if (rc >= 0)
        rc = nxia_virtq_wait(&q, used_len, 10000000);
    if (rc < 0) {
        nxia_puts("virtio-blk: request failed: ");
        nxia_put_i64(rc);
        nxia_puts(" device status 0x");
        uint8_t st = (uint8_t)nxia_virtio_status(&dev);
        nxia_put_hex(&st, 1);
        nxia_putc('\n');
        return 0x100;
    }
    return status_byte;
}

static void report(const char *step, int st, uint32_t used_len)
{
    nxia_puts("virtio-blk: ");
    nxia_puts(step);
    nxia_puts(": status ");
    nxia_put_u64((unsigned long)st);
    nxia_puts(" used ");
    nxia_put_u64(used_len);
    nxia_putc('\n');
}

int main(const struct nxia_boot *boot)
{
    int rc, st, ok = 1;
    uint32_t ul = 0;

    if (nxia_virtio_find(NXIA_VIRTIO_ID_BLOCK, &dev) != 0) {
        nxia_puts("virtio-blk: no device\n");
        return 10;
    }
    if ((rc = nxia_virtio_init(&dev, NXIA_BLK_F_FLUSH | NXIA_BLK_F_RO)) != 0 ||
        (rc = nxia_virtq_setup(&dev, 0, &q, 16)) != 0 ||
        (rc = nxia_virtio_driver_ok(&dev)) != 0) {
        nxia_puts("virtio-blk: setup failed: ");
        nxia_put_i64(rc);
        nxia_putc('\n');
        return 1;
    }
    int ro = (dev.features & NXIA_BLK_F_RO) != 0;
    uint64_t cap = nxia_virtio_config64(&dev, 0);
    nxia_puts("virtio-blk: capacity ");
    nxia_put_u64(cap);
    nxia_puts(" sectors");
    if (ro)
        nxia_puts(", read-only");
    if (dev.features & NXIA_BLK_F_FLUSH)
        nxia_puts(", flush");
    nxia_putc('\n');
    if (cap < 16) {
        nxia_puts("virtio-blk: capacity below 16 sectors\n");
        return 1;
    }

    for (unsigned i = 0; i < sizeof wbuf; i++)
        wbuf[i] = (uint8_t)((i * 7 + 3) & 0xff);

    if (!ro) {
        st = request(NXIA_BLK_T_OUT, 8, wbuf, sizeof wbuf, 0, &ul);
        report("write sector 8, 4096 bytes", st, ul);
        ok &= st == NXIA_BLK_S_OK;
        if (dev.features & NXIA_BLK_F_FLUSH) {
            st = request(NXIA_BLK_T_FLUSH, 0, 0, 0, 0, &ul);
            report("flush", st, ul);
            ok &= st == NXIA_BLK_S_OK;
        } else {
            nxia_puts("virtio-blk: flush: not offered, skipped\n");
        }
    } else if (boot->arg == 1) {
        st = request(NXIA_BLK_T_OUT, 8, wbuf, sizeof wbuf, 0, &ul);
        report("write to read-only device (expect 1, IOERR)", st, ul);
        ok &= st == NXIA_BLK_S_IOERR;
    } else {
        nxia_puts("virtio-blk: read-only: write and flush skipped\n");
    }

    memset(rbuf, 0, sizeof rbuf);
    st = request(NXIA_BLK_T_IN, 8, rbuf, sizeof rbuf, 1, &ul);
    report("read sector 8..15", st, ul);
    ok &= st == NXIA_BLK_S_OK;
    if (!ro) {
        int same = memcmp(rbuf, wbuf, sizeof wbuf) == 0;
        nxia_puts(same ? "virtio-blk: data matches\n" : "virtio-blk: data DIFFERS\n");
        ok &= same;
    }

    memset(id, 0, sizeof id);
    st = request(NXIA_BLK_T_GET_ID, 0, id, 20, 1, &ul);
    report("get id", st, ul);
    ok &= st == NXIA_BLK_S_OK;
    if (st == NXIA_BLK_S_OK) {
        for (unsigned i = 0; i < 20; i++)
            if (id[i] && (id[i] < 0x20 || id[i] > 0x7e))
                id[i] = '?';
        nxia_puts("virtio-blk: id '");
        nxia_puts(id);
        nxia_puts("'\n");
    }

    uint8_t *out = (uint8_t *)(uintptr_t)boot->output_gpa;
    int direct = boot->output_cap >= 512;
    st = request(NXIA_BLK_T_IN, 0, direct ? out : rbuf, 512, 1, &ul);
    report("read sector 0", st, ul);
    ok &= st == NXIA_BLK_S_OK;
    if (st == NXIA_BLK_S_OK) {
        unsigned long n = direct ? 512 : boot->output_cap;
        if (!direct)
            memcpy(out, rbuf, n);
        ((volatile struct nxia_boot *)boot)->output_len = n;
    }

    nxia_puts(ok ? "virtio-blk: ok\n" : "virtio-blk: FAILED\n");
    return ok ? 0 : 1;
}
