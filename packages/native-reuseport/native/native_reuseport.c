/*
 * native_reuseport: the few socket syscalls Node's net module does not expose.
 *
 * Node cannot create a listening socket with SO_REUSEPORT (before Node 22),
 * cannot leave a listener in blocking mode, and cannot hand out a raw listening
 * fd to children.  This addon does exactly that with plain Node-API from C:
 *
 *   listenTcp(opts) / listenUnix(opts)  -> fd (always O_CLOEXEC in this process)
 *   getsockname(fd), fdInfo(fd), close(fd), setCloexec(fd, on), flock(fd),
 *   openFds()
 *   execve(path, argv, env)   replace this process's image (the master's reload);
 *                             returns only by throwing
 *   memfdCreate(name)         an anonymous file (the reload's state snapshot)
 *   sendDatagram(path, msg)   one datagram to a unix socket (sd_notify, syslog)
 *   spawnStart(...), reapSpawned(), ...  workers started off the event loop (spawn.c)
 *
 * Every function is synchronous and only performs non-blocking syscalls (but
 * spawnWait, which waits for the spawns in flight, and spawnSync).
 * System-call failures throw an Error with `code` (errno name), `errno`
 * (positive Linux errno, like os.constants.errno) and `syscall`; misuse of the
 * arguments throws a TypeError.  No fd is ever leaked on an error path.
 */
#include <node_api.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* ------------------------------------------------------------------------ */
/* Error helpers                                                              */
/* ------------------------------------------------------------------------ */

static const char *errno_name(int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(EBADF) E(EAGAIN)
    E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV) E(ENOTDIR)
    E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOSPC) E(EROFS) E(ERANGE)
    E(ENAMETOOLONG) E(ENOLCK) E(ENOSYS) E(ELOOP) E(ENOTSOCK) E(EDESTADDRREQ)
    E(EPROTOTYPE) E(ENOPROTOOPT) E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT)
    E(EOPNOTSUPP) E(EPFNOSUPPORT) E(EAFNOSUPPORT) E(EADDRINUSE)
    E(EADDRNOTAVAIL) E(ENETDOWN) E(ENETUNREACH) E(ENOBUFS) E(EISCONN)
    E(ENOTCONN) E(ECONNREFUSED) E(ECONNRESET) E(ETIMEDOUT) E(EOVERFLOW)
    E(ECHILD) E(E2BIG) E(ENOEXEC) E(ETXTBSY)
#undef E
    default: return "UNKNOWN";
  }
}

static const char *errno_text(int err, char *buf, size_t len) {
#if defined(__GLIBC__)
  return strerror_r(err, buf, len); /* GNU variant (_GNU_SOURCE) */
#else
  if (strerror_r(err, buf, len) != 0) snprintf(buf, len, "errno %d", err);
  return buf;
#endif
}

/* Describes what a failing syscall was operating on, for the error object. */
typedef struct {
  const char *subject; /* "127.0.0.1:8080", "[::1]:80", "/run/x.sock" or NULL */
  const char *address; /* numeric host, or NULL */
  int port;            /* -1: none */
  const char *path;    /* unix socket path, or NULL */
} err_ctx;

static void set_str(napi_env env, napi_value obj, const char *k, const char *v) {
  napi_value s;
  if (napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &s) == napi_ok)
    napi_set_named_property(env, obj, k, s);
}

static void set_int(napi_env env, napi_value obj, const char *k, int32_t v) {
  napi_value n;
  if (napi_create_int32(env, v, &n) == napi_ok) napi_set_named_property(env, obj, k, n);
}

/* Throw `Error("<label> <subject>: <strerror>")` with code/errno/syscall. */
static napi_value throw_sys(napi_env env, int err, const char *syscall,
                            const char *label, const err_ctx *ctx) {
  char text[256], msg[1024];
  const char *desc = errno_text(err, text, sizeof text);
  const char *subject = ctx ? ctx->subject : NULL;
  if (subject)
    snprintf(msg, sizeof msg, "%s %s: %s", label ? label : syscall, subject, desc);
  else
    snprintf(msg, sizeof msg, "%s: %s", label ? label : syscall, desc);

  napi_value code, message, error;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, code, message, &error) != napi_ok) {
    napi_throw_error(env, errno_name(err), msg);
    return NULL;
  }
  set_int(env, error, "errno", err);
  set_str(env, error, "syscall", syscall);
  if (ctx && ctx->address) set_str(env, error, "address", ctx->address);
  if (ctx && ctx->port >= 0) set_int(env, error, "port", ctx->port);
  if (ctx && ctx->path) set_str(env, error, "path", ctx->path);
  napi_throw(env, error);
  return NULL;
}

