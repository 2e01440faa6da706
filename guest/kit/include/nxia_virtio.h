/*
 * nxia_virtio.h - a small, polling virtio 1.x driver for NXIA micro-VM
 * guests: the virtio-mmio (version 2) transport and split virtqueues.
 *
 * Devices are found through boot->mmio_base[0 .. mmio_count) (guest ABI,
 * boot block offset 120). Everything is identity mapped, so a guest-physical
 * address is the pointer's value. No interrupts: the driver notifies a queue
 * (one MMIO exit, which the VMM handles synchronously) and polls the used
 * ring. Guest-only (NXIA_GUEST).
 */
#ifndef NXIA_VIRTIO_H
#define NXIA_VIRTIO_H

#include "nxia.h"

/* ---- virtio-mmio registers (offsets in a device window) ---------------- */

#define NXIA_VIRTIO_MAGIC                0x74726976u /* "virt" */
#define NXIA_VIRTIO_MMIO_VERSION         2u

#define NXIA_VMMIO_MAGIC_VALUE           0x000
#define NXIA_VMMIO_VERSION               0x004
#define NXIA_VMMIO_DEVICE_ID             0x008
#define NXIA_VMMIO_VENDOR_ID             0x00c
#define NXIA_VMMIO_DEVICE_FEATURES       0x010
#define NXIA_VMMIO_DEVICE_FEATURES_SEL   0x014
#define NXIA_VMMIO_DRIVER_FEATURES       0x020
#define NXIA_VMMIO_DRIVER_FEATURES_SEL   0x024
#define NXIA_VMMIO_QUEUE_SEL             0x030
#define NXIA_VMMIO_QUEUE_NUM_MAX         0x034
#define NXIA_VMMIO_QUEUE_NUM             0x038
#define NXIA_VMMIO_QUEUE_READY           0x044
#define NXIA_VMMIO_QUEUE_NOTIFY          0x050
#define NXIA_VMMIO_INTERRUPT_STATUS      0x060
#define NXIA_VMMIO_INTERRUPT_ACK         0x064
#define NXIA_VMMIO_STATUS                0x070
#define NXIA_VMMIO_QUEUE_DESC_LOW        0x080
#define NXIA_VMMIO_QUEUE_DESC_HIGH       0x084
#define NXIA_VMMIO_QUEUE_DRIVER_LOW      0x090
#define NXIA_VMMIO_QUEUE_DRIVER_HIGH     0x094
#define NXIA_VMMIO_QUEUE_DEVICE_LOW      0x0a0
#define NXIA_VMMIO_QUEUE_DEVICE_HIGH     0x0a4
#define NXIA_VMMIO_CONFIG_GENERATION     0x0fc
#define NXIA_VMMIO_CONFIG                0x100

/* device status bits */
#define NXIA_VIRTIO_S_ACKNOWLEDGE        0x01u
#define NXIA_VIRTIO_S_DRIVER             0x02u
#define NXIA_VIRTIO_S_DRIVER_OK          0x04u
#define NXIA_VIRTIO_S_FEATURES_OK        0x08u
#define NXIA_VIRTIO_S_NEEDS_RESET        0x40u
#define NXIA_VIRTIO_S_FAILED             0x80u

/* device ids */
#define NXIA_VIRTIO_ID_NET               1u
#define NXIA_VIRTIO_ID_BLOCK             2u
#define NXIA_VIRTIO_ID_CONSOLE           3u
#define NXIA_VIRTIO_ID_RNG               4u

/* feature bits */
#define NXIA_VIRTIO_F_VERSION_1          (1ull << 32)

/* return codes (all negative) */
#define NXIA_VIRTIO_OK                   0
#define NXIA_VIRTIO_ETIMEDOUT            (-1)  /* nxia_virtq_wait: nothing used in max_polls */
#define NXIA_VIRTIO_ENODEV               (-2)  /* no such device in the boot block's table */
#define NXIA_VIRTIO_EFEATURES            (-3)  /* no VERSION_1, or FEATURES_OK did not stick */
#define NXIA_VIRTIO_EQUEUE               (-4)  /* queue absent (QueueNumMax 0), already ready, or refused */
#define NXIA_VIRTIO_EINVAL               (-5)  /* bad argument (size, order of buffers, ...) */
#define NXIA_VIRTIO_ENOSPC               (-6)  /* not enough free descriptors */
#define NXIA_VIRTIO_ERESET               (-7)  /* the device set DEVICE_NEEDS_RESET */
#define NXIA_VIRTIO_EIO                  (-8)  /* the device returned a bad used element */

