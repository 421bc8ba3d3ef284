#!/usr/bin/env bash
# Reproduces every figure of docs/benchmarks.md: our hook path (`hookctl fire`) against the Go
# rebuild of SFTPGo's (`../shared/peer/bin/sftpgo-hookpath`), side by side on the same loopback
# sink, with the machine's ceilings measured in the same run:
#
#   * HTTP storm of $HTTP_EVENTS events (default 10,000) against the peer sink; ceiling: `wrk`
#     with $CEIL_CONNS keep-alive connections (default 64) against the same sink and URL.
#     With SPOOL=1 (default) also ours with the durable spool on (`ours-spool`: hooks.spool.dir
#     set, a fresh spool per run; the append of all events is inside the measured time), next to
#     ours with it off in the same run, and the on/off ratios of rate and peak RSS; the same
#     for the program storms below.
#   * program storm of $PROG_EVENTS events (default 2,000) of /bin/true and of a small shell
#     script; ceiling: a tight posix_spawn-and-wait loop in C on $SPAWN_THREADS threads (default
#     nproc + 1, as many as hookctl's program runtime has workers), compiled here into a
#     temporary directory. Also, as a reference for our own overhead (not a ceiling), the same
#     loop doing what the spec requires of a run: pipes read through epoll, a pidfd, a process
#     group (`c-required`).
#
# Every run alternates ours and SFTPGo's (the order flips from run to run), and each program runs
# under `/usr/bin/time -v` for its peak RSS. The summary gives min/median/max per line and the
# ratios of the medians; the raw per-run numbers are kept next to it.
#
# Usage: scripts/bench.sh [RUNS]            (from anywhere; default RUNS=5)
# Environment:
#   HTTP_EVENTS=10000 PROG_EVENTS=2000 CEIL_CONNS=64 WRK_SECONDS=5 SPAWN_THREADS=$(($(nproc)+1))
#   CONCURRENCY=      if set, passed to `hookctl fire --concurrency` (default: the dispatcher's 150)
#   EXTRA_CONCURRENCY="64"  extra HTTP lines for ours with these --concurrency values ("" for none)
#   SETTLE=1          seconds of pause before every measured command
#   SPOOL=1           also the storms with the spool on ("0" to skip)
#   PROGRAMS=1        the program storms ("0": HTTP only)
#   OUT=target/bench  where results-<timestamp>.{tsv,md} are written
#   SKIP_BUILD=1      use the existing release hookctl (under $CARGO_TARGET_DIR if set, else target/)
#   PEER_DIR=../shared/peer   where the Go peer (sink, sftpgo-hookpath, build.sh) is
#
# Needs: cargo, gcc, wrk, GNU time (/usr/bin/time). As root on Debian the missing ones are
# installed with apt-get (wrk, time, gcc); the peer is built with ../shared/peer/build.sh if needed.
set -euo pipefail

RUNS=${1:-${RUNS:-5}}
HTTP_EVENTS=${HTTP_EVENTS:-10000}
PROG_EVENTS=${PROG_EVENTS:-2000}
CEIL_CONNS=${CEIL_CONNS:-64}
WRK_SECONDS=${WRK_SECONDS:-5}
SPAWN_THREADS=${SPAWN_THREADS:-$(($(nproc) + 1))}
CONCURRENCY=${CONCURRENCY:-}
EXTRA_CONCURRENCY=${EXTRA_CONCURRENCY-64}
SETTLE=${SETTLE:-1}
SPOOL=${SPOOL:-1}
PROGRAMS=${PROGRAMS:-1}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=${PEER_DIR:-$ROOT/../shared/peer}
OUT=${OUT:-$ROOT/target/bench}
HOOKCTL=${CARGO_TARGET_DIR:-$ROOT/target}/release/hookctl
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
RAW=$OUT/results-$STAMP.tsv
SUMMARY=$OUT/results-$STAMP.md

log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- tools
need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/bin/time ] || need+=(time)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${need[*]} from Debian"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    log "missing: ${need[*]} (Debian: apt-get install -y ${need[*]})"
    exit 2
  fi
fi