__attribute__((format(printf, 3, 4)))
static napi_value throw_type(napi_env env, const char *code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_type_error(env, code, msg);
  return NULL;
}

/* A Node-API call failed: keep a pending JS exception (e.g. thrown by a
 * getter on the options object), otherwise report the Node-API failure. */
static void throw_napi(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "native-reuseport: %s failed: %s", what,
           info && info->error_message ? info->error_message : "unknown Node-API error");
  napi_throw_error(env, NULL, msg);
}

#define CHECK(env, call)                                  \
  do {                                                    \
    if ((call) != napi_ok) { throw_napi(env, #call); return false; } \
  } while (0)

#define CHECK_NULL(env, call)                             \
  do {                                                    \
    if ((call) != napi_ok) { throw_napi(env, #call); return NULL; } \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Argument helpers (all return false with a pending exception on failure)   */
/* ------------------------------------------------------------------------ */

static const char *type_name(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return "unknown";
  switch (t) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_object: return "object";
    case napi_function: return "function";
    case napi_external: return "external";
    case napi_bigint: return "bigint";
  }
  return "unknown";
}

static bool is_type(napi_env env, napi_value v, napi_valuetype want) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && t == want;
}

/* Fetch the arguments; `need` of them are mandatory. */
static bool get_args(napi_env env, napi_callback_info info, const char *fn,
                     size_t need, napi_value *argv) {
  size_t argc = need;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < need) {
    throw_type(env, "ERR_MISSING_ARGS", "%s: expected %zu argument%s, got %zu", fn,
               need, need == 1 ? "" : "s", argc);
    return false;
  }
  return true;
}

static bool to_int(napi_env env, napi_value v, const char *fn, const char *what,
                   double min, double max, int64_t *out) {
  if (!is_type(env, v, napi_number)) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "%s: %s must be a number (got %s)", fn, what,
               type_name(env, v));
    return false;
  }
  double d;
  CHECK(env, napi_get_value_double(env, v, &d));
  if (!(d >= min && d <= max) || (double)(int64_t)d != d) {
    throw_type(env, "ERR_INVALID_ARG_VALUE",
               "%s: %s must be an integer in [%.0f, %.0f] (got %g)", fn, what, min, max, d);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

static bool get_fd(napi_env env, napi_value v, const char *fn, int *fd) {
  int64_t n;
  if (!to_int(env, v, fn, "fd", 0, INT32_MAX, &n)) return false;
  *fd = (int)n;
  return true;
}

static bool get_object(napi_env env, napi_value v, const char *fn) {
  if (!is_type(env, v, napi_object)) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "%s: opts must be an object (got %s)", fn,
               type_name(env, v));
    return false;
  }
  return true;
}

static bool get_prop(napi_env env, napi_value obj, const char *key, napi_value *out) {
  CHECK(env, napi_get_named_property(env, obj, key, out));
  return true;
}

static bool get_bool_prop(napi_env env, napi_value obj, const char *fn, const char *key,
                          bool *out) {
  napi_value v;
  if (!get_prop(env, obj, key, &v)) return false;
  if (!is_type(env, v, napi_boolean)) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "%s: opts.%s must be a boolean (got %s)", fn,
               key, type_name(env, v));
    return false;
  }
  CHECK(env, napi_get_value_bool(env, v, out));
  return true;
}

static bool get_int_prop(napi_env env, napi_value obj, const char *fn, const char *key,
                         double min, double max, int64_t *out) {
  napi_value v;
  char what[64];
  if (!get_prop(env, obj, key, &v)) return false;
  snprintf(what, sizeof what, "opts.%s", key);
  return to_int(env, v, fn, what, min, max, out);
}

/* Copy a string property into buf (truncated if needed).  *len receives the
 * full UTF-8 length so the caller can detect truncation.  Strings with an
 * embedded NUL are rejected (they cannot be passed to the kernel). */
static bool get_str_prop(napi_env env, napi_value obj, const char *fn, const char *key,
                         char *buf, size_t bufsize, size_t *len) {
  napi_value v;
  if (!get_prop(env, obj, key, &v)) return false;
  if (!is_type(env, v, napi_string)) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "%s: opts.%s must be a string (got %s)", fn,
               key, type_name(env, v));
    return false;
  }
  size_t full, copied;
  CHECK(env, napi_get_value_string_utf8(env, v, NULL, 0, &full));
  CHECK(env, napi_get_value_string_utf8(env, v, buf, bufsize, &copied));
  if (full == 0 || strlen(buf) != copied) {
    throw_type(env, "ERR_INVALID_ARG_VALUE", "%s: opts.%s must be a non-empty string "
               "without NUL bytes", fn, key);
    return false;
  }
  *len = full;
  return true;
}

