/*
 * einhyrningsins-bind-shim.so: LD_PRELOAD'd by einhyrningsins-dyno into the
 * web processes, so that a stock app that binds $PORT itself (Node's
 * listen(process.env.PORT), gunicorn -b 0.0.0.0:$PORT, ...) shares the
 * driver's listening socket instead of failing with EADDRINUSE (huptime's
 * idea, without its re-exec).
 *
 *   EINHYRNINGSINS_BIND_FDS=3[,4...]   the inherited listening sockets
 *   EINHYRNINGSINS_BIND_VERBOSE=1      one line on stderr per substitution
 *
 * bind(fd, addr) of a TCP stream socket to a non-zero port P, when one of
 * the inherited fds is a listening TCP socket bound to port P (whatever the
 * address or the family), does not bind: the inherited socket is dup3()ed
 * onto fd (keeping fd's close-on-exec flag), fd's O_NONBLOCK is copied to the
 * shared open file description, and bind returns 0. The app's listen() then
 * only sets the backlog of the already-listening socket, its accept()s take
 * connections from the one queue every generation shares, and its close()
 * closes its own descriptor only: connections waiting in the queue are
 * accepted by the next process, never reset.
 *
 * Every other bind() is the real one. Nothing is done at load time; the
 * shim allocates nothing and keeps no state but the pointer to the real
 * bind.
 *
 * Limits: a static executable (Go, musl static, ...) or a setuid one never
 * loads the shim (the driver logs it); the file status flags (O_NONBLOCK)
 * of the shared socket are shared by every process using it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * glibc 2.34 moved dlsym into libc.so.6 under a new version, dlsym@GLIBC_2.34,
 * which a shim linked against a newer glibc would need: ld.so refuses to load
 * it into programs on older ones (RHEL 8's 2.28, Debian 11's 2.31). Bind to the
 * first version instead, which every glibc has (in libdl.so.2 before 2.34, as a
 * compatibility symbol of libc.so.6 since), and link libdl.so.2 so that it is
 * loaded where dlsym still lives there.
 */
#if defined(__GLIBC__)
#if defined(__x86_64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
#elif defined(__aarch64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.17");
#endif
#endif

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

static bind_fn real_bind_fn(void) {
  static bind_fn real;
  if (real == NULL) real = (bind_fn)dlsym(RTLD_NEXT, "bind");
  return real;
}

static int port_of(const struct sockaddr *sa, socklen_t len) {
  if (sa == NULL) return -1;
  if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
  if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6))
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
  return -1;
}

static int is_stream(int fd) {
  int type = 0;
  socklen_t l = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_STREAM;
}

/* fd is a listening TCP socket bound to port. */
static int listens_on(int fd, int port) {
  int on = 0;
  socklen_t l = sizeof on;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &l) != 0 || !on) return 0;
  if (!is_stream(fd)) return 0;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return 0;
  return port_of((struct sockaddr *)&ss, sl) == port;
}

static void say(int fd, int inherited, int port) {
  const char *v = getenv("EINHYRNINGSINS_BIND_VERBOSE");
  if (v == NULL || strcmp(v, "1") != 0) return;
  char a[16], b[16], c[16];
  int ns[3] = {fd, inherited, port};
  char *bufs[3] = {a, b, c};
  for (int k = 0; k < 3; k++) {
    char tmp[16];
    int n = ns[k], i = 0;
    do {
      tmp[i++] = (char)('0' + n % 10);
      n /= 10;
    } while (n > 0 && i < 15);
    for (int j = 0; j < i; j++) bufs[k][j] = tmp[i - 1 - j];
    bufs[k][i] = '\0';
  }
  const char *p1 = "einhyrningsins-bind-shim: bind(fd ";
  const char *p2 = ", port ";
  const char *p3 = "): using the shared listening socket (fd ";
  const char *p4 = ")\n";
  struct iovec iov[7] = {
      {(void *)p1, strlen(p1)}, {a, strlen(a)}, {(void *)p2, strlen(p2)}, {c, strlen(c)},
      {(void *)p3, strlen(p3)}, {b, strlen(b)}, {(void *)p4, strlen(p4)},
  };
  ssize_t r = writev(2, iov, 7);
  (void)r;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  bind_fn real = real_bind_fn();
  if (real == NULL) {
    errno = ENOSYS;
    return -1;
  }
  int port = port_of(addr, len);
  const char *list = port > 0 ? getenv("EINHYRNINGSINS_BIND_FDS") : NULL;
  if (list == NULL || !is_stream(fd)) return real(fd, addr, len);
  const char *p = list;
  while (*p) {
    char *end;
    long inh = strtol(p, &end, 10);
    if (end == p) break;
    if (inh >= 0 && inh != fd && inh < 65536 && listens_on((int)inh, port)) {
      int fdflags = fcntl(fd, F_GETFD);
      int flflags = fcntl(fd, F_GETFL);
      int shared = fcntl((int)inh, F_GETFL);
      if (fdflags < 0 || flflags < 0 || shared < 0) return real(fd, addr, len);
      if (dup3((int)inh, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) return real(fd, addr, len);
      int want = (shared & ~O_NONBLOCK) | (flflags & O_NONBLOCK);
      if (want != shared) (void)fcntl(fd, F_SETFL, want);
      say(fd, (int)inh, port);
      return 0;
    }
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) break;
  }
  return real(fd, addr, len);
}