# ---------------------------------------------------------------- builds
if [ -z "${SKIP_BUILD:-}" ]; then
  log "building hookctl (release)"
  (cd "$ROOT" && cargo build --release -p hook-cli >&2)
fi
if [ ! -x "$PEER/bin/sink" ] || [ ! -x "$PEER/bin/sftpgo-hookpath" ]; then
  log "building the peer"
  "$PEER/build.sh" >&2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hook-bench.XXXXXX")
SINK_PID=
cleanup() {
  if [ -n "$SINK_PID" ]; then kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# The spawn ceiling: posix_spawn + waitpid as fast as possible, N spawns over T threads. With
# `required` as 4th argument, the same loop does what the spec requires of a hook program run (a
# reference for our own overhead, not a ceiling): stdin from /dev/null, stdout and stderr to pipes
# read to EOF through epoll, the exit awaited through a pidfd in the same epoll, a new process
# group, SIGPIPE at its default (D6, D7).
cat >"$TMP/spawnloop.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static long per_thread;
static const char *prog;
static int devnull;
static void *worker(void *arg) {
  (void)arg;
  char *argv[] = {(char *)prog, NULL};
  char *envp[] = {"SFTPGO_CONNECTION_IP=203.0.113.7", NULL};
  for (long i = 0; i < per_thread; i++) {
    pid_t pid;
    int st;
    if (posix_spawn(&pid, prog, NULL, NULL, argv, envp) != 0) { perror("posix_spawn"); exit(1); }
    if (waitpid(pid, &st, 0) < 0) { perror("waitpid"); exit(1); }
  }
  return NULL;
}
static void *worker_required(void *arg) {
  (void)arg;
  char *argv[] = {(char *)prog, NULL};
  char *envp[] = {"SFTPGO_CONNECTION_IP=203.0.113.7", "SFTPGO_CONNECTION_USERNAME=alice",
                  "SFTPGO_CONNECTION_DURATION=1234", "SFTPGO_CONNECTION_PROTOCOL=SFTP", NULL};
  int ep = epoll_create1(EPOLL_CLOEXEC);
  char buf[8192];
  for (long i = 0; i < per_thread; i++) {
    int o[2], e[2];
    if (pipe2(o, O_CLOEXEC) || pipe2(e, O_CLOEXEC)) { perror("pipe2"); exit(1); }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, devnull, 0);
    posix_spawn_file_actions_adddup2(&fa, o[1], 1);
    posix_spawn_file_actions_adddup2(&fa, e[1], 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    sigset_t empty, def;
    sigemptyset(&empty); sigemptyset(&def); sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigmask(&at, &empty);
    posix_spawnattr_setsigdefault(&at, &def);
    pid_t pid;
    if (posix_spawn(&pid, prog, &fa, &at, argv, envp) != 0) { perror("posix_spawn"); exit(1); }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(o[1]); close(e[1]);
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int one = 1;
    ioctl(o[0], FIONBIO, &one); ioctl(e[0], FIONBIO, &one);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
    ev.data.fd = o[0]; epoll_ctl(ep, EPOLL_CTL_ADD, o[0], &ev);
    ev.data.fd = e[0]; epoll_ctl(ep, EPOLL_CTL_ADD, e[0], &ev);
    ev.data.fd = pfd; epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &ev);
    int open_o = 1, open_e = 1, exited = 0;
    while (open_o || open_e || !exited) {
      struct epoll_event evs[3];
      int n = epoll_wait(ep, evs, 3, -1);
      for (int k = 0; k < n; k++) {
        int fd = evs[k].data.fd;
        if (fd == pfd) {
          siginfo_t si = {0};
          if (waitid(P_PIDFD, pfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid) exited = 1;
        } else {
          ssize_t r;
          while ((r = read(fd, buf, sizeof buf)) > 0) {}
          if (r == 0) { if (fd == o[0]) open_o = 0; else open_e = 0; }
        }
      }
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, o[0], NULL); epoll_ctl(ep, EPOLL_CTL_DEL, e[0], NULL);
    epoll_ctl(ep, EPOLL_CTL_DEL, pfd, NULL);
    close(o[0]); close(e[0]); close(pfd);
  }
  return NULL;
}
int main(int argc, char **argv) {
  prog = argc > 1 ? argv[1] : "/bin/true";
  long n = argc > 2 ? atol(argv[2]) : 2000;
  int threads = argc > 3 ? atoi(argv[3]) : 2;
  int required = argc > 4 && strcmp(argv[4], "required") == 0;
  if (threads < 1 || threads > 64) threads = 2;
  devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  per_thread = n / threads;
  pthread_t t[64];
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, required ? worker_required : worker, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  printf("spawns=%ld elapsed_ms=%.1f spawns_per_s=%.0f\n", per_thread * threads, s * 1000, (double)(per_thread * threads) / s);
  return 0;
}
EOF
gcc -O2 -pthread -o "$TMP/spawnloop" "$TMP/spawnloop.c"

# The small shell-script hook: reads its variables, one process (echo is a builtin).
cat >"$TMP/hook.sh" <<'EOF'
#!/bin/sh
echo "$SFTPGO_CONNECTION_USERNAME $SFTPGO_CONNECTION_IP $SFTPGO_CONNECTION_PROTOCOL $SFTPGO_CONNECTION_DURATION" >/dev/null
EOF
chmod +x "$TMP/hook.sh"
mkdir -p "$TMP/config"   # an empty config dir: built-in (SFTPGo) defaults for both
# The same defaults plus a spool (hooks.spool.dir = spool, relative to this config dir).
mkdir -p "$TMP/spoolconfig"
printf '{"hooks": {"spool": {"dir": "spool"}}}\n' >"$TMP/spoolconfig/sftpgo.json"

# ---------------------------------------------------------------- the sink
"$PEER/bin/sink" -port-file "$TMP/sink.port" -keep 0 >"$TMP/sink.log" 2>&1 &
SINK_PID=$!
for _ in $(seq 100); do [ -s "$TMP/sink.port" ] && break; sleep 0.05; done
PORT=$(cat "$TMP/sink.port")
URL="http://127.0.0.1:$PORT/hook"
sink_count() { curl -fsS "http://127.0.0.1:$PORT/__count" 2>/dev/null || wrk_count; }
wrk_count() { echo "?"; }

# Same event for both: the peer's flags and ours.
IP=203.0.113.7 USERNAME=alice DURATION_MS=1234 PROTO=SFTP
PEER_EVENT=(-ip "$IP" -username "$USERNAME" -duration-ms "$DURATION_MS" -protocol "$PROTO")
OUR_EVENT=(--ip "$IP" --username "$USERNAME" --duration-ms "$DURATION_MS" --protocol "$PROTO")
# The exact request both send (the ceiling uses it too).
QUERY="connection_duration=$DURATION_MS&ip=$IP&protocol=$PROTO&username=$USERNAME"

# A pause before every measured command, so that none inherits the previous one's aftermath (the
# sink's garbage collection after SFTPGo's 10,000 connections, sockets closing, reaped children).
settle() { sleep "$SETTLE"; }

# Runs "$@" under GNU time; prints "rate rss_kb failed" from the program's last line.
timed() {
  local out=$TMP/out err=$TMP/time
  settle
  if ! env -u SFTPGO_CONFIG_DIR -u SFTPGO_CONFIG_FILE /usr/bin/time -v "$@" >"$out" 2>"$err"; then
    log "command failed: $*"; tail -5 "$out" "$err" >&2
  fi
  local line rate failed rss
  line=$(tail -n 1 "$out")
  rate=$(sed -n 's/.*events_per_s=\([0-9.]*\).*/\1/p; s/.*spawns_per_s=\([0-9.]*\).*/\1/p' <<<"$line" | head -1)
  failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$line")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$err")
  echo "${rate:-0} ${rss:-0} ${failed:-0}"
}

