/*
 * Spawning off the event loop (part of native_reuseport.c's translation unit: it uses
 * that file's error and argument helpers, and is #included from it).
 *
 * child_process.spawn forks the whole master (libuv's uv_spawn: a page-table copy of a
 * 60 MB process) and then waits on the event loop's thread until the child has exec'd:
 * about 8 ms each, hundreds of ms on a loaded machine, during which no ACK, operator
 * command or health check is answered. Here the launcher is started with posix_spawn
 * (glibc and musl both clone with CLONE_VM | CLONE_VFORK: no copy, and an exec failure
 * comes back as the return value) on SPAWN_THREADS threads of our own, never libuv's
 * threadpool (fs needs it):
 *
 *   spawnInit(onResults)   once: onResults() is called on the JS thread whenever
 *                          completed spawns are waiting to be taken
 *   spawnStart(path, argv, env, fds) -> id   queued; fds[i] becomes the child's fd i
 *                          (dup'ed now, so the caller may close its own at once)
 *   spawnSync(path, argv, env, fds) -> pid   the same on the calling thread (see below)
 *   spawnResults()         -> [{ id, pid } | { id, error }]  the completed ones, once each
 *   spawnWait()            block until nothing is in flight (a reload's snapshot)
 *   reapSpawned(all?)      -> [{ pid, code, signal }]  waitpid(WNOHANG) of the pids spawned
 *                          here (or adopted): the exited ones, forgotten (all: ask for
 *                          each, not only for the zombies the kernel lists)
 *   spawnedAdopt(pid)      a child this process had before a re-exec: reaped as ours
 *   isSpawned(pid), spawnsInFlight()   for the orphan reaper (see reaper.ts)
 *
 * The child gets what libuv gives it: fds 0..n-1 as asked (dup2 clears FD_CLOEXEC),
 * every signal at its default disposition and none blocked, the environment given.
 *
 * Registry: every pid spawned here is recorded before the in-flight count drops, so a
 * scan of our children that reads the count after the children list never mistakes a
 * fresh worker for an orphan. A pid is reaped by reapSpawned only once spawnResults has
 * handed it out (announced), so its exit never reaches JS before its spawn did.
 *
 * The threads never exit: PR_SET_PDEATHSIG (the launcher's --pdeathsig) fires when the
 * child's parent *thread* ends. An execve ends every thread but the caller, which is
 * why spawnSync exists: the master's -k children are spawned from the JS thread.
 */
#include <pthread.h>
#include <spawn.h>

/* glibc 2.32/2.34 moved these into libc under new versions; the prebuilds' floor is
   2.28: bind their first ones (as bind_shim.c does for dlsym). */
#if defined(__GLIBC__)
#if defined(__x86_64__)
#define SPAWN_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define SPAWN_GLIBC_BASE "GLIBC_2.17"
#endif
#ifdef SPAWN_GLIBC_BASE
__asm__(".symver pthread_create,pthread_create@" SPAWN_GLIBC_BASE);
__asm__(".symver pthread_sigmask,pthread_sigmask@" SPAWN_GLIBC_BASE);
__asm__(".symver pthread_attr_setstacksize,pthread_attr_setstacksize@" SPAWN_GLIBC_BASE);
#endif
#endif

#define SPAWN_THREADS 2

typedef struct spawn_job {
  struct spawn_job *next;
  uint32_t id;
  char *path;
  char **argv;
  char **envp;
  int *fds; /* our dups, close-on-exec, all >= nfds (no fd is both a source and a target) */
  int nfds;
  pid_t pid;
  int err;
} spawn_job;

typedef struct {
  pid_t pid;
  bool announced;
} spawned_pid;

static pthread_mutex_t sp_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sp_work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t sp_idle = PTHREAD_COND_INITIALIZER;
static spawn_job *sp_queue_head, *sp_queue_tail;
static spawn_job *sp_done_head, *sp_done_tail;
/* Queued or running: counted at spawnStart, dropped once the pid is in the registry. */
static int sp_in_flight;
static int sp_threads;
static uint32_t sp_next_id = 1;
static napi_threadsafe_function sp_tsfn;
static bool sp_tsfn_ref;
static spawned_pid *sp_reg;
static size_t sp_reg_n, sp_reg_cap;

