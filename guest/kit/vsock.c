/* vsock.c - polling virtio-vsock driver: stream connections with credit flow control. */
#include "nxia_vsock.h"

enum { C_FREE, C_CONNECTING, C_ESTABLISHED, C_RESET, C_CLOSING };

struct conn {
    uint32_t state;
    uint32_t local_port, peer_port;
    uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;   /* credit the host gives us */
    uint32_t fwd_cnt, fwd_sent;                      /* bytes the application took; last told */
    uint32_t head, tail;                             /* receive ring, free-running */
    uint32_t peer_shut;                              /* the host's SHUTDOWN flags */
    uint32_t accept_pending;
    uint8_t buf[NXIA_VSOCK_BUF];
};

#define RX_SIZE (sizeof(struct nxia_vsock_hdr) + NXIA_VSOCK_RX_PAYLOAD)
#define VIRTQ_USED_F_NO_NOTIFY 1u

static struct nxia_virtio dev;
static struct nxia_virtq rxq, txq, evq;
static uint8_t rxbuf[NXIA_VSOCK_RX_BUFS][RX_SIZE] __attribute__((aligned(64)));
static uint8_t evbuf[4][8] __attribute__((aligned(8)));
static struct nxia_vsock_hdr txhdr __attribute__((aligned(16)));
static struct conn conns[NXIA_VSOCK_CONNS];
static uint64_t guest_cid;
static uint32_t listen_port;
static uint32_t next_port = 49152;
static int broken;

uint64_t nxia_vsock_cid(void)
{
    return guest_cid;
}

int nxia_vsock_init(void)
{
    int rc;

    if ((rc = nxia_virtio_find(NXIA_VIRTIO_ID_VSOCK, &dev)) != 0)
        return rc;
    if ((rc = nxia_virtio_init(&dev, NXIA_VSOCK_F_STREAM)) != 0)
        return rc;
    guest_cid = nxia_virtio_config64(&dev, 0);
    if ((rc = nxia_virtq_setup(&dev, 0, &rxq, 16)) != 0 || (rc = nxia_virtq_setup(&dev, 1, &txq, 16)) != 0 ||
        (rc = nxia_virtq_setup(&dev, 2, &evq, 4)) != 0)
        return rc;
    if ((rc = nxia_virtio_driver_ok(&dev)) != 0)
        return rc;
    /* Receive buffers: descriptor i is always rxbuf[i], reposted as soon as it is read. */
    for (unsigned i = 0; i < NXIA_VSOCK_RX_BUFS; i++) {
        rxq.desc[i].addr = (uint64_t)(uintptr_t)rxbuf[i];
        rxq.desc[i].len = RX_SIZE;
        rxq.desc[i].flags = NXIA_VIRTQ_DESC_F_WRITE;
        nxia_virtq_push(&rxq, (uint16_t)i);
    }
    for (unsigned i = 0; i < 4; i++) {
        struct nxia_virtq_buf b = NXIA_VIRTQ_BUF(evbuf[i], sizeof evbuf[i], 1);
        if ((rc = nxia_virtq_submit(&evq, &b, 1)) < 0)
            return rc;
    }
    nxia_virtq_notify(&rxq);
    return (nxia_virtio_status(&dev) & NXIA_VIRTIO_S_NEEDS_RESET) ? NXIA_VIRTIO_ERESET : NXIA_VIRTIO_OK;
}

/* One packet on the transmit queue; the device serves it during the notify. */
static int xmit(struct conn *c, uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t flags,
                const void *data, uint32_t len)
{
    struct nxia_virtq_buf b[2];
    uint32_t used;
    int rc;

    txhdr.src_cid = guest_cid;
    txhdr.dst_cid = NXIA_VSOCK_HOST_CID;
    txhdr.src_port = src_port;
    txhdr.dst_port = dst_port;
    txhdr.len = len;
    txhdr.type = 1; /* stream */
    txhdr.op = op;
    txhdr.flags = flags;
    txhdr.buf_alloc = NXIA_VSOCK_BUF;
    txhdr.fwd_cnt = c ? c->fwd_cnt : 0;
    if (c)
        c->fwd_sent = c->fwd_cnt;
    b[0] = NXIA_VIRTQ_BUF(&txhdr, sizeof txhdr, 0);
    b[1] = NXIA_VIRTQ_BUF(data, len, 0);
    if ((rc = nxia_virtq_submit(&txq, b, len ? 2 : 1)) < 0)
        return rc;
    rc = nxia_virtq_wait(&txq, &used, 100000000ul);
    if (rc < 0) {
        broken = 1;
        return rc;
    }
    return 0;
}

static struct conn *find(uint32_t local_port, uint32_t peer_port)
{
    for (unsigned i = 0; i < NXIA_VSOCK_CONNS; i++)
        if (conns[i].state != C_FREE && conns[i].local_port == local_port && conns[i].peer_port == peer_port)
            return &conns[i];
    return 0;
}