record() { # run work who rate rss failed command...
  local run=$1 work=$2 who=$3 rate=$4 rss=$5 failed=$6; shift 6
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$work" "$who" "$rate" "$rss" "$failed" "$*" >>"$RAW"
  log "  run $run $work $who: $rate/s rss=${rss}kB failed=$failed"
}

ours_http() { # run [concurrency]
  local who=ours args=()
  if [ -n "${2:-}" ]; then args=(--concurrency "$2"); who="ours-c$2"; fi
  local cmd=("$HOOKCTL" --config-dir "$TMP/config" fire --hook "$URL" --events "$HTTP_EVENTS" "${OUR_EVENT[@]}" "${args[@]}")
  local before after r
  before=$(sink_count)
  r=$(timed "${cmd[@]}")
  after=$(sink_count)
  # shellcheck disable=SC2086
  record "$1" http "$who" $r "${cmd[*]}"
  if [ "$before" != "?" ] && [ $((after - before)) -ne "$HTTP_EVENTS" ]; then
    log "  WARNING: the sink counted $((after - before)) requests, not $HTTP_EVENTS"
  fi
}
ours_spool_http() { # run: the same storm with the spool on, a fresh spool each time
  rm -rf "$TMP/spoolconfig/spool"
  local cmd=("$HOOKCTL" --config-dir "$TMP/spoolconfig" fire --hook "$URL" --events "$HTTP_EVENTS" "${OUR_EVENT[@]}")
  [ -n "$CONCURRENCY" ] && cmd+=(--concurrency "$CONCURRENCY")
  local r; r=$(timed "${cmd[@]}")
  # shellcheck disable=SC2086
  record "$1" http ours-spool $r "${cmd[*]}"
}
peer_http() {
  local cmd=("$PEER/bin/sftpgo-hookpath" -hook "$URL" -events "$HTTP_EVENTS" "${PEER_EVENT[@]}")
  local r; r=$(timed "${cmd[@]}")
  # shellcheck disable=SC2086
  record "$1" http sftpgo $r "${cmd[*]}"
}
ceiling_http() {
  local cmd=(wrk -t2 -c"$CEIL_CONNS" -d"${WRK_SECONDS}s" "$URL?$QUERY")
  settle
  local rate; rate=$("${cmd[@]}" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')
  record "$1" http ceiling "${rate%.*}" 0 0 "${cmd[*]}"
}
ours_prog() { # run work program
  local cmd=("$HOOKCTL" --config-dir "$TMP/config" fire --hook "$3" --events "$PROG_EVENTS" "${OUR_EVENT[@]}")
  [ -n "$CONCURRENCY" ] && cmd+=(--concurrency "$CONCURRENCY")
  local r; r=$(timed "${cmd[@]}")
  # shellcheck disable=SC2086
  record "$1" "$2" ours $r "${cmd[*]}"
}
ours_spool_prog() { # run work program: the same program storm with the spool on, a fresh spool
  rm -rf "$TMP/spoolconfig/spool"
  local cmd=("$HOOKCTL" --config-dir "$TMP/spoolconfig" fire --hook "$3" --events "$PROG_EVENTS" "${OUR_EVENT[@]}")
  [ -n "$CONCURRENCY" ] && cmd+=(--concurrency "$CONCURRENCY")
  local r; r=$(timed "${cmd[@]}")
  # shellcheck disable=SC2086
  record "$1" "$2" ours-spool $r "${cmd[*]}"
}
peer_prog() {
  local cmd=("$PEER/bin/sftpgo-hookpath" -hook "$3" -events "$PROG_EVENTS" "${PEER_EVENT[@]}")
  local r; r=$(timed "${cmd[@]}")
  # shellcheck disable=SC2086
  record "$1" "$2" sftpgo $r "${cmd[*]}"
}
ceiling_prog() {
  local cmd=("$TMP/spawnloop" "$3" "$PROG_EVENTS" "$SPAWN_THREADS")
  local r; r=$(timed "${cmd[@]}")
  # shellcheck disable=SC2086
  record "$1" "$2" ceiling $r "spawnloop $3 $PROG_EVENTS $SPAWN_THREADS  (posix_spawn+waitpid, $SPAWN_THREADS threads)"
}
required_prog() {
  local cmd=("$TMP/spawnloop" "$3" "$PROG_EVENTS" "$SPAWN_THREADS" required)
  local r; r=$(timed "${cmd[@]}")
  # shellcheck disable=SC2086
  record "$1" "$2" c-required $r "spawnloop $3 $PROG_EVENTS $SPAWN_THREADS required  (C: posix_spawn with the spec's pipes, pidfd, epoll and process group, $SPAWN_THREADS threads)"
}
if [ -n "$CONCURRENCY" ]; then OURS_C=$CONCURRENCY; else OURS_C=; fi

# ---------------------------------------------------------------- runs
printf 'run\twork\twho\tevents_per_s\tpeak_rss_kb\tfailed\tcommand\n' >"$RAW"
log "sink on 127.0.0.1:$PORT; $RUNS runs; raw results in $RAW"
# One warm-up of each (page cache, sink's first connections); not recorded.
"$HOOKCTL" --config-dir "$TMP/config" fire --hook "$URL" --events 1000 >/dev/null
"$PEER/bin/sftpgo-hookpath" -hook "$URL" -events 1000 >/dev/null
for run in $(seq "$RUNS"); do
  log "run $run/$RUNS"
  if [ $((run % 2)) -eq 1 ]; then
    ours_http "$run" "$OURS_C"; peer_http "$run"
    if [ "$SPOOL" = 1 ]; then ours_spool_http "$run"; fi
  else
    if [ "$SPOOL" = 1 ]; then ours_spool_http "$run"; fi
    peer_http "$run"; ours_http "$run" "$OURS_C"
  fi
  for c in $EXTRA_CONCURRENCY; do ours_http "$run" "$c"; done
  ceiling_http "$run"
  for work in true sh; do
    [ "$PROGRAMS" = 1 ] || break
    prog=/bin/true; [ "$work" = sh ] && prog=$TMP/hook.sh
    if [ $((run % 2)) -eq 1 ]; then
      ours_prog "$run" "$work" "$prog"; peer_prog "$run" "$work" "$prog"
      if [ "$SPOOL" = 1 ]; then ours_spool_prog "$run" "$work" "$prog"; fi
    else
      if [ "$SPOOL" = 1 ]; then ours_spool_prog "$run" "$work" "$prog"; fi
      peer_prog "$run" "$work" "$prog"; ours_prog "$run" "$work" "$prog"
    fi
    ceiling_prog "$run" "$work" "$prog"
    required_prog "$run" "$work" "$prog"
  done
done

# ---------------------------------------------------------------- summary
summarise() {
  awk -F'\t' -v runs="$RUNS" -v cores="$(nproc)" -v hev="$HTTP_EVENTS" -v pev="$PROG_EVENTS" \
      -v conns="$CEIL_CONNS" -v conc="${CONCURRENCY:-150 (default)}" '
    function med(a, n,   i, j, t, b) { for (i = 1; i <= n; i++) b[i] = a[i]
      for (i = 2; i <= n; i++) { t = b[i]; for (j = i - 1; j >= 1 && b[j] > t; j--) b[j+1] = b[j]; b[j+1] = t }
      return (n % 2) ? b[(n+1)/2] : (b[n/2] + b[n/2+1]) / 2 }
    function mn(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
    function mx(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
    NR == 1 { next }
    { k = $2 SUBSEP $3; n[k]++; rate[k, n[k]] = $4; rss[k, n[k]] = $5; fail[k] += $6
      if (!(k in cmd)) cmd[k] = $7; if (!($2 in seen)) { seen[$2] = 1; works[++nw] = $2 }
      if (!(k in wseen)) { wseen[k] = 1; whos[$2, ++nwho[$2]] = $3 }
      byrun[$2, $3, $1] = $4 }
    END {
      printf "Machine: %d cores. %d runs, alternating ours and SFTPGo. Our dispatcher in-flight limit: %s.\n\n", cores, runs, conc
      printf "| work | who | events/s min | median | max | peak RSS median (MB) | failed | ours/SFTPGo (medians) | of ceiling |\n"
      printf "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
      for (w = 1; w <= nw; w++) {
        wk = works[w]
        for (i = 1; i <= nwho[wk]; i++) { who = whos[wk, i]; k = wk SUBSEP who; c = n[k]
          delete r; delete s; for (j = 1; j <= c; j++) { r[j] = rate[k, j]; s[j] = rss[k, j] }
          m[wk, who] = med(r, c); ms[wk, who] = med(s, c) / 1024; lo[wk, who] = mn(r, c); hi[wk, who] = mx(r, c) }
        for (i = 1; i <= nwho[wk]; i++) { who = whos[wk, i]; k = wk SUBSEP who
          ratio = (who != "sftpgo" && who != "ceiling" && who != "c-required" && m[wk, "sftpgo"] > 0) ? sprintf("%.2fx", m[wk, who] / m[wk, "sftpgo"]) : ""
          ofc = (who != "ceiling" && m[wk, "ceiling"] > 0) ? sprintf("%.0f%%", 100 * m[wk, who] / m[wk, "ceiling"]) : ""
          rs = (who == "ceiling" && wk == "http") ? "-" : sprintf("%.1f", ms[wk, who])
          printf "| %s | %s | %.0f | %.0f | %.0f | %s | %d | %s | %s |\n", wk, who, lo[wk, who], m[wk, who], hi[wk, who], rs, fail[k], ratio, ofc }
      }
      for (w = 1; w <= nw; w++) { wk = works[w]
        if (m[wk, "ours-spool"] > 0 && m[wk, "ours"] > 0)
          printf "\nSpool on vs off, %s storm (medians): %.0f%% of the rate (%.0f vs %.0f events/s), peak RSS %.1f vs %.1f MB (%.2fx).\n", wk, 100 * m[wk, "ours-spool"] / m[wk, "ours"], m[wk, "ours-spool"], m[wk, "ours"], ms[wk, "ours-spool"], ms[wk, "ours"], ms[wk, "ours-spool"] / (ms[wk, "ours"] > 0 ? ms[wk, "ours"] : 1) }
      printf "\nPeak RSS, HTTP storm: ours %.1f MB, SFTPGo %.1f MB: ours is 1/%.1f of SFTPGo.\n", ms["http", "ours"], ms["http", "sftpgo"], (ms["http", "ours"] > 0 ? ms["http", "sftpgo"] / ms["http", "ours"] : 0)
      for (w = 1; w <= nw; w++) { wk = works[w]
        if (m[wk, "c-required"] > 0)
          printf "\n%s: ours is %.0f%% of the C loop doing the work the spec requires (medians).\n", wk, 100 * m[wk, "ours"] / m[wk, "c-required"] }
      printf "\nPer-run ratios (ours/SFTPGo, ours/ceiling):\n\n"
      for (w = 1; w <= nw; w++) { wk = works[w]; line = ""
        for (rn = 1; rn <= runs; rn++) if (byrun[wk, "sftpgo", rn] > 0 && byrun[wk, "ceiling", rn] > 0)
          line = line sprintf(" %.2fx/%.0f%%", byrun[wk, "ours", rn] / byrun[wk, "sftpgo", rn], 100 * byrun[wk, "ours", rn] / byrun[wk, "ceiling", rn])
        printf "* %s:%s\n", wk, line }
      for (w = 1; w <= nw; w++) { wk = works[w]; line = ""
        for (rn = 1; rn <= runs; rn++) if (byrun[wk, "ours-spool", rn] > 0 && byrun[wk, "ours", rn] > 0)
          line = line sprintf(" %.0f%%", 100 * byrun[wk, "ours-spool", rn] / byrun[wk, "ours", rn])
        if (line != "") printf "* %s spool on/off:%s\n", wk, line }
      printf "\nCommands (HTTP_EVENTS=%d, PROG_EVENTS=%d, wrk connections=%d):\n\n", hev, pev, conns
      for (w = 1; w <= nw; w++) { wk = works[w]; for (i = 1; i <= nwho[wk]; i++) { who = whos[wk, i]
        printf "* %s / %s: `%s`\n", wk, who, cmd[wk SUBSEP who] } }
    }' "$RAW"
}
summarise | tee "$SUMMARY"
log "summary: $SUMMARY"