/* ------------------------------------------------------------------------ */
/* listenTcp                                                                  */
/* ------------------------------------------------------------------------ */

/* Parse a numeric IPv6 address with an optional "%scope" (index or ifname). */
static bool parse_ipv6(const char *host, struct sockaddr_in6 *sin6) {
  char addr[INET6_ADDRSTRLEN];
  const char *pct = strchr(host, '%');
  size_t alen = pct ? (size_t)(pct - host) : strlen(host);
  if (alen >= sizeof addr) return false;
  memcpy(addr, host, alen);
  addr[alen] = '\0';
  if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1) return false;
  if (pct) {
    const char *scope = pct + 1;
    char *end;
    if (*scope == '\0') return false;
    unsigned long idx = strtoul(scope, &end, 10);
    if (*end != '\0') idx = if_nametoindex(scope);
    if (idx == 0 || idx > UINT32_MAX) return false;
    sin6->sin6_scope_id = (uint32_t)idx;
  }
  return true;
}

/* listen(backlog), then O_NONBLOCK (OR-ed in) when asked. On failure: -1, errno
 * set, *sc naming the call that failed. */
static int listen_and_flag(int fd, int64_t backlog, bool non_block, const char **sc) {
  *sc = "listen";
  if (listen(fd, (int)backlog) < 0) return -1;
  if (non_block) {
    *sc = "fcntl";
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
  }
  return 0;
}

/* The fd as a JS number; if that fails, close it and throw. */
static napi_value fd_result(napi_env env, int fd) {
  napi_value result;
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    throw_napi(env, "napi_create_int32");
    return NULL;
  }
  return result;
}

static napi_value ListenTcp(napi_env env, napi_callback_info info) {
  static const char fn[] = "listenTcp";
  napi_value argv[1], v6v;
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t hostlen;
  int64_t port, family, backlog;
  bool reuse_addr, reuse_port, non_block;
  int v6only = -1; /* -1: kernel default */

  if (!get_args(env, info, fn, 1, argv) || !get_object(env, argv[0], fn)) return NULL;
  napi_value o = argv[0];
  if (!get_str_prop(env, o, fn, "host", host, sizeof host, &hostlen) ||
      !get_int_prop(env, o, fn, "port", 0, 65535, &port) ||
      !get_int_prop(env, o, fn, "family", 0, 255, &family) ||
      !get_bool_prop(env, o, fn, "reuseAddr", &reuse_addr) ||
      !get_bool_prop(env, o, fn, "reusePort", &reuse_port) ||
      !get_bool_prop(env, o, fn, "nonBlock", &non_block) ||
      !get_int_prop(env, o, fn, "backlog", 0, INT32_MAX, &backlog) ||
      !get_prop(env, o, "v6Only", &v6v))
    return NULL;
  if (family != 4 && family != 6)
    return throw_type(env, "ERR_INVALID_ARG_VALUE", "%s: opts.family must be 4 or 6 (got %d)",
                      fn, (int)family);
  if (is_type(env, v6v, napi_boolean)) {
    bool b;
    CHECK_NULL(env, napi_get_value_bool(env, v6v, &b));
    v6only = b;
  } else if (!is_type(env, v6v, napi_null) && !is_type(env, v6v, napi_undefined)) {
    return throw_type(env, "ERR_INVALID_ARG_TYPE",
                      "%s: opts.v6Only must be a boolean or null (got %s)", fn,
                      type_name(env, v6v));
  }

  char subject[sizeof host + 16];
  snprintf(subject, sizeof subject, family == 6 ? "[%s]:%d" : "%s:%d", host, (int)port);
  err_ctx ctx = {subject, host, (int)port, NULL};

  /* Message for a non-numeric host: inet_pton "foo" (not a numeric IPv4 address) */
  char bad[sizeof host + 48];
  snprintf(bad, sizeof bad, "\"%s\" (not a numeric IPv%d address)", host, (int)family);
  err_ctx badctx = {bad, host, (int)port, NULL};

  struct sockaddr_storage ss;
  socklen_t sslen;
  memset(&ss, 0, sizeof ss);
  if (family == 4) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (hostlen >= sizeof host || inet_pton(AF_INET, host, &sin->sin_addr) != 1)
      return throw_sys(env, EINVAL, "inet_pton", NULL, &badctx);
    sslen = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    if (hostlen >= sizeof host || !parse_ipv6(host, sin6))
      return throw_sys(env, EINVAL, "inet_pton", NULL, &badctx);
    sslen = sizeof *sin6;
  }

  const int one = 1;
  const char *sc, *label = NULL;
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_sys(env, errno, "socket", NULL, &ctx);

  sc = "setsockopt";
  if (reuse_addr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
    label = "setsockopt(SO_REUSEADDR)";
    goto fail;
  }
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    label = "setsockopt(SO_REUSEPORT)";
    goto fail;
  }
  if (family == 6 && v6only >= 0 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0) {
    label = "setsockopt(IPV6_V6ONLY)";
    goto fail;
  }
  sc = "bind";
  if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) goto fail;
  if (listen_and_flag(fd, backlog, non_block, &sc) < 0) goto fail;
  return fd_result(env, fd);

