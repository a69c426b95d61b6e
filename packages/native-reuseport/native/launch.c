/*
 * einhyrningsins-launch: the exec launcher the master uses to start a child.
 *
 *   einhyrningsins-launch [--setpgid] [--close-from FD] [--cwd DIR] [--umask OCTAL]
 *                         [--pdeathsig SIGNUM --ppid PID] -- PATH ARG0 [ARGS...]
 *
 *   --setpgid     setpgid(0, 0): become a process-group leader (einhorn's
 *                 setpgrp), so a terminal Ctrl-C reaches only the master.
 *   --nice N      setpriority(PRIO_PROCESS, 0, N) (einhorn's --nice ...:WORKER).
 *   --close-from  close every fd >= FD first, so the child gets exactly stdio and
 *                 the sockets it is given, whatever its parent leaked to us.
 *   --cwd DIR     chdir(DIR) (before --uid/--gid, as libuv's spawn does its cwd): the
 *                 master spawns from a thread, and a process's cwd is not per thread.
 *   --umask OCTAL umask(OCTAL) (0 to 0777), for the same reason.
 *   --uid U --gid G [--groups G1,G2,...]  setgroups([G, G1, G2, ...]) (the user's
 *                 supplementary groups, as supervisord's drop_privileges and initgroups),
 *                 setgid(G), setuid(U) (a config's user=, when the master is root),
 *                 before pdeathsig: a credential change clears it.
 *   --pdeathsig   prctl(PR_SET_PDEATHSIG, SIGNUM); then, if getppid() != PID,
 *                 the master already died: refuse to exec (einhorn's -k).
 *   EINHYRNINGSINS_LISTEN_PID=1 in the environment (--handoff systemd): it is
 *                 removed and LISTEN_PID set to our pid, the program's once exec'd.
 *   then execv(PATH, [ARG0, ARGS...]) -- no PATH search, no shell.
 *
 * Always: fds 0, 1 and 2 are put in blocking mode (O_NONBLOCK cleared), as libuv does
 * for the children Node spawns (a program must not get EAGAIN writing its stdout), and
 * signals 32-34 (the libc's own, which posix_spawn leaves ignored) get their default.
 *
 * Exit codes (only reached when nothing was exec'd):
 *     1  setup failed: setpgid/prctl error, or the parent died before pdeathsig
 *     2  bad usage, a bad --umask, or a --cwd that cannot be entered
 *   126  PATH exists but cannot be executed (EACCES, EPERM, ENOEXEC, ETXTBSY)
 *   127  any other exec failure (ENOENT, ENOTDIR, ELOOP, ...)
 *
 * It allocates nothing but the LISTEN_PID variable (the group list is static) (execv reuses our own NULL-terminated argv tail) and
 * touches no fd below --close-from except writing diagnostics to fd 2 on
 * failure, so the listening sockets (fds 3, 4, ...) and their flags pass
 * through untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define PROG "einhyrningsins-launch: "
#define USAGE "usage: einhyrningsins-launch [--setpgid] [--nice N] [--close-from FD] [--cwd DIR] [--umask OCTAL]" \
              " [--uid UID --gid GID [--groups GID,...]] [--pdeathsig SIGNUM --ppid PID] -- PATH ARG0 [ARGS...]\n"

/* write(2) "einhyrningsins-launch: " a b c d "\n" in one go, best effort. */
static void say(const char *a, const char *b, const char *c, const char *d) {
  struct iovec v[6] = {
      {(void *)PROG, sizeof PROG - 1}, {(void *)a, strlen(a)}, {(void *)b, strlen(b)},
      {(void *)c, strlen(c)},          {(void *)d, strlen(d)}, {(void *)"\n", 1},
  };
  ssize_t r = writev(2, v, 6);
  (void)r;
}

static void usage(const char *why, const char *arg) {
  say(why, arg, "", "");
  ssize_t r = write(2, USAGE, sizeof USAGE - 1);
  (void)r;
  _exit(2);
}