/* ---- the registry (callers hold sp_mu) ---- */

static ssize_t reg_find(pid_t pid) {
  for (size_t i = 0; i < sp_reg_n; i++)
    if (sp_reg[i].pid == pid) return (ssize_t)i;
  return -1;
}

static bool reg_add(pid_t pid, bool announced) {
  if (reg_find(pid) >= 0) return true;
  if (sp_reg_n == sp_reg_cap) {
    size_t cap = sp_reg_cap ? sp_reg_cap * 2 : 256;
    spawned_pid *r = realloc(sp_reg, cap * sizeof *r);
    if (!r) return false;
    sp_reg = r;
    sp_reg_cap = cap;
  }
  sp_reg[sp_reg_n].pid = pid;
  sp_reg[sp_reg_n].announced = announced;
  sp_reg_n++;
  return true;
}

static void reg_remove(pid_t pid) {
  ssize_t i = reg_find(pid);
  if (i >= 0) sp_reg[i] = sp_reg[--sp_reg_n];
}

/* ---- jobs ---- */

static void job_free(spawn_job *j) {
  if (!j) return;
  for (int i = 0; i < j->nfds; i++)
    if (j->fds && j->fds[i] >= 0) close(j->fds[i]);
  free(j->fds);
  free_vector(j->argv);
  free_vector(j->envp);
  free(j->path);
  free(j);
}

/* posix_spawn the job: 0 and *pid, or an errno (the launcher could not be exec'd). */
static int do_spawn(const spawn_job *j, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t all, none;
  int rc = posix_spawn_file_actions_init(&fa);
  if (rc) return rc;
  if ((rc = posix_spawnattr_init(&at))) {
    posix_spawn_file_actions_destroy(&fa);
    return rc;
  }
  for (int i = 0; i < j->nfds && rc == 0; i++) rc = posix_spawn_file_actions_adddup2(&fa, j->fds[i], i);
  sigfillset(&all);
  sigemptyset(&none);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&at, &all);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&at, &none);
  if (rc == 0) rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (rc == 0) rc = posix_spawn(pid, j->path, &fa, &at, j->argv, j->envp);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  return rc;
}

/* What the job no longer needs once spawned: the fds and vectors (the path stays for an error message). */
static void job_release(spawn_job *j) {
  for (int i = 0; i < j->nfds; i++)
    if (j->fds[i] >= 0) close(j->fds[i]);
  free(j->fds);
  j->fds = NULL;
  j->nfds = 0;
  free_vector(j->argv);
  free_vector(j->envp);
  j->argv = j->envp = NULL;
}

static void *spawner(void *arg) {
  (void)arg;
  /* Signals are for the JS thread (libuv's handlers); the children reset theirs anyway. */
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  for (;;) {
    pthread_mutex_lock(&sp_mu);
    while (!sp_queue_head) pthread_cond_wait(&sp_work, &sp_mu);
    spawn_job *j = sp_queue_head;
    sp_queue_head = j->next;
    if (!sp_queue_head) sp_queue_tail = NULL;
    pthread_mutex_unlock(&sp_mu);

    j->next = NULL;
    j->err = do_spawn(j, &j->pid);
    job_release(j);

    pthread_mutex_lock(&sp_mu);
    if (j->err == 0 && !reg_add(j->pid, false)) j->err = ENOMEM; /* not reaped here: the orphan reaper's */
    bool first = sp_done_head == NULL;
    if (sp_done_tail) sp_done_tail->next = j;
    else sp_done_head = j;
    sp_done_tail = j;
    if (--sp_in_flight == 0) pthread_cond_broadcast(&sp_idle);
    pthread_mutex_unlock(&sp_mu);
    if (first) napi_call_threadsafe_function(sp_tsfn, NULL, napi_tsfn_nonblocking);
  }
  return NULL;
}

