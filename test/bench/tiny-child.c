/*
 * The scale bench's worker (test/bench/scale.ts): the least an einhorn child can be.
 * It ACKs on EINHORN_SOCK_PATH (one JSON line, which is valid YAML), then sleeps until
 * the drain signal (SIGUSR2) or SIGTERM/SIGINT ends it. No socket served: the scale
 * phase measures the master, not the workers. Compiled by the bench with `cc -O2`.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void bye(int sig) { (void)sig; _exit(0); }

int main(void) {
  signal(SIGUSR2, bye);
  signal(SIGTERM, bye);
  signal(SIGINT, bye);
  const char *path = getenv("EINHORN_SOCK_PATH");
  if (path && *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
      perror("tiny-child: connect");
      return 1;
    }
    char line[96];
    int n = snprintf(line, sizeof line, "{\"command\":\"worker:ack\",\"pid\":%d}\n", (int)getpid());
    if (write(fd, line, (size_t)n) != n) {
      perror("tiny-child: write");
      return 1;
    }
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
  }
  for (;;) pause();
}