/* ---- split virtqueue --------------------------------------------------- */

#define NXIA_VIRTQ_MAX                   16u   /* ring entries per queue (static storage) */

#define NXIA_VIRTQ_DESC_F_NEXT           1u
#define NXIA_VIRTQ_DESC_F_WRITE          2u
#define NXIA_VIRTQ_DESC_F_INDIRECT       4u

struct nxia_virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct nxia_virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[NXIA_VIRTQ_MAX];
    uint16_t used_event;
};

struct nxia_virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct nxia_virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct nxia_virtq_used_elem ring[NXIA_VIRTQ_MAX];
    uint16_t avail_event;
};

_Static_assert(sizeof(struct nxia_virtq_desc) == 16, "virtq desc");
_Static_assert(offsetof(struct nxia_virtq_used, ring) == 4, "virtq used ring");

struct nxia_virtio {
    uintptr_t base;          /* the device's MMIO window */
    uint32_t device_id;
    uint32_t slot;           /* index in boot->mmio_base */
    uint64_t offered;        /* DeviceFeatures, after nxia_virtio_init */
    uint64_t features;       /* negotiated, after nxia_virtio_init */
};

/*
 * One queue: the rings live in the struct itself, so a guest declares it
 * static (.bss) and the rings are in guest RAM. Only the first `size`
 * entries are used; the addresses given to the device are those of the
 * arrays below (descriptor table 16-aligned, avail 2, used 4).
 */
struct nxia_virtq {
    struct nxia_virtq_desc desc[NXIA_VIRTQ_MAX] __attribute__((aligned(16)));
    struct nxia_virtq_avail avail __attribute__((aligned(16)));
    struct nxia_virtq_used used __attribute__((aligned(16)));
    struct nxia_virtio *dev;
    unsigned index;          /* queue number on the device */
    unsigned size;           /* QueueNum */
    uint16_t avail_idx;      /* driver's copy of avail.idx */
    uint16_t last_used;      /* next used.idx to consume */
    uint16_t free_head;      /* free descriptor list (linked through .next) */
    uint16_t num_free;
};

/* One buffer of a request. */
struct nxia_virtq_buf {
    uint64_t addr;           /* guest-physical (= virtual) */
    uint32_t len;
    uint32_t writable;       /* nonzero: device writes it */
};

#define NXIA_VIRTQ_BUF(ptr, length, wr) \
    ((struct nxia_virtq_buf){ (uint64_t)(uintptr_t)(ptr), (uint32_t)(length), (uint32_t)(wr) })

/* ---- MMIO accessors (registers are 32-bit; config may be 8/16/32) ------ */

static inline void nxia_barrier(void)
{
    __asm__ volatile("" ::: "memory");
}

static inline void nxia_mfence(void)
{
    __asm__ volatile("mfence" ::: "memory");
}

static inline uint32_t nxia_virtio_read32(const struct nxia_virtio *dev, unsigned off)
{
    return *(volatile uint32_t *)(dev->base + off);
}

static inline void nxia_virtio_write32(const struct nxia_virtio *dev, unsigned off, uint32_t v)
{
    *(volatile uint32_t *)(dev->base + off) = v;
}

static inline uint8_t nxia_virtio_config8(const struct nxia_virtio *dev, unsigned off)
{
    return *(volatile uint8_t *)(dev->base + NXIA_VMMIO_CONFIG + off);
}

static inline uint16_t nxia_virtio_config16(const struct nxia_virtio *dev, unsigned off)
{
    return *(volatile uint16_t *)(dev->base + NXIA_VMMIO_CONFIG + off);
}