/* The tsfn's call on the JS thread: onResults(), which takes them with spawnResults(). */
static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)context;
  (void)data;
  if (!env || !js_cb) return;
  napi_value undefined;
  if (napi_get_undefined(env, &undefined) != napi_ok) return;
  napi_call_function(env, undefined, js_cb, 0, NULL, NULL);
}

static napi_value SpawnInit(napi_env env, napi_callback_info info) {
  napi_value argv[1], name;
  if (!get_args(env, info, "spawnInit", 1, argv)) return NULL;
  if (!is_type(env, argv[0], napi_function))
    return throw_type(env, "ERR_INVALID_ARG_TYPE", "spawnInit: onResults must be a function, got %s", type_name(env, argv[0]));
  if (sp_tsfn) {
    napi_throw_error(env, "ERR_INVALID_STATE", "spawnInit: already called");
    return NULL;
  }
  CHECK_NULL(env, napi_create_string_utf8(env, "einhyrningsins-spawn", NAPI_AUTO_LENGTH, &name));
  CHECK_NULL(env, napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &sp_tsfn));
  CHECK_NULL(env, napi_unref_threadsafe_function(env, sp_tsfn));
  return NULL;
}

/* path, argv[], env[], fds[] -> a job with our own copies (NULL + exception on error). */
static spawn_job *job_from_args(napi_env env, napi_value *argv, const char *fn) {
  size_t len = 0, got = 0;
  bool is_array = false;
  if (!is_type(env, argv[0], napi_string) || napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok ||
      len == 0 || len >= PATH_MAX) {
    throw_type(env, "ERR_INVALID_ARG_VALUE", "%s: path must be a non-empty string shorter than %d bytes", fn, PATH_MAX);
    return NULL;
  }
  if (napi_is_array(env, argv[3], &is_array) != napi_ok || !is_array) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "%s: fds must be an array of fds", fn);
    return NULL;
  }
  spawn_job *j = calloc(1, sizeof *j);
  if (!j || !(j->path = malloc(len + 1))) {
    free(j);
    napi_throw_error(env, NULL, "spawn: out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], j->path, len + 1, &got);
  if (strlen(j->path) != got) {
    throw_type(env, "ERR_INVALID_ARG_VALUE", "%s: path contains a NUL byte", fn);
    goto fail;
  }
  if (!(j->argv = str_vector(env, argv[1], fn, "argv")) || !(j->envp = str_vector(env, argv[2], fn, "env"))) goto fail;
  uint32_t n = 0;
  if (napi_get_array_length(env, argv[3], &n) != napi_ok || n > 1024) {
    throw_type(env, "ERR_INVALID_ARG_VALUE", "%s: fds must have at most 1024 entries", fn);
    goto fail;
  }
  if (!(j->fds = malloc((n ? n : 1) * sizeof *j->fds))) {
    napi_throw_error(env, NULL, "spawn: out of memory");
    goto fail;
  }
  for (uint32_t i = 0; i < n; i++) j->fds[i] = -1;
  j->nfds = (int)n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    int fd;
    if (napi_get_element(env, argv[3], i, &e) != napi_ok || !get_fd(env, e, fn, &fd)) goto fail;
    /* Above every target: dup2(source, i) never meets a source that is also a target. */
    if ((j->fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, (int)n)) < 0) {
      throw_sys(env, errno, "fcntl", "spawn: fd", NULL);
      goto fail;
    }
  }
  return j;
fail:
  job_free(j);
  return NULL;
}