static struct conn *slot(void)
{
    for (unsigned i = 0; i < NXIA_VSOCK_CONNS; i++)
        if (conns[i].state == C_FREE) {
            memset(&conns[i], 0, offsetof(struct conn, buf));
            return &conns[i];
        }
    return 0;
}

static void packet(const struct nxia_vsock_hdr *h, const uint8_t *data)
{
    if (h->dst_cid != guest_cid || h->src_cid != NXIA_VSOCK_HOST_CID || h->type != 1)
        return;
    struct conn *c = find(h->dst_port, h->src_port);

    if (h->op == NXIA_VSOCK_OP_REQUEST) {
        if (c || listen_port == 0 || h->dst_port != listen_port || !(c = slot())) {
            xmit(0, h->dst_port, h->src_port, NXIA_VSOCK_OP_RST, 0, 0, 0);
            return;
        }
        c->local_port = h->dst_port;
        c->peer_port = h->src_port;
        c->peer_buf_alloc = h->buf_alloc;
        c->peer_fwd_cnt = h->fwd_cnt;
        c->state = C_ESTABLISHED;
        c->accept_pending = 1;
        xmit(c, c->local_port, c->peer_port, NXIA_VSOCK_OP_RESPONSE, 0, 0, 0);
        return;
    }
    if (!c) {
        if (h->op != NXIA_VSOCK_OP_RST)
            xmit(0, h->dst_port, h->src_port, NXIA_VSOCK_OP_RST, 0, 0, 0);
        return;
    }
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    switch (h->op) {
    case NXIA_VSOCK_OP_RESPONSE:
        if (c->state == C_CONNECTING)
            c->state = C_ESTABLISHED;
        break;
    case NXIA_VSOCK_OP_RST:
        c->state = c->state == C_CLOSING ? C_FREE : C_RESET;
        break;
    case NXIA_VSOCK_OP_SHUTDOWN:
        c->peer_shut |= h->flags & 3u;
        break;
    case NXIA_VSOCK_OP_RW: {
        uint32_t len = h->len;
        /* the host keeps to our credit; if it did not, the excess has nowhere to go */
        if (len > NXIA_VSOCK_RX_PAYLOAD || len > NXIA_VSOCK_BUF - (c->tail - c->head)) {
            c->state = C_RESET;
            xmit(0, c->local_port, c->peer_port, NXIA_VSOCK_OP_RST, 0, 0, 0);
            break;
        }
        for (uint32_t i = 0; i < len; i++)
            c->buf[(c->tail + i) & (NXIA_VSOCK_BUF - 1)] = data[i];
        c->tail += len;
        break;
    }
    case NXIA_VSOCK_OP_CREDIT_REQUEST:
        xmit(c, c->local_port, c->peer_port, NXIA_VSOCK_OP_CREDIT_UPDATE, 0, 0, 0);
        break;
    default:
        break; /* CREDIT_UPDATE: the header said it */
    }
}

void nxia_vsock_poll(void)
{
    volatile struct nxia_virtq_used *used = &rxq.used;
    int got = 0;

    while (!broken && used->idx != rxq.last_used) {
        nxia_barrier();
        uint32_t id = used->ring[rxq.last_used % rxq.size].id;
        uint32_t len = used->ring[rxq.last_used % rxq.size].len;
        rxq.last_used++;
        if (id >= NXIA_VSOCK_RX_BUFS) {
            broken = 1;
            return;
        }
        const struct nxia_vsock_hdr *h = (const struct nxia_vsock_hdr *)rxbuf[id];
        if (len >= sizeof *h && h->len <= len - sizeof *h)
            packet(h, rxbuf[id] + sizeof *h);
        nxia_virtq_push(&rxq, (uint16_t)id);
        got = 1;
    }
    /* The device asks for a notify (an exit) only while it has packets waiting for buffers. */
    nxia_mfence();
    if (got && !(used->flags & VIRTQ_USED_F_NO_NOTIFY))
        nxia_virtq_notify(&rxq);
}

static struct conn *get(int id)
{
    return id >= 0 && (unsigned)id < NXIA_VSOCK_CONNS && conns[id].state != C_FREE ? &conns[id] : 0;
}

int nxia_vsock_connect(uint32_t port, unsigned long max_polls)
{
    struct conn *c = slot();
    int rc;

    if (!c)
        return NXIA_VSOCK_EBUSY;
    c->local_port = next_port++;
    c->peer_port = port;
    c->state = C_CONNECTING;
    if ((rc = xmit(c, c->local_port, port, NXIA_VSOCK_OP_REQUEST, 0, 0, 0)) < 0) {
        c->state = C_FREE;
        return rc;
    }
    for (unsigned long i = 0; c->state == C_CONNECTING; i++) {
        if (i >= max_polls) {
            xmit(0, c->local_port, port, NXIA_VSOCK_OP_RST, 0, 0, 0);
            c->state = C_FREE;
            return NXIA_VIRTIO_ETIMEDOUT;
        }
        nxia_vsock_poll();
        __asm__ volatile("pause" ::: "memory");
    }
    if (c->state != C_ESTABLISHED) {
        c->state = C_FREE;
        return NXIA_VSOCK_ECONNREFUSED;
    }
    return (int)(c - conns);
}