fail: {
    int err = errno;
    close(fd);
    return throw_sys(env, err, sc, label, &ctx);
  }
}

/* ------------------------------------------------------------------------ */
/* listenUnix                                                                 */
/* ------------------------------------------------------------------------ */

static napi_value ListenUnix(napi_env env, napi_callback_info info) {
  static const char fn[] = "listenUnix";
  napi_value argv[1];
  char path[1024];
  size_t pathlen;
  int64_t backlog;
  bool non_block;
  struct sockaddr_un sun;

  if (!get_args(env, info, fn, 1, argv) || !get_object(env, argv[0], fn)) return NULL;
  napi_value o = argv[0];
  if (!get_str_prop(env, o, fn, "path", path, sizeof path, &pathlen) ||
      !get_int_prop(env, o, fn, "backlog", 0, INT32_MAX, &backlog) ||
      !get_bool_prop(env, o, fn, "nonBlock", &non_block))
    return NULL;

  err_ctx ctx = {path, NULL, -1, path};
  if (pathlen >= sizeof sun.sun_path) /* keep sun_path NUL-terminated */
    return throw_sys(env, ENAMETOOLONG, "bind", NULL, &ctx);
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, path, pathlen + 1);

  const char *sc = "socket";
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_sys(env, errno, sc, NULL, &ctx);
  /* An existing path (stale socket or not) fails with EADDRINUSE: we never
   * unlink anything, removing stale sockets is the caller's decision. */
  sc = "bind";
  if (bind(fd, (struct sockaddr *)&sun,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pathlen + 1)) < 0)
    goto fail;
  if (listen_and_flag(fd, backlog, non_block, &sc) < 0) goto fail;
  return fd_result(env, fd);

fail: {
    int err = errno;
    close(fd);
    return throw_sys(env, err, sc, NULL, &ctx);
  }
}

/* ------------------------------------------------------------------------ */
/* getsockname / fdInfo                                                       */
/* ------------------------------------------------------------------------ */

static napi_value GetSockName(napi_env env, napi_callback_info info) {
  napi_value argv[1], result, family, address, port;
  int fd;
  if (!get_args(env, info, "getsockname", 1, argv) ||
      !get_fd(env, argv[0], "getsockname", &fd))
    return NULL;

  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
    return throw_sys(env, errno, "getsockname", NULL, NULL);

  char buf[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
  size_t buflen = NAPI_AUTO_LENGTH;
  int portnum = 0;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    portnum = ntohs(sin->sin_port);
    CHECK_NULL(env, napi_create_int32(env, 4, &family));
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    portnum = ntohs(sin6->sin6_port);
    CHECK_NULL(env, napi_create_int32(env, 6, &family));
  } else if (ss.ss_family == AF_UNIX) {
    struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t n = len > off ? len - off : 0;
    if (n > sizeof sun->sun_path) n = sizeof sun->sun_path;
    if (n > 0 && sun->sun_path[0] == '\0') { /* abstract: shown as "@name" */
      buf[0] = '@';
      memcpy(buf + 1, sun->sun_path + 1, n - 1);
      buflen = n;
    } else { /* unnamed socket -> "" */
      buflen = strnlen(sun->sun_path, n);
      memcpy(buf, sun->sun_path, buflen);
    }
    CHECK_NULL(env, napi_create_string_utf8(env, "unix", NAPI_AUTO_LENGTH, &family));
  } else {
    return throw_sys(env, EAFNOSUPPORT, "getsockname", NULL, NULL);
  }
  CHECK_NULL(env, napi_create_string_utf8(env, buf, buflen, &address));
  CHECK_NULL(env, napi_create_int32(env, portnum, &port));
  CHECK_NULL(env, napi_create_object(env, &result));
  CHECK_NULL(env, napi_set_named_property(env, result, "family", family));
  CHECK_NULL(env, napi_set_named_property(env, result, "address", address));
  CHECK_NULL(env, napi_set_named_property(env, result, "port", port));
  return result;
}