static napi_value SpawnStart(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  if (!get_args(env, info, "spawnStart", 4, argv)) return NULL;
  if (!sp_tsfn) {
    napi_throw_error(env, "ERR_INVALID_STATE", "spawnStart: spawnInit was not called");
    return NULL;
  }
  spawn_job *j = job_from_args(env, argv, "spawnStart");
  if (!j) return NULL;
  pthread_mutex_lock(&sp_mu);
  if (sp_threads < SPAWN_THREADS) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 256 * 1024);
    int rc = pthread_create(&t, &a, spawner, NULL);
    pthread_attr_destroy(&a);
    if (rc != 0 && sp_threads == 0) {
      pthread_mutex_unlock(&sp_mu);
      job_free(j);
      return throw_sys(env, rc, "pthread_create", NULL, NULL);
    }
    if (rc == 0) sp_threads++;
  }
  j->id = sp_next_id++;
  if (sp_next_id > INT32_MAX) sp_next_id = 1;
  sp_in_flight++;
  if (sp_queue_tail) sp_queue_tail->next = j;
  else sp_queue_head = j;
  sp_queue_tail = j;
  pthread_cond_signal(&sp_work);
  uint32_t id = j->id;
  pthread_mutex_unlock(&sp_mu);
  if (!sp_tsfn_ref) {
    /* Something is in flight: its completion keeps the process alive. */
    napi_ref_threadsafe_function(env, sp_tsfn);
    sp_tsfn_ref = true;
  }
  CHECK_NULL(env, napi_create_uint32(env, id, &result));
  return result;
}

static napi_value SpawnSync(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  if (!get_args(env, info, "spawnSync", 4, argv)) return NULL;
  spawn_job *j = job_from_args(env, argv, "spawnSync");
  if (!j) return NULL;
  pid_t pid = 0;
  int err = do_spawn(j, &pid);
  if (err == 0) {
    pthread_mutex_lock(&sp_mu);
    if (!reg_add(pid, true)) err = ENOMEM;
    pthread_mutex_unlock(&sp_mu);
  }
  if (err != 0) {
    char label[PATH_MAX + 16];
    snprintf(label, sizeof label, "spawn %s", j->path);
    job_free(j);
    return throw_sys(env, err, "posix_spawn", label, NULL);
  }
  job_free(j);
  CHECK_NULL(env, napi_create_int32(env, (int32_t)pid, &result));
  return result;
}

static napi_value SpawnResults(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value arr;
  pthread_mutex_lock(&sp_mu);
  spawn_job *list = sp_done_head;
  sp_done_head = sp_done_tail = NULL;
  for (spawn_job *j = list; j; j = j->next) {
    ssize_t i = j->err == 0 ? reg_find(j->pid) : -1;
    if (i >= 0) sp_reg[i].announced = true;
  }
  bool idle = sp_in_flight == 0;
  pthread_mutex_unlock(&sp_mu);
  if (idle && sp_tsfn_ref) {
    napi_unref_threadsafe_function(env, sp_tsfn);
    sp_tsfn_ref = false;
  }
  uint32_t n = 0;
  bool ok = napi_create_array(env, &arr) == napi_ok;
  while (list) {
    spawn_job *j = list;
    list = j->next;
    napi_value o;
    if (ok && napi_create_object(env, &o) == napi_ok) {
      set_int(env, o, "id", (int32_t)j->id);
      if (j->err == 0) {
        set_int(env, o, "pid", (int32_t)j->pid);
      } else {
        char text[256], msg[PATH_MAX + 300];
        snprintf(msg, sizeof msg, "spawn %s: %s (%s)", j->path, errno_text(j->err, text, sizeof text), errno_name(j->err));
        set_str(env, o, "error", msg);
        set_str(env, o, "code", errno_name(j->err));
      }
      ok = napi_set_element(env, arr, n++, o) == napi_ok;
    }
    job_free(j);
  }
  if (!ok) {
    throw_napi(env, "spawnResults: building the result");
    return NULL;
  }
  return arr;
}

static napi_value SpawnWait(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  pthread_mutex_lock(&sp_mu);
  while (sp_in_flight > 0) pthread_cond_wait(&sp_idle, &sp_mu);
  pthread_mutex_unlock(&sp_mu);
  return NULL;
}

/* waitpid(pid, WNOHANG) of one registered pid: appends { pid, code, signal } and forgets it
   when it has exited (or is not our child any more: ECHILD, code and signal null). */
