/*
 * The scale bench's worker (test/bench/scale.ts): the least an einhorn child can be.
 * It ACKs on EINHORN_SOCK_PATH (one JSON line, which is valid YAML), then sleeps until
 * the drain signal (SIGUSR2) or SIGTERM/SIGINT ends it. No socket served: the scale
 * phase measures the master, not the workers. Compiled by the bench with `cc -O2`.
 *
 * With BENCH_ACK_LOG set, it appends one line "PID MICROSECONDS START" to that file: the
 * ACK's round trip, from before connect() to the master closing the connection (einhorn
 * closes after an ACK), and when it started (CLOCK_MONOTONIC, microseconds). One write(2) of O_APPEND per line, so lines of many children never mix.
 */
#include <fcntl.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void bye(int sig) { (void)sig; _exit(0); }

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int main(void) {
  signal(SIGUSR2, bye);
  signal(SIGTERM, bye);
  signal(SIGINT, bye);
  const char *path = getenv("EINHORN_SOCK_PATH");
  if (path && *path) {
    long long t0 = now_us();
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
    const char *ack_log = getenv("BENCH_ACK_LOG");
    if (ack_log && *ack_log) {
      int lf = open(ack_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
      if (lf >= 0) {
        n = snprintf(line, sizeof line, "%d %lld %lld\n", (int)getpid(), now_us() - t0, t0);
        if (write(lf, line, (size_t)n) != n) perror("tiny-child: ack log");
        close(lf);
      }
    }
  }
  for (;;) pause();
}
