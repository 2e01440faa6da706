/* socket-try - opens a TCP socket and says how it went: "socket: ok" (exit
 * 0) or "socket: <strerror>" (exit 1). Static, so a Landlock rule set only
 * needs to let it be executed (AgentConfineTest). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    printf("socket: %s\n", fd < 0 ? strerror(errno) : "ok");
    return fd < 0;
}
