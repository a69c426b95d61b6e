#!/usr/bin/env bash
# Run stripe/einhorn's own integration suite (test/integration of a source
# checkout) against a target:
#   einhorn   real einhorn master + real einhornsh (both from EINHORN_SRC)
#   ours      einhyrningsins master + real einhornsh
#   ours-ctl  einhyrningsins master + einhyrningsinsctl
# Usage: test/einhorn-suite/run.sh EINHORN_SRC [einhorn|ours|ours-ctl] [minitest args...]
# e.g.   test/einhorn-suite/run.sh ../einhorn ours -n /signal-timeout/
# EINHORN_SRC is only read: its test/ is copied to a scratch directory.
# Environment: EHSUITE_FLAT=1 (see README), EHSUITE_LOGDIR=DIR
# (keep each master's output), EHSUITE_TEST_TIMEOUT=S (default 40).
set -u

usage() {
  echo "usage: $0 EINHORN_SRC [einhorn|ours|ours-ctl] [minitest args...]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
here=$(cd "$(dirname "$0")" && pwd)
ours_root=$(cd "$here/../.." && pwd)
src=$(cd "$1" 2>/dev/null && pwd) || { echo "$0: no directory $1" >&2; exit 2; }
target=${2:-einhorn}
shift; [ $# -ge 1 ] && shift
case "$target" in einhorn|ours|ours-ctl) ;; *) usage ;; esac
if [ ! -f "$src/lib/einhorn.rb" ] || [ ! -d "$src/test/integration" ]; then
  echo "$0: $src is not a stripe/einhorn checkout (no lib/einhorn.rb or test/integration)" >&2
  exit 2
fi
if [ "$target" != einhorn ] && [ ! -f "$ours_root/dist/einhyrningsins.cjs" ]; then
  echo "$0: einhyrningsins is not built (run npm run build in $ours_root)" >&2
  exit 2
fi
command -v ruby >/dev/null || { echo "$0: ruby not found" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/einhorn-suite.XXXXXX") || exit 1
run_id="$(basename "$work")-$$"

# Every process of the run carries EHSUITE_RUN=$run_id; whatever is left
# when the run ends (a worker that outlived its master...) is killed by pid.
kill_leftovers() {
  local sig=$1 pid f
  for f in /proc/[0-9]*/environ; do
    pid=${f#/proc/}; pid=${pid%/environ}
    [ "$pid" = $$ ] && continue
    if { tr '\0' '\n' < "$f"; } 2>/dev/null | grep -qxF "EHSUITE_RUN=$run_id"; then
      kill "-$sig" "$pid" 2>/dev/null
    fi
  done
}
cleanup() {
  trap - EXIT INT TERM
  [ -n "${ruby_pid:-}" ] && kill -TERM "$ruby_pid" 2>/dev/null
  kill_leftovers TERM
  sleep 0.2
  kill_leftovers KILL
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp -R "$src/test" "$work/test"
mkdir "$work/tmp"

# (EHSUITE_, not EINHORN_: einhyrningsins drops inherited EINHORN_* variables
# from its children's environment.)
export EHSUITE_TARGET=$target
export EHSUITE_SRC=$src
export EHSUITE_OURS=$ours_root
export EHSUITE_BIN=$here/bin
export EHSUITE_RUN=$run_id
# bin/: einhorn, einhornsh and a `bundle exec` stand-in, found by the tests'
# --reexec-as command lines and by the nested masters (see README).
export PATH="$here/bin:$PATH"
# lib/: subprocess and bundler/setup stand-ins; einhorn's lib for the suite,
# the Ruby fixtures (Einhorn::Worker) and einhorn's re-executed master.
export RUBYLIB="$here/lib:$src/lib${RUBYLIB:+:$RUBYLIB}"
export RUBYOPT="-reinhorn_suite_psych3 ${RUBYOPT:-}"
# Default command socket, lock and pid paths of any master, and mktmpdir.
export TMPDIR=$work/tmp
unset BUNDLE_GEMFILE EINHORN_SOCK_PATH EINHORN_FD_COUNT

echo "einhorn suite: target=$target src=$src" \
  "($(git -C "$src" rev-parse --short HEAD 2>/dev/null || ruby -I"$src/lib" -reinhorn/version -e 'print Einhorn::VERSION'))" \
  "${EHSUITE_FLAT:+flat}"
cd "$work" || exit 1
# Job control on for this one job: a background job of a non-interactive shell
# would otherwise start (and pass on to every master and worker) with SIGINT
# and SIGQUIT ignored. INT/TERM to run.sh reach it through cleanup().
set -m
ruby -reinhorn_suite_prelude -e '
  files = ARGV.take_while { |a| a != "--" }
  ARGV.replace(ARGV.drop(files.size + 1))
  files.each { |f| require File.expand_path(f) }
' test/integration/startup.rb test/integration/pdeathsig.rb test/integration/upgrading.rb -- "$@" &
ruby_pid=$!
set +m
wait "$ruby_pid"
rc=$?
ruby_pid=
exit "$rc"