static int sockopt_int(int fd, int level, int name, int *out) {
  socklen_t len = sizeof *out;
  *out = 0;
  return getsockopt(fd, level, name, out, &len);
}

static napi_value FdInfo(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, "fdInfo", 1, argv) || !get_fd(env, argv[0], "fdInfo", &fd))
    return NULL;

  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return throw_sys(env, errno, "fcntl", NULL, NULL);
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0) return throw_sys(env, errno, "fcntl", NULL, NULL);

  int domain = -1, type = 0, proto = 0, reuse_addr = 0, reuse_port = 0, accept = 0;
  int v6only = -1;
  if (sockopt_int(fd, SOL_SOCKET, SO_TYPE, &type) == 0) {
    if (sockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &domain) < 0 ||
        sockopt_int(fd, SOL_SOCKET, SO_PROTOCOL, &proto) < 0 ||
        sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, &reuse_addr) < 0 ||
        sockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, &reuse_port) < 0 ||
        sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &accept) < 0)
      return throw_sys(env, errno, "getsockopt", NULL, NULL);
    if (domain == AF_INET6 && sockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only) < 0)
      return throw_sys(env, errno, "getsockopt", NULL, NULL);
  } else if (errno != ENOTSOCK) {
    return throw_sys(env, errno, "getsockopt", NULL, NULL);
  }

  const char *kind = "other";
  bool tcp = type == SOCK_STREAM && (proto == IPPROTO_TCP || proto == IPPROTO_MPTCP);
  if (domain == AF_INET && tcp) kind = "tcp4";
  else if (domain == AF_INET6 && tcp) kind = "tcp6";
  else if (domain == AF_UNIX && type == SOCK_STREAM) kind = "unix";

  napi_value r, t, f, n;
  CHECK_NULL(env, napi_create_object(env, &r));
  CHECK_NULL(env, napi_get_boolean(env, true, &t));
  CHECK_NULL(env, napi_get_boolean(env, false, &f));
  CHECK_NULL(env, napi_get_null(env, &n));
  CHECK_NULL(env, napi_set_named_property(env, r, "nonBlock", (fl & O_NONBLOCK) ? t : f));
  CHECK_NULL(env, napi_set_named_property(env, r, "cloexec", (fdfl & FD_CLOEXEC) ? t : f));
  CHECK_NULL(env, napi_set_named_property(env, r, "reuseAddr", reuse_addr ? t : f));
  CHECK_NULL(env, napi_set_named_property(env, r, "reusePort", reuse_port ? t : f));
  CHECK_NULL(env, napi_set_named_property(env, r, "v6Only",
                                          v6only < 0 ? n : v6only ? t : f));
  CHECK_NULL(env, napi_set_named_property(env, r, "listening", accept ? t : f));
  napi_value k;
  CHECK_NULL(env, napi_create_string_utf8(env, kind, NAPI_AUTO_LENGTH, &k));
  CHECK_NULL(env, napi_set_named_property(env, r, "type", k));
  return r;
}

/* ------------------------------------------------------------------------ */
/* close / setCloexec / flock / openFds                                       */
/* ------------------------------------------------------------------------ */

static napi_value Close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, "close", 1, argv) || !get_fd(env, argv[0], "close", &fd))
    return NULL;
  /* On Linux the fd is released even when close() reports EINTR: never retry. */
  if (close(fd) < 0 && errno != EINTR) return throw_sys(env, errno, "close", NULL, NULL);
  return NULL;
}

static napi_value SetCloexec(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  bool on;
  if (!get_args(env, info, "setCloexec", 2, argv) ||
      !get_fd(env, argv[0], "setCloexec", &fd))
    return NULL;
  if (!is_type(env, argv[1], napi_boolean))
    return throw_type(env, "ERR_INVALID_ARG_TYPE", "setCloexec: on must be a boolean (got %s)",
                      type_name(env, argv[1]));
  CHECK_NULL(env, napi_get_value_bool(env, argv[1], &on));
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0) return throw_sys(env, errno, "fcntl", NULL, NULL);
  int nfl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
  if (nfl != fl && fcntl(fd, F_SETFD, nfl) < 0)
    return throw_sys(env, errno, "fcntl", NULL, NULL);
  return NULL;
}

