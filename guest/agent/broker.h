/* broker.h - the System VM's Gemini broker (docs/gemini-protocol.md, "The
 * System VM's broker"): Linux processes call host services through the agent,
 * which tags each call with the caller's identity from the kernel and
 * multiplexes them over the VM's one Gemini session. */
#ifndef NXIA_BROKER_H
#define NXIA_BROKER_H

#include <poll.h>

#include "include/nxia_linux.h"

#define BROKER_SOCKET       NXIA_BROKER_SOCKET   /* where libnxia's clients connect */
#define BROKER_HOST_PORT    1025u    /* the host's vsock port for this VM's Gemini session */
#define BROKER_MAX_CLIENTS  32
#define BROKER_MAX_FDS      (2 + BROKER_MAX_CLIENTS)

/* Listens on path (mode 0666: the policy decides, not the file mode) and
 * will reach the host at host_unix (tests) or, when NULL, vsock CID 2 port
 * host_port, at the first client's HELLO. 0, or -1 with errno. */
int broker_start(const char *path, const char *host_unix, unsigned host_port);

/* Puts the broker's descriptors into pf (room for BROKER_MAX_FDS); returns how many. */
int broker_fill(struct pollfd *pf);

/* Serves what poll reported for the count descriptors broker_fill gave. */
void broker_ready(const struct pollfd *pf, int count);

/* Holds (on) or lets go the calls processes start, for a snapshot's quiesce: while held,
 * a client's next CALL waits unread in its socket (and what it sent after it), the answers
 * it gives the host still flow, and a call of the host into a process is refused BUSY.
 * Letting go serves what waited, in order. */
void broker_hold(int on);

/* The calls in flight through the broker, both ways: a process's call the host has not
 * answered, a host call a process has not answered. Each may hold Portal references. */
int broker_in_flight(void);

/* Closes everything and removes the socket. */
void broker_stop(void);

#endif
