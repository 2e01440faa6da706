/*
 * nxia_vsock.h - a minimal polling virtio-vsock driver (virtio 1.2, 5.10),
 * stream sockets only, for NXIA micro-VM guests. The host is CID 2.
 *
 * Single-threaded and interrupt-free like the rest of the kit: every call
 * polls the receive queue (nxia_vsock_poll), answers what needs answering
 * (RESPONSE to an accepted REQUEST, CREDIT_UPDATE to a CREDIT_REQUEST) and
 * files data into the connection's receive buffer. Flow control is the
 * spec's credit: each connection offers NXIA_VSOCK_BUF bytes (buf_alloc)
 * and never sends past the host's. Guest-only (NXIA_GUEST).
 */
#ifndef NXIA_VSOCK_H
#define NXIA_VSOCK_H

#include "nxia_virtio.h"

#define NXIA_VIRTIO_ID_VSOCK       19u
#define NXIA_VSOCK_F_STREAM        (1ull << 0)
#define NXIA_VSOCK_HOST_CID        2u

#define NXIA_VSOCK_OP_REQUEST        1u
#define NXIA_VSOCK_OP_RESPONSE       2u
#define NXIA_VSOCK_OP_RST            3u
#define NXIA_VSOCK_OP_SHUTDOWN       4u
#define NXIA_VSOCK_OP_RW             5u
#define NXIA_VSOCK_OP_CREDIT_UPDATE  6u
#define NXIA_VSOCK_OP_CREDIT_REQUEST 7u
#define NXIA_VSOCK_SHUTDOWN_RCV      1u
#define NXIA_VSOCK_SHUTDOWN_SEND     2u

#define NXIA_VSOCK_CONNS           2u          /* connections at once */
#define NXIA_VSOCK_BUF             65536u      /* receive buffer per connection (a power of two) */
#define NXIA_VSOCK_RX_BUFS         8u          /* receive-queue buffers posted */
#define NXIA_VSOCK_RX_PAYLOAD      4096u       /* payload bytes per receive-queue buffer */

/* return codes beyond NXIA_VIRTIO_* */
#define NXIA_VSOCK_ECONNREFUSED    (-20)       /* the host answered REQUEST with RST */
#define NXIA_VSOCK_ECONNRESET      (-21)       /* the host reset the connection */
#define NXIA_VSOCK_EBADF           (-22)       /* no such connection */
#define NXIA_VSOCK_EBUSY           (-23)       /* every connection slot is in use */

struct nxia_vsock_hdr {
    uint64_t src_cid;
    uint64_t dst_cid;
    uint32_t src_port;
    uint32_t dst_port;
    uint32_t len;
    uint16_t type;
    uint16_t op;
    uint32_t flags;
    uint32_t buf_alloc;
    uint32_t fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct nxia_vsock_hdr) == 44, "vsock header");

/* Find the device, negotiate, set up the three queues, post receive buffers. 0 or NXIA_VIRTIO_*. */
int nxia_vsock_init(void);

/* The guest's CID (config space guest_cid). */
uint64_t nxia_vsock_cid(void);

/* Serve the receive queue once: file packets, answer requests; never waits. */
void nxia_vsock_poll(void);

/* Connect to host port `port`; returns a connection id >= 0, ECONNREFUSED, ETIMEDOUT, EBUSY. */
int nxia_vsock_connect(uint32_t port, unsigned long max_polls);

/* Accept host connections to `port` (one listening port at a time). */
void nxia_vsock_listen(uint32_t port);

/* Wait for a host connection to the listening port; a connection id >= 0 or ETIMEDOUT. */
int nxia_vsock_accept(unsigned long max_polls);

/* Send all `len` bytes (waiting for credit); returns len, ECONNRESET or ETIMEDOUT. */
long nxia_vsock_send(int id, const void *data, unsigned long len, unsigned long max_polls);

/* Receive up to `len` bytes: > 0 bytes, 0 at the host's end of stream, ECONNRESET or ETIMEDOUT. */
long nxia_vsock_recv(int id, void *buf, unsigned long len, unsigned long max_polls);

/* Tell the host this side sends nothing more (SHUTDOWN SEND). */
int nxia_vsock_shutdown(int id);

/* Shut down both directions and wait (up to max_polls) for the host's RST; the slot is free after. */
int nxia_vsock_close(int id, unsigned long max_polls);

#endif /* NXIA_VSOCK_H */