static napi_value Flock(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int fd, rc;
  if (!get_args(env, info, "flock", 1, argv) || !get_fd(env, argv[0], "flock", &fd))
    return NULL;
  do rc = flock(fd, LOCK_EX | LOCK_NB);
  while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EWOULDBLOCK) return throw_sys(env, errno, "flock", NULL, NULL);
  CHECK_NULL(env, napi_get_boolean(env, rc == 0, &result));
  return result;
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): two connected fds, e.g. an
 * already-connected control connection for a child (einhorn's -g, EINHORN_SOCK_FD). */
static napi_value SocketPair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return throw_sys(env, errno, "socketpair", NULL, NULL);
  napi_value arr, a, b;
  bool ok = napi_create_array_with_length(env, 2, &arr) == napi_ok &&
            napi_create_int32(env, sv[0], &a) == napi_ok && napi_set_element(env, arr, 0, a) == napi_ok &&
            napi_create_int32(env, sv[1], &b) == napi_ok && napi_set_element(env, arr, 1, b) == napi_ok;
  if (!ok) {
    close(sv[0]);
    close(sv[1]);
    napi_throw_error(env, NULL, "socketpair: out of memory");
    return NULL;
  }
  return arr;
}

static napi_value OpenFds(napi_env env, napi_callback_info info) {
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) return throw_sys(env, errno, "opendir", NULL, NULL);
  int self = dirfd(dir), *fds = NULL, err = 0;
  size_t n = 0, cap = 0;
  struct dirent *de;
  for (;;) {
    errno = 0;
    if (!(de = readdir(dir))) { err = errno; break; }
    char *end;
    long v = strtol(de->d_name, &end, 10);
    if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end != '\0' || v == self) continue;
    if (n == cap) {
      int *nf = realloc(fds, (cap = cap ? cap * 2 : 64) * sizeof *fds);
      if (!nf) { err = ENOMEM; break; }
      fds = nf;
    }
    fds[n++] = (int)v;
  }
  closedir(dir);
  if (err) {
    free(fds);
    return throw_sys(env, err, "readdir", NULL, NULL);
  }
  if (n > 1) qsort(fds, n, sizeof *fds, cmp_int);

  napi_value arr = NULL, el;
  bool ok = napi_create_array_with_length(env, n, &arr) == napi_ok;
  for (size_t i = 0; ok && i < n; i++)
    ok = napi_create_int32(env, fds[i], &el) == napi_ok &&
         napi_set_element(env, arr, (uint32_t)i, el) == napi_ok;
  free(fds);
  if (!ok) {
    throw_napi(env, "openFds: building the result");
    return NULL;
  }
  return arr;
}

/* ---- processes and memory ---------------------------------------------- */

/* prctl(PR_SET_CHILD_SUBREAPER, on): orphans of our descendants are reparented to us. */
static napi_value SetChildSubreaper(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  bool on;
  if (!get_args(env, info, "setChildSubreaper", 1, argv)) return NULL;
  if (!is_type(env, argv[0], napi_boolean))
    return throw_type(env, "ERR_INVALID_ARG_TYPE", "setChildSubreaper: on must be a boolean, got %s", type_name(env, argv[0]));
  CHECK_NULL(env, napi_get_value_bool(env, argv[0], &on));
  if (prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) < 0) return throw_sys(env, errno, "prctl", NULL, NULL);
  return NULL;
}

/*
 * waitpid(pid, WNOHANG) for one pid that is not a child Node spawned (an orphan
 * reparented to us): null while it runs, else { pid, code, signal } (signal: number or null).
 */
