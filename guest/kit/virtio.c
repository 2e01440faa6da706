/* virtio.c - polling virtio-mmio (version 2) driver with split virtqueues. */
#include "nxia_virtio.h"

uint64_t nxia_virtio_config64(const struct nxia_virtio *dev, unsigned off)
{
    uint32_t gen, lo, hi;

    do {
        gen = nxia_virtio_read32(dev, NXIA_VMMIO_CONFIG_GENERATION);
        lo = nxia_virtio_config32(dev, off);
        hi = nxia_virtio_config32(dev, off + 4);
    } while (gen != nxia_virtio_read32(dev, NXIA_VMMIO_CONFIG_GENERATION));
    return (uint64_t)hi << 32 | lo;
}

int nxia_virtio_find(uint32_t device_id, struct nxia_virtio *dev)
{
    const struct nxia_boot *boot = nxia_boot();
    uint32_t n = boot->mmio_count < NXIA_MMIO_MAX ? boot->mmio_count : NXIA_MMIO_MAX;

    for (uint32_t i = 0; i < n; i++) {
        uint64_t base = boot->mmio_base[i];
        /* touch nothing outside the mapped window: an unclaimed access stops the VM */
        if (base < NXIA_MMIO_BASE || base > NXIA_MMIO_BASE + NXIA_MMIO_SIZE - NXIA_MMIO_WINDOW ||
            base % NXIA_MMIO_WINDOW)
            continue;
        struct nxia_virtio d = { .base = (uintptr_t)base, .slot = i };
        if (nxia_virtio_read32(&d, NXIA_VMMIO_MAGIC_VALUE) != NXIA_VIRTIO_MAGIC ||
            nxia_virtio_read32(&d, NXIA_VMMIO_VERSION) != NXIA_VIRTIO_MMIO_VERSION)
            continue;
        d.device_id = nxia_virtio_read32(&d, NXIA_VMMIO_DEVICE_ID);
        if (d.device_id == device_id) {
            *dev = d;
            return NXIA_VIRTIO_OK;
        }
    }
    return NXIA_VIRTIO_ENODEV;
}

uint32_t nxia_virtio_status(const struct nxia_virtio *dev)
{
    return nxia_virtio_read32(dev, NXIA_VMMIO_STATUS);
}

void nxia_virtio_reset(struct nxia_virtio *dev)
{
    nxia_virtio_write32(dev, NXIA_VMMIO_STATUS, 0);
    /* the reset is done when Status reads 0; the VMM resets synchronously */
    for (int i = 0; i < 1000 && nxia_virtio_status(dev) != 0; i++)
        __asm__ volatile("pause");
    dev->features = 0;
}

int nxia_virtio_init(struct nxia_virtio *dev, uint64_t wanted_features)
{
    uint32_t st;

    nxia_virtio_reset(dev);
    st = NXIA_VIRTIO_S_ACKNOWLEDGE;
    nxia_virtio_write32(dev, NXIA_VMMIO_STATUS, st);
    st |= NXIA_VIRTIO_S_DRIVER;
    nxia_virtio_write32(dev, NXIA_VMMIO_STATUS, st);

    nxia_virtio_write32(dev, NXIA_VMMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t lo = nxia_virtio_read32(dev, NXIA_VMMIO_DEVICE_FEATURES);
    nxia_virtio_write32(dev, NXIA_VMMIO_DEVICE_FEATURES_SEL, 1);
    uint64_t hi = nxia_virtio_read32(dev, NXIA_VMMIO_DEVICE_FEATURES);
    dev->offered = hi << 32 | lo;
    if (!(dev->offered & NXIA_VIRTIO_F_VERSION_1))
        goto fail;

    uint64_t f = (wanted_features & dev->offered) | NXIA_VIRTIO_F_VERSION_1;
    nxia_virtio_write32(dev, NXIA_VMMIO_DRIVER_FEATURES_SEL, 0);
    nxia_virtio_write32(dev, NXIA_VMMIO_DRIVER_FEATURES, (uint32_t)f);
    nxia_virtio_write32(dev, NXIA_VMMIO_DRIVER_FEATURES_SEL, 1);
    nxia_virtio_write32(dev, NXIA_VMMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));

    st |= NXIA_VIRTIO_S_FEATURES_OK;
    nxia_virtio_write32(dev, NXIA_VMMIO_STATUS, st);
    if (!(nxia_virtio_status(dev) & NXIA_VIRTIO_S_FEATURES_OK))
        goto fail;
    dev->features = f;
    return NXIA_VIRTIO_OK;

fail:
    nxia_virtio_write32(dev, NXIA_VMMIO_STATUS, st | NXIA_VIRTIO_S_FAILED);
    return NXIA_VIRTIO_EFEATURES;
}