static bool reap_registered(napi_env env, pid_t pid, napi_value arr, uint32_t *n) {
  int status = 0;
  pid_t rc;
  do rc = waitpid(pid, &status, WNOHANG);
  while (rc < 0 && errno == EINTR);
  if (rc == 0 || (rc < 0 && errno != ECHILD)) return false;
  pthread_mutex_lock(&sp_mu);
  reg_remove(pid);
  pthread_mutex_unlock(&sp_mu);
  napi_value o, nul;
  if (napi_create_object(env, &o) != napi_ok || napi_get_null(env, &nul) != napi_ok) return true;
  set_int(env, o, "pid", (int32_t)pid);
  if (rc > 0 && WIFEXITED(status)) {
    set_int(env, o, "code", WEXITSTATUS(status));
    napi_set_named_property(env, o, "signal", nul);
  } else {
    napi_set_named_property(env, o, "code", nul);
    if (rc > 0 && WIFSIGNALED(status)) set_int(env, o, "signal", WTERMSIG(status));
    else napi_set_named_property(env, o, "signal", nul);
  }
  napi_set_element(env, arr, (*n)++, o);
  return true;
}

static napi_value ReapSpawned(napi_env env, napi_callback_info info) {
  napi_value arr, argv[1];
  size_t argc = 1;
  uint32_t n = 0;
  bool scan = false;
  CHECK_NULL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1 && is_type(env, argv[0], napi_boolean)) CHECK_NULL(env, napi_get_value_bool(env, argv[0], &scan));
  CHECK_NULL(env, napi_create_array(env, &arr));
  /* Usually every zombie is one of ours: ask the kernel which (without reaping it). With
     `all` (adopted pids, which may not be our children any more: ECHILD) each is asked. */
  while (!scan) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0) break;
    pthread_mutex_lock(&sp_mu);
    ssize_t i = reg_find(si.si_pid);
    bool ours = i >= 0 && sp_reg[i].announced;
    pthread_mutex_unlock(&sp_mu);
    if (!ours || !reap_registered(env, si.si_pid, arr, &n)) {
      scan = true; /* someone else's zombie first in line: look at each of ours */
      break;
    }
  }
  if (!scan) return arr;
  pthread_mutex_lock(&sp_mu);
  size_t m = 0;
  pid_t *pids = malloc((sp_reg_n ? sp_reg_n : 1) * sizeof *pids);
  for (size_t i = 0; pids && i < sp_reg_n; i++)
    if (sp_reg[i].announced) pids[m++] = sp_reg[i].pid;
  pthread_mutex_unlock(&sp_mu);
  if (!pids) {
    napi_throw_error(env, NULL, "reapSpawned: out of memory");
    return NULL;
  }
  for (size_t i = 0; i < m; i++) reap_registered(env, pids[i], arr, &n);
  free(pids);
  return arr;
}

static napi_value SpawnedAdopt(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t pid;
  if (!get_args(env, info, "spawnedAdopt", 1, argv) || !to_int(env, argv[0], "spawnedAdopt", "pid", 1, INT32_MAX, &pid))
    return NULL;
  pthread_mutex_lock(&sp_mu);
  bool ok = reg_add((pid_t)pid, true);
  pthread_mutex_unlock(&sp_mu);
  if (!ok) napi_throw_error(env, NULL, "spawnedAdopt: out of memory");
  return NULL;
}

static napi_value IsSpawned(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int64_t pid;
  if (!get_args(env, info, "isSpawned", 1, argv) || !to_int(env, argv[0], "isSpawned", "pid", 0, INT32_MAX, &pid))
    return NULL;
  pthread_mutex_lock(&sp_mu);
  bool yes = reg_find((pid_t)pid) >= 0;
  pthread_mutex_unlock(&sp_mu);
  CHECK_NULL(env, napi_get_boolean(env, yes, &result));
  return result;
}

static napi_value SpawnsInFlight(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  pthread_mutex_lock(&sp_mu);
  int n = sp_in_flight;
  pthread_mutex_unlock(&sp_mu);
  CHECK_NULL(env, napi_create_int32(env, n, &result));
  return result;
}