static napi_value ReapPid(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int64_t pid;
  int status = 0;
  pid_t rc;
  if (!get_args(env, info, "reapPid", 1, argv) || !to_int(env, argv[0], "reapPid", "pid", 1, INT32_MAX, &pid))
    return NULL;
  do rc = waitpid((pid_t)pid, &status, WNOHANG);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return throw_sys(env, errno, "waitpid", NULL, NULL);
  if (rc == 0) {
    CHECK_NULL(env, napi_get_null(env, &result));
    return result;
  }
  CHECK_NULL(env, napi_create_object(env, &result));
  set_int(env, result, "pid", (int32_t)rc);
  napi_value v;
  if (WIFEXITED(status)) {
    set_int(env, result, "code", WEXITSTATUS(status));
    CHECK_NULL(env, napi_get_null(env, &v));
    CHECK_NULL(env, napi_set_named_property(env, result, "signal", v));
  } else {
    CHECK_NULL(env, napi_get_null(env, &v));
    CHECK_NULL(env, napi_set_named_property(env, result, "code", v));
    set_int(env, result, "signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }
  return result;
}

/* SO_PEERCRED of a connected unix socket: { pid, uid, gid } of the peer at connect(). */
static napi_value PeerCred(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int fd;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (!get_args(env, info, "peerCred", 1, argv) || !get_fd(env, argv[0], "peerCred", &fd)) return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return throw_sys(env, errno, "getsockopt", NULL, NULL);
  CHECK_NULL(env, napi_create_object(env, &result));
  set_int(env, result, "pid", (int32_t)cred.pid);
  set_int(env, result, "uid", (int32_t)cred.uid);
  set_int(env, result, "gid", (int32_t)cred.gid);
  return result;
}

/* getpgid(pid), or -1 when there is no such process. */
static napi_value GetPgid(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int64_t pid;
  if (!get_args(env, info, "getpgid", 1, argv) || !to_int(env, argv[0], "getpgid", "pid", 0, INT32_MAX, &pid))
    return NULL;
  pid_t g = getpgid((pid_t)pid);
  CHECK_NULL(env, napi_create_int32(env, g < 0 ? -1 : (int32_t)g, &result));
  return result;
}

/* accept4(fd, SOCK_CLOEXEC | SOCK_NONBLOCK) on a non-blocking listening socket: the new
   fd, or -errno (-EAGAIN: none pending). libuv accepts one connection per turn of the
   event loop; the control server takes the rest of a burst with this. */
static napi_value AcceptPending(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int64_t fd;
  if (!get_args(env, info, "acceptPending", 1, argv) || !to_int(env, argv[0], "acceptPending", "fd", 0, INT32_MAX, &fd))
    return NULL;
  int c;
  do c = accept4((int)fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  while (c < 0 && errno == EINTR);
  CHECK_NULL(env, napi_create_int32(env, c < 0 ? -errno : c, &result));
  return result;
}

/* glibc: mallopt(M_ARENA_MAX, n) (from now on) and malloc_trim(0) (give free pages back).
   Both are glibc-only: elsewhere (musl) they do nothing and return false. */
static napi_value MallocArenaMax(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int64_t n;
  if (!get_args(env, info, "mallocArenaMax", 1, argv) || !to_int(env, argv[0], "mallocArenaMax", "n", 1, 1024, &n))
    return NULL;
#ifdef __GLIBC__
  CHECK_NULL(env, napi_get_boolean(env, mallopt(M_ARENA_MAX, (int)n) == 1, &result));
#else
  /* musl (and any other libc) has no malloc arenas to cap: refused. */
  (void)n;
  CHECK_NULL(env, napi_get_boolean(env, false, &result));
#endif
  return result;
}

static napi_value MallocTrim(napi_env env, napi_callback_info info) {
  napi_value result;
  (void)info;
#ifdef __GLIBC__
  CHECK_NULL(env, napi_get_boolean(env, malloc_trim(0) == 1, &result));
#else
  /* musl returns freed pages to the kernel by itself; nothing to trim. */
  CHECK_NULL(env, napi_get_boolean(env, false, &result));
#endif
  return result;
}

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* execve, memfdCreate: the master's reload (adopted workers: reapPid)     */
/* ------------------------------------------------------------------------ */

/* A JS array of strings as a NULL-terminated char* vector (malloc'ed; NULL + exception on error). */
static char **str_vector(napi_env env, napi_value arr, const char *fn, const char *what) {
  bool is_array = false;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "%s: %s must be an array of strings", fn, what);
    return NULL;
  }
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok) return NULL;
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (!v) {
    napi_throw_error(env, NULL, "execve: out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    size_t len = 0, got = 0;
    if (napi_get_element(env, arr, i, &e) != napi_ok || !is_type(env, e, napi_string) ||
        napi_get_value_string_utf8(env, e, NULL, 0, &len) != napi_ok) {
      throw_type(env, "ERR_INVALID_ARG_TYPE", "%s: %s[%u] must be a string", fn, what, i);
      goto fail;
    }
    if (!(v[i] = malloc(len + 1))) {
      napi_throw_error(env, NULL, "execve: out of memory");
      goto fail;
    }
    napi_get_value_string_utf8(env, e, v[i], len + 1, &got);
    if (strlen(v[i]) != got) {
      throw_type(env, "ERR_INVALID_ARG_VALUE", "%s: %s[%u] contains a NUL byte", fn, what, i);
      goto fail;
    }
  }
  return v;
fail:
  for (uint32_t i = 0; i < n; i++) free(v[i]);
  free(v);
  return NULL;
}

static void free_vector(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

/* execve(path, argv[], env[]) -- every fd without FD_CLOEXEC is kept. */
static napi_value Execve(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, "execve", 3, argv)) return NULL;
  char path[PATH_MAX];
  size_t len = 0, got = 0;
  if (!is_type(env, argv[0], napi_string) ||
      napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok || len == 0 || len >= sizeof path) {
    return throw_type(env, "ERR_INVALID_ARG_VALUE", "execve: path must be a non-empty string shorter than %d bytes", PATH_MAX);
  }
  napi_get_value_string_utf8(env, argv[0], path, sizeof path, &got);
  char **av = str_vector(env, argv[1], "execve", "argv");
  if (!av) return NULL;
  char **ev = str_vector(env, argv[2], "execve", "env");
  if (!ev) {
    free_vector(av);
    return NULL;
  }
  execve(path, av, ev);
  int err = errno;
  free_vector(av);
  free_vector(ev);
  return throw_sys(env, err, "execve", NULL, NULL);
}

