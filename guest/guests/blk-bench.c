/*
 * blk-bench - a virtio-blk benchmark load (device id 2, one queue, one
 * request in flight: submit, wait).
 *
 * boot->arg:
 *   bits 0-7   mode: 0 = baseline (find + init the device, set up the queue,
 *                        DRIVER_OK, read the capacity; no requests)
 *                    1 = sequential write, 2 = sequential read,
 *                    3 = random 4 KiB reads
 *   bits 8-31  total MiB to move (0..16777215)
 *   e.g. arg = (64 << 8) | 2 = 16386: read 64 MiB sequentially.
 *
 * Sequential modes move the total in 1 MiB requests (header + one 1 MiB
 * data descriptor + status) from sector 0 up, wrapping to sector 0 when the
 * next request would pass the capacity. Random mode issues MiB * 256 reads
 * of 4 KiB at 4 KiB-aligned offsets within the capacity, picked by
 * xorshift64 from a fixed seed. The data buffer is a static 1 MiB array
 * (4 KiB aligned), so the guest needs more than 2 MiB of RAM (8 MiB is
 * plenty). Every status byte must be 0.
 *
 * Output: one line at the end, "blk-bench: mode <m> <n> requests <bytes> bytes ok"
 * (or a line saying what failed). Exit 0 on success, 1 on any I/O or setup
 * error (or a device too small for one request), 2 on a bad mode,
 * 10 if there is no block device.
 */
#include "nxia_virtio.h"

#define SECTOR          512u
#define SEQ_BYTES       (1024u * 1024u)
#define RND_BYTES       4096u
#define SEQ_SECTORS     (SEQ_BYTES / SECTOR)
#define RND_SECTORS     (RND_BYTES / SECTOR)

#define MODE_BASELINE   0u
#define MODE_SEQ_WRITE  1u
#define MODE_SEQ_READ   2u
#define MODE_RND_READ   3u

static struct nxia_virtio dev;
static struct nxia_virtq q;
static struct nxia_blk_req_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t status_byte;
static uint8_t buf[SEQ_BYTES] __attribute__((aligned(4096)));

/* One request; returns the status byte (0..255), or 0x100 + driver error. */
static int request(uint32_t type, uint64_t sector, uint32_t len)
{
    struct nxia_virtq_buf b[3];

    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    status_byte = 0xff;
    b[0] = NXIA_VIRTQ_BUF(&hdr, sizeof hdr, 0);
    b[1] = NXIA_VIRTQ_BUF(buf, len, type == NXIA_BLK_T_IN);
    b[2] = NXIA_VIRTQ_BUF(&status_byte, 1, 1);

    int rc = nxia_virtq_submit(&q, b, 3);
    if (rc >= 0)
        rc = nxia_virtq_wait(&q, 0, 100000000ul);
    if (rc < 0)
        return 0x100 - rc;
    return status_byte;
}

static int fail(unsigned mode, unsigned long i, uint64_t sector, int st)
{
    nxia_puts("blk-bench: mode ");
    nxia_put_u64(mode);
    nxia_puts(" request ");
    nxia_put_u64(i);
    nxia_puts(" sector ");
    nxia_put_u64(sector);
    if (st >= 0x100) {
        nxia_puts(" failed: driver error ");
        nxia_put_i64(0x100 - st);
    } else {
        nxia_puts(" failed: status ");
        nxia_put_u64((unsigned long)st);
    }
    nxia_putc('\n');
    return 1;
}

int main(const struct nxia_boot *boot)
{
    unsigned mode = (unsigned)(boot->arg & 0xff);
    uint64_t mib = (boot->arg >> 8) & 0xffffff;
    unsigned long n = 0;
    uint64_t bytes = 0;
    int rc, st;

    if (mode > MODE_RND_READ) {
        nxia_puts("blk-bench: bad mode ");
        nxia_put_u64(mode);
        nxia_putc('\n');
        return 2;
    }
    if (nxia_virtio_find(NXIA_VIRTIO_ID_BLOCK, &dev) != 0) {
        nxia_puts("blk-bench: no device\n");
        return 10;
    }
    if ((rc = nxia_virtio_init(&dev, 0)) != 0 ||
        (rc = nxia_virtq_setup(&dev, 0, &q, 16)) != 0 ||
        (rc = nxia_virtio_driver_ok(&dev)) != 0) {
        nxia_puts("blk-bench: setup failed: ");
        nxia_put_i64(rc);
        nxia_putc('\n');
        return 1;
    }
    uint64_t cap = nxia_virtio_config64(&dev, 0);   /* sectors */

    if (mode == MODE_SEQ_WRITE || mode == MODE_SEQ_READ) {
        uint32_t type = mode == MODE_SEQ_WRITE ? NXIA_BLK_T_OUT : NXIA_BLK_T_IN;
        if (mib && cap < SEQ_SECTORS) {
            nxia_puts("blk-bench: capacity below 1 MiB\n");
            return 1;
        }
        if (type == NXIA_BLK_T_OUT) {
            uint64_t *w = (uint64_t *)buf;
            for (unsigned i = 0; i < SEQ_BYTES / 8; i++)
                w[i] = 0x9e3779b97f4a7c15ull * (i + 1);
        }
        uint64_t sector = 0;
        for (; n < mib; n++) {
            if (sector + SEQ_SECTORS > cap)
                sector = 0;
            if ((st = request(type, sector, SEQ_BYTES)) != 0)
                return fail(mode, n, sector, st);
            sector += SEQ_SECTORS;
            bytes += SEQ_BYTES;
        }
    } else if (mode == MODE_RND_READ) {
        uint64_t slots = cap / RND_SECTORS;
        uint64_t total = mib * (SEQ_BYTES / RND_BYTES);
        uint64_t x = 0x2545f4914f6cdd1dull;         /* fixed seed */
        if (total && slots == 0) {
            nxia_puts("blk-bench: capacity below 4 KiB\n");
            return 1;
        }
        for (; n < total; n++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t sector = (x % slots) * RND_SECTORS;
            if ((st = request(NXIA_BLK_T_IN, sector, RND_BYTES)) != 0)
                return fail(mode, n, sector, st);
            bytes += RND_BYTES;
        }
    }

    nxia_puts("blk-bench: mode ");
    nxia_put_u64(mode);
    nxia_putc(' ');
    nxia_put_u64(n);
    nxia_puts(" requests ");
    nxia_put_u64(bytes);
    nxia_puts(" bytes ok\n");
    return 0;
}
