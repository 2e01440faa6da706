/*
 * virtio-hostile (hostile) - feeds the virtio-rng device (id 4) malformed
 * queues, descriptors and feature sets. Each case resets and re-inits the
 * device, sets up queue 0, does one bad thing, notifies, and reads Status:
 * "refused" means DEVICE_NEEDS_RESET (0x40) is set (or QueueReady read back
 * 0, or FEATURES_OK did not stick). After DRIVER_OK a kick may be served
 * on a host thread (an ioeventfd doorbell), so the verdict polls Status for
 * a while instead of reading it once. Prints one line per case and
 * "virtio-hostile: N of M refused"; then one good request must still work
 * ("control"). Exits 0 if every case was refused and the control worked,
 * 1 otherwise, 10 if there is no rng device. The VM must survive it all.
 */
#include "nxia_virtio.h"

#define QSIZE 16u
#define FAR_AWAY 0x7fff0000000ull   /* far beyond any RAM (<= 3 GiB) */

static struct nxia_virtio dev;
static struct nxia_virtq q;
static uint8_t buf[QSIZE][64] __attribute__((aligned(64)));
static unsigned refused, total;

static uint64_t gpa(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static void verdict(const char *name, int was_refused)
{
    total++;
    refused += was_refused != 0;
    nxia_puts("virtio-hostile: ");
    nxia_puts(name);
    nxia_puts(was_refused ? ": refused\n" : ": ACCEPTED\n");
}

static int needs_reset(void)
{
    return (nxia_virtio_status(&dev) & NXIA_VIRTIO_S_NEEDS_RESET) != 0;
}

/* whether DEVICE_NEEDS_RESET shows within 100000 reads of Status: a kick may be served asynchronously */
static int refused_soon(void)
{
    for (unsigned i = 0; i < 100000; i++) {
        if (needs_reset())
            return 1;
        __asm__ volatile("pause" ::: "memory");
    }
    return 0;
}

/* reset, init, queue 0 (QSIZE), DRIVER_OK if asked; 0 or a negative code */
static int prepare(int driver_ok)
{
    int rc = nxia_virtio_init(&dev, 0);
    if (rc == 0)
        rc = nxia_virtq_setup(&dev, 0, &q, QSIZE);
    if (rc == 0 && driver_ok)
        rc = nxia_virtio_driver_ok(&dev);
    if (rc != 0) {
        nxia_puts("virtio-hostile: setup failed: -");
        nxia_put_u64((unsigned long)-(long)rc);
        nxia_putc('\n');
    }
    return rc;
}

static void one_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    q.desc[i].addr = addr;
    q.desc[i].len = len;
    q.desc[i].flags = flags;
    q.desc[i].next = next;
}

/* a single descriptor at index 0, made available and notified */
static int single(const char *name, uint64_t addr, uint32_t len)
{
    if (prepare(1) != 0)
        return -1;
    one_desc(0, addr, len, NXIA_VIRTQ_DESC_F_WRITE, 0);
    nxia_virtq_push(&q, 0);
    nxia_virtq_notify(&q);
    verdict(name, refused_soon());
    return 0;
}

static void case_chain_loop(void)
{
    if (prepare(1) != 0)
        return;
    for (unsigned i = 0; i < QSIZE; i++)
        one_desc(i, gpa(buf[i]), sizeof buf[i], NXIA_VIRTQ_DESC_F_WRITE | NXIA_VIRTQ_DESC_F_NEXT,
                 (uint16_t)((i + 1) % QSIZE));
    nxia_virtq_push(&q, 0);
    nxia_virtq_notify(&q);
    verdict("descriptor chain loops (longer than the queue)", refused_soon());
}

static void case_avail_jump(void)
{
    if (prepare(1) != 0)
        return;
    one_desc(0, gpa(buf[0]), sizeof buf[0], NXIA_VIRTQ_DESC_F_WRITE, 0);
    for (unsigned i = 0; i < QSIZE; i++)
        q.avail.ring[i] = 0;
    nxia_mfence();
    q.avail_idx = (uint16_t)(QSIZE + 5);
    ((volatile struct nxia_virtq_avail *)&q.avail)->idx = q.avail_idx;
    nxia_virtq_notify(&q);
    verdict("avail idx jumps by queue size + 5", refused_soon());
}

static void case_write_then_read(void)
{
    if (prepare(1) != 0)
        return;
    one_desc(0, gpa(buf[0]), sizeof buf[0], NXIA_VIRTQ_DESC_F_WRITE | NXIA_VIRTQ_DESC_F_NEXT, 1);
    one_desc(1, gpa(buf[1]), sizeof buf[1], 0, 0);
    nxia_virtq_push(&q, 0);
    nxia_virtq_notify(&q);
    verdict("readable descriptor after a writable one", refused_soon());
}