static inline uint32_t nxia_virtio_config32(const struct nxia_virtio *dev, unsigned off)
{
    return *(volatile uint32_t *)(dev->base + NXIA_VMMIO_CONFIG + off);
}

/* A 64-bit config field as two 32-bit reads, retried while ConfigGeneration changes. */
uint64_t nxia_virtio_config64(const struct nxia_virtio *dev, unsigned off);

/* ---- driver API ----------------------------------------------------------- */

/*
 * Find the first virtio-mmio device (MagicValue "virt", Version 2) with
 * DeviceID `device_id` among boot->mmio_base[0 .. mmio_count). Windows
 * outside the ABI's MMIO window are skipped. Returns 0 or ENODEV.
 */
int nxia_virtio_find(uint32_t device_id, struct nxia_virtio *dev);

/*
 * Reset (Status = 0), ACKNOWLEDGE|DRIVER, read DeviceFeatures (words 0, 1),
 * write DriverFeatures = (wanted & offered) | VERSION_1, set FEATURES_OK and
 * check that it stuck. On failure sets FAILED and returns EFEATURES.
 */
int nxia_virtio_init(struct nxia_virtio *dev, uint64_t wanted_features);

/* Status = 0; the device forgets features and queues. */
void nxia_virtio_reset(struct nxia_virtio *dev);

/*
 * Set up queue `index` with `size` entries (a power of two, at most
 * NXIA_VIRTQ_MAX and QueueNumMax), rings in *q. Returns 0, EINVAL, EQUEUE
 * (absent, already ready, or QueueReady did not read back 1), or ERESET.
 */
int nxia_virtq_setup(struct nxia_virtio *dev, unsigned index, struct nxia_virtq *q, unsigned size);

/*
 * Low level: QueueSel = index, QueueNum = num, the three ring addresses,
 * QueueReady = 1; returns what QueueReady reads back (1: accepted). No
 * checks: for tests that hand the device bad geometry.
 */
uint32_t nxia_virtq_program(struct nxia_virtio *dev, unsigned index, unsigned num,
                            uint64_t desc, uint64_t driver, uint64_t device);

/* Set DRIVER_OK. Returns 0, or ERESET / EFEATURES if the device refused. */
int nxia_virtio_driver_ok(struct nxia_virtio *dev);

/* The Status register. */
uint32_t nxia_virtio_status(const struct nxia_virtio *dev);

/*
 * Chain n buffers (all readable ones must come before the writable ones,
 * else EINVAL), make the chain available and notify the device. Returns the
 * head descriptor index (>= 0), or ENOSPC / EINVAL.
 */
int nxia_virtq_submit(struct nxia_virtq *q, const struct nxia_virtq_buf *bufs, unsigned n);

/*
 * Poll the used ring up to max_polls times. Returns the used element's head
 * (its chain's descriptors are freed) with its written length in *len (may
 * be NULL), ETIMEDOUT if nothing came, EIO if the element names no chain.
 */
int nxia_virtq_wait(struct nxia_virtq *q, uint32_t *len, unsigned long max_polls);

/* Low level: put `head` in the avail ring (ring entry, barrier, idx + 1). No notify. */
void nxia_virtq_push(struct nxia_virtq *q, uint16_t head);

/* Low level: QueueNotify = q->index (one MMIO exit). */
void nxia_virtq_notify(struct nxia_virtq *q);

/* ---- virtio-blk (virtio 1.x, 5.2) ---- */

#define NXIA_BLK_F_RO       (1ull << 5)
#define NXIA_BLK_F_FLUSH    (1ull << 9)
#define NXIA_BLK_T_IN       0u
#define NXIA_BLK_T_OUT      1u
#define NXIA_BLK_T_FLUSH    4u
#define NXIA_BLK_T_GET_ID   8u
#define NXIA_BLK_S_OK       0u
#define NXIA_BLK_S_IOERR    1u
#define NXIA_BLK_S_UNSUPP   2u
#define NXIA_BLK_SECTOR     512u

/* The readable header every request starts with; a writable status byte ends it. */
struct nxia_blk_req_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
_Static_assert(sizeof(struct nxia_blk_req_hdr) == 16, "blk header");

#endif /* NXIA_VIRTIO_H */