void nxia_vsock_listen(uint32_t port)
{
    listen_port = port;
}

int nxia_vsock_accept(unsigned long max_polls)
{
    for (unsigned long i = 0; i <= max_polls; i++) {
        nxia_vsock_poll();
        for (unsigned k = 0; k < NXIA_VSOCK_CONNS; k++)
            if (conns[k].state != C_FREE && conns[k].accept_pending) {
                conns[k].accept_pending = 0;
                return (int)k;
            }
        __asm__ volatile("pause" ::: "memory");
    }
    return NXIA_VIRTIO_ETIMEDOUT;
}

long nxia_vsock_send(int id, const void *data, unsigned long len, unsigned long max_polls)
{
    struct conn *c = get(id);
    const uint8_t *p = data;
    unsigned long done = 0, polls = 0;
    int asked = 0;

    if (!c)
        return NXIA_VSOCK_EBADF;
    while (done < len) {
        nxia_vsock_poll();
        if (c->state != C_ESTABLISHED || (c->peer_shut & NXIA_VSOCK_SHUTDOWN_RCV))
            return NXIA_VSOCK_ECONNRESET;
        uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
        uint32_t credit = in_flight < c->peer_buf_alloc ? c->peer_buf_alloc - in_flight : 0;
        if (credit == 0) {
            if (!asked) {
                xmit(c, c->local_port, c->peer_port, NXIA_VSOCK_OP_CREDIT_REQUEST, 0, 0, 0);
                asked = 1;
            }
            if (++polls > max_polls)
                return NXIA_VIRTIO_ETIMEDOUT;
            __asm__ volatile("pause" ::: "memory");
            continue;
        }
        asked = 0;
        uint32_t n = (uint32_t)(len - done < 65536 ? len - done : 65536);
        if (n > credit)
            n = credit;
        int rc = xmit(c, c->local_port, c->peer_port, NXIA_VSOCK_OP_RW, 0, p + done, n);
        if (rc < 0)
            return rc;
        c->tx_cnt += n;
        done += n;
    }
    return (long)len;
}

long nxia_vsock_recv(int id, void *buf, unsigned long len, unsigned long max_polls)
{
    struct conn *c = get(id);
    uint8_t *p = buf;

    if (!c)
        return NXIA_VSOCK_EBADF;
    for (unsigned long i = 0; c->tail == c->head; i++) {
        if (c->peer_shut & NXIA_VSOCK_SHUTDOWN_SEND)
            return 0;
        if (c->state != C_ESTABLISHED)
            return NXIA_VSOCK_ECONNRESET;
        if (i >= max_polls)
            return NXIA_VIRTIO_ETIMEDOUT;
        nxia_vsock_poll();
        if (c->tail == c->head)
            __asm__ volatile("pause" ::: "memory");
    }
    uint32_t n = c->tail - c->head;
    if (n > len)
        n = (uint32_t)len;
    for (uint32_t i = 0; i < n; i++)
        p[i] = c->buf[(c->head + i) & (NXIA_VSOCK_BUF - 1)];
    c->head += n;
    c->fwd_cnt += n;
    /* tell the host about freed room before it runs out of credit */
    if (c->fwd_cnt - c->fwd_sent >= NXIA_VSOCK_BUF / 2)
        xmit(c, c->local_port, c->peer_port, NXIA_VSOCK_OP_CREDIT_UPDATE, 0, 0, 0);
    return (long)n;
}

int nxia_vsock_shutdown(int id)
{
    struct conn *c = get(id);

    if (!c)
        return NXIA_VSOCK_EBADF;
    return xmit(c, c->local_port, c->peer_port, NXIA_VSOCK_OP_SHUTDOWN, NXIA_VSOCK_SHUTDOWN_SEND, 0, 0);
}

int nxia_vsock_close(int id, unsigned long max_polls)
{
    struct conn *c = get(id);

    if (!c)
        return NXIA_VSOCK_EBADF;
    if (c->state == C_ESTABLISHED) {
        c->state = C_CLOSING;
        xmit(c, c->local_port, c->peer_port, NXIA_VSOCK_OP_SHUTDOWN,
             NXIA_VSOCK_SHUTDOWN_SEND | NXIA_VSOCK_SHUTDOWN_RCV, 0, 0);
        for (unsigned long i = 0; c->state == C_CLOSING && i < max_polls; i++) {
            nxia_vsock_poll();
            __asm__ volatile("pause" ::: "memory");
        }
    }
    c->state = C_FREE;
    return 0;
}