/* raw queue programming: bad geometry; refused if QueueReady reads 0 or NEEDS_RESET after notify */
static void case_geometry(const char *name, unsigned num, uint64_t desc)
{
    if (nxia_virtio_init(&dev, 0) != 0) {
        nxia_puts("virtio-hostile: init failed\n");
        return;
    }
    memset(&q, 0, sizeof q);
    q.dev = &dev;
    q.index = 0;
    q.size = num;
    uint32_t ready = nxia_virtq_program(&dev, 0, num, desc, gpa(&q.avail), gpa(&q.used));
    (void)nxia_virtio_driver_ok(&dev);
    one_desc(0, gpa(buf[0]), sizeof buf[0], NXIA_VIRTQ_DESC_F_WRITE, 0);
    nxia_virtq_push(&q, 0);
    nxia_virtq_notify(&q);
    verdict(name, ready == 0 || refused_soon());
}

static void case_unoffered_feature(void)
{
    nxia_virtio_reset(&dev);
    nxia_virtio_write32(&dev, NXIA_VMMIO_STATUS, NXIA_VIRTIO_S_ACKNOWLEDGE);
    nxia_virtio_write32(&dev, NXIA_VMMIO_STATUS, NXIA_VIRTIO_S_ACKNOWLEDGE | NXIA_VIRTIO_S_DRIVER);
    nxia_virtio_write32(&dev, NXIA_VMMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t offered = nxia_virtio_read32(&dev, NXIA_VMMIO_DEVICE_FEATURES);
    nxia_virtio_write32(&dev, NXIA_VMMIO_DEVICE_FEATURES_SEL, 1);
    offered |= (uint64_t)nxia_virtio_read32(&dev, NXIA_VMMIO_DEVICE_FEATURES) << 32;
    uint64_t bad = 0;
    for (int b = 63; b >= 0 && !bad; b--)
        if (!(offered & (1ull << b)))
            bad = 1ull << b;
    uint64_t f = NXIA_VIRTIO_F_VERSION_1 | bad;
    nxia_virtio_write32(&dev, NXIA_VMMIO_DRIVER_FEATURES_SEL, 0);
    nxia_virtio_write32(&dev, NXIA_VMMIO_DRIVER_FEATURES, (uint32_t)f);
    nxia_virtio_write32(&dev, NXIA_VMMIO_DRIVER_FEATURES_SEL, 1);
    nxia_virtio_write32(&dev, NXIA_VMMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
    nxia_virtio_write32(&dev, NXIA_VMMIO_STATUS,
                        NXIA_VIRTIO_S_ACKNOWLEDGE | NXIA_VIRTIO_S_DRIVER | NXIA_VIRTIO_S_FEATURES_OK);
    verdict("feature the device never offered", !(nxia_virtio_status(&dev) & NXIA_VIRTIO_S_FEATURES_OK));
}

static void case_notify_early(void)
{
    if (prepare(0) != 0)
        return;
    one_desc(0, gpa(buf[0]), sizeof buf[0], NXIA_VIRTQ_DESC_F_WRITE, 0);
    nxia_virtq_push(&q, 0);
    nxia_virtq_notify(&q);
    verdict("notify before DRIVER_OK", refused_soon());
}

static int control(void)
{
    uint32_t len = 0;

    if (prepare(1) != 0)
        return 0;
    memset(buf[0], 0, sizeof buf[0]);
    struct nxia_virtq_buf b = NXIA_VIRTQ_BUF(buf[0], sizeof buf[0], 1);
    int rc = nxia_virtq_submit(&q, &b, 1);
    if (rc >= 0)
        rc = nxia_virtq_wait(&q, &len, 10000000);
    int ok = rc == 0 && len == sizeof buf[0] && !needs_reset();
    nxia_puts(ok ? "virtio-hostile: control: a good request still works\n"
                 : "virtio-hostile: control: FAILED\n");
    return ok;
}

int main(const struct nxia_boot *boot)
{
    (void)boot;
    if (nxia_virtio_find(NXIA_VIRTIO_ID_RNG, &dev) != 0) {
        nxia_puts("virtio-hostile: no rng device\n");
        return 10;
    }
    single("descriptor address outside RAM", FAR_AWAY, 64);
    /* addr + len wraps to 0x1000: a naive "end <= ram_size" check passes */
    single("descriptor length overflows", 0xfffffffffffff000ull, 0x2000);
    case_chain_loop();
    case_avail_jump();
    case_geometry("QueueNum not a power of two (3)", 3, gpa(q.desc));
    case_write_then_read();
    case_unoffered_feature();
    case_notify_early();
    case_geometry("descriptor table outside RAM", QSIZE, FAR_AWAY);

    nxia_puts("virtio-hostile: ");
    nxia_put_u64(refused);
    nxia_puts(" of ");
    nxia_put_u64(total);
    nxia_puts(" refused\n");
    int ok = control();
    return refused == total && total == 9 && ok ? 0 : 1;
}