/* memfd_create(name, MFD_CLOEXEC) -> fd. */
static napi_value MemfdCreate(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, "memfdCreate", 1, argv)) return NULL;
  char name[200];
  size_t got = 0;
  if (!is_type(env, argv[0], napi_string) ||
      napi_get_value_string_utf8(env, argv[0], name, sizeof name, &got) != napi_ok || got == 0) {
    return throw_type(env, "ERR_INVALID_ARG_VALUE", "memfdCreate: name must be a non-empty string");
  }
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return throw_sys(env, errno, "memfd_create", NULL, NULL);
  return fd_result(env, fd);
}

/* sendDatagram(path, message): one datagram to a unix socket, never blocking (a full
 * receiver queue is EAGAIN): sd_notify's NOTIFY_SOCKET and syslog's /dev/log. A path
 * starting with '@' is in the abstract namespace. */
static napi_value SendDatagram(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, "sendDatagram", 2, argv)) return NULL;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  char path[sizeof sa.sun_path + 1];
  size_t plen = 0;
  if (!is_type(env, argv[0], napi_string) ||
      napi_get_value_string_utf8(env, argv[0], NULL, 0, &plen) != napi_ok || plen == 0 || plen > sizeof sa.sun_path) {
    return throw_type(env, "ERR_INVALID_ARG_VALUE", "sendDatagram: path must be a non-empty string of at most %zu bytes", sizeof sa.sun_path);
  }
  napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen);
  memcpy(sa.sun_path, path, plen);
  if (path[0] == '@') sa.sun_path[0] = '\0';
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '@' ? 0 : 1));
  size_t mlen = 0;
  if (!is_type(env, argv[1], napi_string) || napi_get_value_string_utf8(env, argv[1], NULL, 0, &mlen) != napi_ok) {
    return throw_type(env, "ERR_INVALID_ARG_TYPE", "sendDatagram: message must be a string");
  }
  char *msg = malloc(mlen + 1);
  if (!msg) {
    napi_throw_error(env, NULL, "sendDatagram: out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[1], msg, mlen + 1, &mlen);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    int err = errno;
    free(msg);
    return throw_sys(env, err, "socket", NULL, NULL);
  }
  ssize_t r;
  do r = sendto(fd, msg, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  while (r < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  free(msg);
  if (r < 0) return throw_sys(env, err, "sendto", NULL, NULL);
  return NULL;
}

/* Spawning off the event loop: spawnInit, spawnStart, spawnSync, reapSpawned, ... */
#include "spawn.c"

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
      {"listenTcp", NULL, ListenTcp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenUnix", NULL, ListenUnix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getsockname", NULL, GetSockName, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fdInfo", NULL, FdInfo, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setCloexec", NULL, SetCloexec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flock", NULL, Flock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openFds", NULL, OpenFds, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketPair", NULL, SocketPair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"execve", NULL, Execve, NULL, NULL, NULL, napi_enumerable, NULL},
      {"memfdCreate", NULL, MemfdCreate, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendDatagram", NULL, SendDatagram, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setChildSubreaper", NULL, SetChildSubreaper, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reapPid", NULL, ReapPid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peerCred", NULL, PeerCred, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getpgid", NULL, GetPgid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"acceptPending", NULL, AcceptPending, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mallocArenaMax", NULL, MallocArenaMax, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mallocTrim", NULL, MallocTrim, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawnInit", NULL, SpawnInit, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawnStart", NULL, SpawnStart, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawnSync", NULL, SpawnSync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawnResults", NULL, SpawnResults, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawnWait", NULL, SpawnWait, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reapSpawned", NULL, ReapSpawned, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawnedAdopt", NULL, SpawnedAdopt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"isSpawned", NULL, IsSpawned, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawnsInFlight", NULL, SpawnsInFlight, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return NULL;
  return exports;
}
