/* The System VM's network bring-up (net.h): kept apart from agent.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "net.h"

/* Not under /run: a root switch (root.c) moves /run into the new root, away from udhcpc,
 * which stays on the initramfs and may get its lease only after that. */
#define SCRIPT "/nxia-udhcpc.sh"

/* udhcpc's event script: applies the lease (address, default route, MTU —
 * passt offers 65520 — and DNS) with busybox's ifconfig and route. */
static const char script[] =
    "#!/bin/busybox sh\n"
    "case \"$1\" in\n"
    "deconfig) ifconfig \"$interface\" 0.0.0.0 up ;;\n"
    "bound|renew)\n"
    "  ifconfig \"$interface\" \"$ip\" netmask \"${subnet:-255.255.255.0}\" up\n"
    "  [ -n \"$mtu\" ] && ifconfig \"$interface\" mtu \"$mtu\"\n"
    "  for r in $router; do route add default gw \"$r\" dev \"$interface\"; break; done\n"
    "  mkdir -p /etc; : > /etc/resolv.conf\n"
    "  for d in $dns; do echo \"nameserver $d\" >> /etc/resolv.conf; done ;;\n"
    "esac\n"
    "exit 0\n";

void net_up(void)
{
    static const char cmd[] =
        "ifconfig lo 127.0.0.1 up; [ -e /sys/class/net/eth0 ] || exit 0; "
        "udhcpc -i eth0 -s " SCRIPT " -q -n -t 20 -T 1 -O mtu >/dev/null 2>&1 "
        "|| echo 'nxia-agent: eth0: no DHCP lease' > /dev/console";
    int fd = open(SCRIPT, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

    if (fd < 0 || write(fd, script, sizeof script - 1) != (ssize_t)(sizeof script - 1)) {
        fprintf(stderr, "nxia-agent: %s: %s\n", SCRIPT, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    close(fd);
    if (fork() == 0) {
        execl("/bin/busybox", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
}
