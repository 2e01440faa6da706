#ifndef NXIA_AGENT_NET_H
#define NXIA_AGENT_NET_H

/* Brings lo up and, where the VM has a network card (virtio-net), eth0 with
 * DHCP (busybox udhcpc, from passt on the host), in a child process: the
 * agent's boot does not wait for the lease. */
void net_up(void);

#endif