uint32_t nxia_virtq_program(struct nxia_virtio *dev, unsigned index, unsigned num,
                            uint64_t desc, uint64_t driver, uint64_t device)
{
    nxia_virtio_write32(dev, NXIA_VMMIO_QUEUE_SEL, index);
    nxia_virtio_write32(dev, NXIA_VMMIO_QUEUE_NUM, num);
    nxia_virtio_write32(dev, NXIA_VMMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    nxia_virtio_write32(dev, NXIA_VMMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    nxia_virtio_write32(dev, NXIA_VMMIO_QUEUE_DRIVER_LOW, (uint32_t)driver);
    nxia_virtio_write32(dev, NXIA_VMMIO_QUEUE_DRIVER_HIGH, (uint32_t)(driver >> 32));
    nxia_virtio_write32(dev, NXIA_VMMIO_QUEUE_DEVICE_LOW, (uint32_t)device);
    nxia_virtio_write32(dev, NXIA_VMMIO_QUEUE_DEVICE_HIGH, (uint32_t)(device >> 32));
    nxia_mfence(); /* the rings are initialised before the device may look at them */
    nxia_virtio_write32(dev, NXIA_VMMIO_QUEUE_READY, 1);
    return nxia_virtio_read32(dev, NXIA_VMMIO_QUEUE_READY);
}

int nxia_virtq_setup(struct nxia_virtio *dev, unsigned index, struct nxia_virtq *q, unsigned size)
{
    if (size == 0 || size > NXIA_VIRTQ_MAX || (size & (size - 1)))
        return NXIA_VIRTIO_EINVAL;
    nxia_virtio_write32(dev, NXIA_VMMIO_QUEUE_SEL, index);
    if (nxia_virtio_read32(dev, NXIA_VMMIO_QUEUE_READY) != 0)
        return NXIA_VIRTIO_EQUEUE;
    uint32_t max = nxia_virtio_read32(dev, NXIA_VMMIO_QUEUE_NUM_MAX);
    if (max == 0)
        return NXIA_VIRTIO_EQUEUE;
    if (size > max)
        return NXIA_VIRTIO_EINVAL;

    memset(q, 0, sizeof *q);
    q->dev = dev;
    q->index = index;
    q->size = size;
    for (unsigned i = 0; i < size; i++)
        q->desc[i].next = (uint16_t)(i + 1 < size ? i + 1 : 0);
    q->free_head = 0;
    q->num_free = (uint16_t)size;

    if (nxia_virtq_program(dev, index, size, (uint64_t)(uintptr_t)q->desc,
                           (uint64_t)(uintptr_t)&q->avail, (uint64_t)(uintptr_t)&q->used) != 1)
        return (nxia_virtio_status(dev) & NXIA_VIRTIO_S_NEEDS_RESET) ? NXIA_VIRTIO_ERESET
                                                                     : NXIA_VIRTIO_EQUEUE;
    return NXIA_VIRTIO_OK;
}

int nxia_virtio_driver_ok(struct nxia_virtio *dev)
{
    uint32_t st = nxia_virtio_status(dev);

    if (!(st & NXIA_VIRTIO_S_FEATURES_OK))
        return NXIA_VIRTIO_EFEATURES;
    nxia_virtio_write32(dev, NXIA_VMMIO_STATUS, st | NXIA_VIRTIO_S_DRIVER_OK);
    st = nxia_virtio_status(dev);
    if (st & NXIA_VIRTIO_S_NEEDS_RESET)
        return NXIA_VIRTIO_ERESET;
    return (st & NXIA_VIRTIO_S_DRIVER_OK) ? NXIA_VIRTIO_OK : NXIA_VIRTIO_EFEATURES;
}

void nxia_virtq_push(struct nxia_virtq *q, uint16_t head)
{
    volatile struct nxia_virtq_avail *av = &q->avail;

    av->ring[q->avail_idx % q->size] = head;
    nxia_mfence(); /* the ring entry (and the descriptors) before the index */
    q->avail_idx++;
    av->idx = q->avail_idx;
}

void nxia_virtq_notify(struct nxia_virtq *q)
{
    nxia_mfence(); /* the index before the notify */
    nxia_virtio_write32(q->dev, NXIA_VMMIO_QUEUE_NOTIFY, q->index);
}

int nxia_virtq_submit(struct nxia_virtq *q, const struct nxia_virtq_buf *bufs, unsigned n)
{
    if (n == 0)
        return NXIA_VIRTIO_EINVAL;
    for (unsigned i = 1; i < n; i++)
        if (bufs[i - 1].writable && !bufs[i].writable)
            return NXIA_VIRTIO_EINVAL; /* readable after writable */
    if (n > q->num_free)
        return NXIA_VIRTIO_ENOSPC;

    uint16_t head = q->free_head, idx = head;
    for (unsigned i = 0; i < n; i++) {
        struct nxia_virtq_desc *d = &q->desc[idx];
        d->addr = bufs[i].addr;
        d->len = bufs[i].len;
        d->flags = (uint16_t)((bufs[i].writable ? NXIA_VIRTQ_DESC_F_WRITE : 0) |
                              (i + 1 < n ? NXIA_VIRTQ_DESC_F_NEXT : 0));
        idx = d->next; /* free list link; kept as the chain link while NEXT is set */
    }
    q->free_head = idx;
    q->num_free = (uint16_t)(q->num_free - n);

    nxia_virtq_push(q, head);
    nxia_virtq_notify(q);
    return head;
}

int nxia_virtq_wait(struct nxia_virtq *q, uint32_t *len, unsigned long max_polls)
{
    volatile struct nxia_virtq_used *used = &q->used;

    for (unsigned long i = 0; used->idx == q->last_used; i++) {
        if (i >= max_polls)
            return NXIA_VIRTIO_ETIMEDOUT;
        __asm__ volatile("pause" ::: "memory");
    }
    nxia_barrier(); /* x86 keeps loads in order; the compiler must too */
    uint32_t id = used->ring[q->last_used % q->size].id;
    uint32_t l = used->ring[q->last_used % q->size].len;
    q->last_used++;
    if (id >= q->size)
        return NXIA_VIRTIO_EIO;

    /* give the chain back to the free list */
    uint16_t tail = (uint16_t)id;
    unsigned count = 1;
    while ((q->desc[tail].flags & NXIA_VIRTQ_DESC_F_NEXT) && count < q->size) {
        tail = q->desc[tail].next;
        count++;
    }
    q->desc[tail].flags = 0;
    q->desc[tail].next = q->free_head;
    q->free_head = (uint16_t)id;
    q->num_free = (uint16_t)(q->num_free + count);
    if (len)
        *len = l;
    return (int)id;
}