/* Parse a decimal integer in [min, max]; -1 if malformed. */
static long number(const char *s, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) return -1;
  return v;
}

/* The primary group, then up to NGROUPS_MAX supplementary ones (the kernel's limit). */
#define MAX_GROUPS 65536
static gid_t groups[MAX_GROUPS + 1];

/* "G1,G2,..." (decimal gids) appended to groups[]; -1 when malformed or too many. */
static int parse_groups(const char *s, size_t *n) {
  char one[16];
  while (*s) {
    size_t len = strcspn(s, ",");
    if (len == 0 || len >= sizeof one || *n > MAX_GROUPS) return -1;
    memcpy(one, s, len);
    one[len] = 0;
    long g = number(one, 0, INT_MAX);
    if (g < 0) return -1;
    groups[(*n)++] = (gid_t)g;
    s += len;
    if (*s == ',' && *++s == 0) return -1;
  }
  return 0;
}

/* Close every fd >= from: close_range(2) where the kernel has it, else /proc/self/fd. */
static int close_from(int from) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)from, ~0U, 0U) == 0) return 0;
#endif
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    long fd = number(e->d_name, 0, INT_MAX);
    if (fd >= from && fd != self) close((int)fd);
  }
  closedir(d);
  return 0;
}

int main(int argc, char **argv) {
  int setpg = 0, i;
  long closefrom = -1;
  long nice_level = 0;
  int do_nice = 0;
  long sig = 0, ppid = 0;
  long uid = -1, gid = -1;
  const char *grouplist = NULL;
  const char *cwd = NULL;
  long mask = -1;

  for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--setpgid") == 0) {
      setpg = 1;
    } else if (strcmp(argv[i], "--nice") == 0 && i + 1 < argc) {
      const char *v = argv[++i];
      int neg = v[0] == '-';
      long n = number(neg ? v + 1 : v, 0, 40);
      if (n < 0) usage("bad --nice: ", v);
      nice_level = neg ? -n : n;
      do_nice = 1;
    } else if (strcmp(argv[i], "--close-from") == 0 && i + 1 < argc) {
      if ((closefrom = number(argv[++i], 3, INT_MAX)) < 0) usage("bad --close-from: ", argv[i]);
    } else if (strcmp(argv[i], "--pdeathsig") == 0 && i + 1 < argc) {
      if ((sig = number(argv[++i], 1, _NSIG - 1)) < 0) usage("bad --pdeathsig: ", argv[i]);
    } else if (strcmp(argv[i], "--uid") == 0 && i + 1 < argc) {
      if ((uid = number(argv[++i], 0, INT_MAX)) < 0) usage("bad --uid: ", argv[i]);
    } else if (strcmp(argv[i], "--gid") == 0 && i + 1 < argc) {
      if ((gid = number(argv[++i], 0, INT_MAX)) < 0) usage("bad --gid: ", argv[i]);
    } else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc) {
      cwd = argv[++i];
      if (*cwd == 0) usage("bad --cwd: empty", "");
    } else if (strcmp(argv[i], "--umask") == 0 && i + 1 < argc) {
      const char *v = argv[++i];
      char *end;
      errno = 0;
      mask = strtol(v, &end, 8);
      if (errno || end == v || *end || *v == '-' || *v == '+' || mask < 0 || mask > 0777) usage("bad --umask (octal, 0 to 0777): ", v);
    } else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc) {
      grouplist = argv[++i];
    } else if (strcmp(argv[i], "--ppid") == 0 && i + 1 < argc) {
      if ((ppid = number(argv[++i], 1, INT_MAX)) < 0) usage("bad --ppid: ", argv[i]);
    } else {
      usage("unknown or incomplete option: ", argv[i]);
    }
  }
  if (i >= argc) usage("missing '--'", "");
  if (argc - i < 3) usage("missing PATH or ARG0 after '--'", "");
  if ((sig == 0) != (ppid == 0)) usage("--pdeathsig and --ppid go together", "");
  if ((uid < 0) != (gid < 0)) usage("--uid and --gid go together", "");
  if (grouplist && uid < 0) usage("--groups needs --uid and --gid", "");
  size_t ngroups = 0;
  if (uid >= 0) {
    groups[ngroups++] = (gid_t)gid;
    if (grouplist && parse_groups(grouplist, &ngroups) < 0) usage("bad --groups: ", grouplist);
  }
  const char *path = argv[i + 1];

  if (closefrom >= 0 && close_from((int)closefrom) < 0) {
    say("cannot close inherited fds: ", strerror(errno), "", "");
    _exit(1);
  }
  /* posix_spawn (glibc, musl) sets the libc's own signals (32, 33, 34) to SIG_IGN in the
     child, and an ignored signal stays ignored across exec: back to default, as a child of
     fork gets them (libc's sigaction refuses these numbers: the system call itself). */
  for (int s = 32; s <= 34 && s < _NSIG; s++) {
    unsigned long dfl[4] = {0, 0, 0, 0}; /* SIG_DFL, no flags, no mask: every layout */
    syscall(SYS_rt_sigaction, s, dfl, NULL, (size_t)8);
  }
  for (int fd = 0; fd <= 2; fd++) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  if (mask >= 0) umask((mode_t)mask);
  if (cwd && chdir(cwd) < 0) {
    say("cannot change to directory ", cwd, ": ", strerror(errno));
    _exit(2);
  }
  if (do_nice && setpriority(PRIO_PROCESS, 0, (int)nice_level) < 0) {
    say("setpriority: ", strerror(errno), "", "");
    _exit(1);
  }
  /* EPERM when we already lead a session (spawned detached): that is fine. */
  if (setpg && setpgid(0, 0) < 0 && getpgrp() != getpid()) {
    say("setpgid: ", strerror(errno), "", "");
    _exit(1);
  }
  if (uid >= 0) {
    if (setgroups(ngroups, groups) < 0 || setgid((gid_t)gid) < 0 || setuid((uid_t)uid) < 0) {
      say("cannot run as the program's user: ", strerror(errno), "", "");
      _exit(1);
    }
  }
  if (sig) {
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0UL, 0UL, 0UL) < 0) {
      say("prctl(PR_SET_PDEATHSIG): ", strerror(errno), "", "");
      _exit(1);
    }
    /* The master may have died before prctl: we were then reparented. */
    if (getppid() != (pid_t)ppid) {
      say("parent process died before we set pdeathsig; refusing to exec ", path, "", "");
      _exit(1);
    }
  }

  /* --handoff systemd: LISTEN_PID must be the pid that runs the program, and we exec in place. */
  const char *want_pid = getenv("EINHYRNINGSINS_LISTEN_PID");
  if (want_pid != NULL) {
    int set = strcmp(want_pid, "1") == 0;
    unsetenv("EINHYRNINGSINS_LISTEN_PID");
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    if (set && setenv("LISTEN_PID", pid, 1) < 0) {
      say("setenv(LISTEN_PID): ", strerror(errno), "", "");
      _exit(1);
    }
  }

  execv(path, &argv[i + 2]); /* argv[argc] is NULL: a ready-made argv */
  int err = errno;
  if (err == ENOENT && access(path, F_OK) == 0) {
    /* PATH is there: what is missing is what runs it, a #! interpreter or an ELF loader. */
    char buf[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    if (n > 2 && buf[0] == '#' && buf[1] == '!') {
      buf[n] = '\0';
      char *p = buf + 2, *e;
      while (*p == ' ' || *p == '\t') p++;
      for (e = p; *e && *e != ' ' && *e != '\t' && *e != '\n' && *e != '\r'; e++) {
      }
      *e = '\0';
      say("cannot execute ", path, ": its #! interpreter is not found: ", p);
    } else {
      say("cannot execute ", path, ": its ELF interpreter (dynamic loader) is not found", "");
    }
    _exit(127);
  }
  say("cannot execute ", path, ": ", strerror(err));
  _exit(err == EACCES || err == EPERM || err == ENOEXEC || err == ETXTBSY ? 126 : 127);
}
