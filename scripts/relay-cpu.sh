#!/usr/bin/env bash
# Where the CPU of a relayed HTTP storm goes, and A/B of relay builds: per round and per hookctl
# binary given, publishes 10,000 events to a fresh stream, relays them to the peer's loopback
# sink (`hookctl relay --max-events`), and prints the relay's rate, the relay's CPU (user+system,
# GNU time) and the CPU that nats-server and the sink used meanwhile (/proc/<pid>/stat), then the
# same for the direct storm (`hookctl fire` at the sink) of the first binary. Binaries alternate
# within each round. Used for docs/benchmarks.md, "NATS: publish storm and the relay".
#
# Usage: scripts/relay-cpu.sh ROUNDS HOOKCTL [HOOKCTL...]
# Environment: EVENTS=10000  PEER_DIR=../shared/peer (its bin/sink; build.sh builds it)
# Needs: nats-server (Debian), GNU time.
set -euo pipefail
ROUNDS=${1:?usage: scripts/relay-cpu.sh ROUNDS HOOKCTL...}
shift
[ $# -gt 0 ] || { echo "usage: scripts/relay-cpu.sh ROUNDS HOOKCTL..." >&2; exit 2; }
EVENTS=${EVENTS:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=${PEER_DIR:-$ROOT/../shared/peer}
TMP=$(mktemp -d)
SINK_PID= NATS_PID=
cleanup() {
  [ -n "$NATS_PID" ] && kill "$NATS_PID" 2>/dev/null && wait "$NATS_PID" 2>/dev/null || true
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
"$PEER/bin/sink" -port-file "$TMP/sink.port" -keep 0 >/dev/null 2>&1 &
SINK_PID=$!
mkdir -p "$TMP/ports" "$TMP/store"
nats-server -a 127.0.0.1 -p -1 -js -sd "$TMP/store" --ports_file_dir "$TMP/ports" >"$TMP/nats.log" 2>&1 &
NATS_PID=$!
for _ in $(seq 100); do [ -s "$TMP/sink.port" ] && ls "$TMP"/ports/*.ports >/dev/null 2>&1 && break; sleep 0.05; done
sleep 0.3
URL=http://127.0.0.1:$(cat "$TMP/sink.port")/hook
NATS_URL=$(grep -o 'nats://127.0.0.1:[0-9]*' "$TMP"/ports/*.ports | head -1)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime, clock ticks
hz=$(getconf CLK_TCK)
run() { # label, then the command: prints label, rate, its CPU, nats-server's and the sink's
  local label=$1; shift
  local n0 s0 n1 s1 out rate cpu
  sleep 0.5
  n0=$(ticks "$NATS_PID"); s0=$(ticks "$SINK_PID")
  out=$(env -i PATH=/usr/bin:/bin HOME="$TMP" /usr/bin/time -f "cpu=%U+%S" "$@" 2>&1) || {
    echo "$label failed: $out" >&2; exit 1; }
  n1=$(ticks "$NATS_PID"); s1=$(ticks "$SINK_PID")
  rate=$(sed -n 's/.*events_per_s=\([0-9]*\).*/\1/p' <<<"$out" | tail -1)
  cpu=$(sed -n 's/^cpu=\(.*\)/\1/p' <<<"$out" | tail -1)
  printf '%-50s events_per_s=%s cpu=%ss nats=%.2fs sink=%.2fs\n' "$label" "$rate" "$cpu" \
    "$(bc -l <<<"($n1 - $n0) / $hz")" "$(bc -l <<<"($s1 - $s0) / $hz")"
}
n=0
for round in $(seq "$ROUNDS"); do
  echo "round $round"
  for h in "$@"; do
    n=$((n + 1))
    env -i PATH=/usr/bin:/bin HOME="$TMP" SFTPGO_NATS__STREAM="R$n" SFTPGO_NATS__SUBJECT_PREFIX="r.$n" \
      "$1" --config-dir "$TMP" fire --hook "$NATS_URL" --events "$EVENTS" --username 'u{n}' --duration-ms 5 >/dev/null
    run "relay $h" env SFTPGO_NATS__STREAM="R$n" SFTPGO_NATS__SUBJECT_PREFIX="r.$n" \
      SFTPGO_COMMON__POST_DISCONNECT_HOOK="$URL" "$h" --config-dir "$TMP" relay --from "$NATS_URL" --max-events "$EVENTS"
  done
  run "direct $1" "$1" --config-dir "$TMP" fire --hook "$URL" --events "$EVENTS" --username 'u{n}' --duration-ms 5
done
