#!/usr/bin/env bash
# The NATS figures of docs/benchmarks.md, side by side in one run of a release hookctl:
#
#   * publish storm: `hookctl fire --hook nats://... --events $EVENTS` (each event published to
#     JetStream, its ack awaited; a file-store nats-server on loopback);
#   * /bin/true: the direct storm (`fire --hook /bin/true`) and the relay (`relay --max-events`
#     over a stream holding $EVENTS events, running /bin/true);
#   * HTTP: the direct storm against the peer's loopback sink and the relay calling the same URL.
#
# Each round uses a stream of its own (subjects bench.<round>.<kind>.>), and the order of the
# direct and relayed lines alternates from round to round. The relay's rate is events over the
# time from its first message to its last ack, as fire's is events over its storm.
#
# Usage: scripts/bench-nats.sh [ROUNDS]      (default 5)
# Environment: EVENTS=10000  SETTLE=1  SKIP_BUILD=1  PEER_DIR=../shared/peer  OUT=target/bench
#              ONLY_HTTP=1 (skip the /bin/true lines)  ONLY_TRUE=1 (skip the HTTP lines and the sink)
# Needs: nats-server (Debian), go (to build the peer's sink if $PEER_DIR/bin/sink is missing).
set -euo pipefail
ROUNDS=${1:-5}
EVENTS=${EVENTS:-10000}
SETTLE=${SETTLE:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=${PEER_DIR:-$ROOT/../shared/peer}
OUT=${OUT:-$ROOT/target/bench}
HOOKCTL=${CARGO_TARGET_DIR:-$ROOT/target}/release/hookctl
mkdir -p "$OUT"
STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$OUT/nats-$STAMP.tsv
TMP=$(mktemp -d)
NATS_PID= SINK_PID=
cleanup() {
  [ -n "$NATS_PID" ] && kill "$NATS_PID" 2>/dev/null && wait "$NATS_PID" 2>/dev/null || true
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p hook-cli --manifest-path "$ROOT/Cargo.toml" >&2

SINK=$PEER/bin/sink
if [ -n "${ONLY_TRUE:-}" ]; then
  SINK=true
elif [ ! -x "$SINK" ]; then
  mkdir -p "$TMP/peer"
  (cd "$PEER/sink" && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE="$TMP/gocache" go build -o "$TMP/peer/sink" .)
  SINK=$TMP/peer/sink
fi
"$SINK" -port-file "$TMP/sink.port" -keep 0 >"$TMP/sink.log" 2>&1 &
SINK_PID=$!
mkdir -p "$TMP/ports" "$TMP/store"
nats-server -a 127.0.0.1 -p -1 -js -sd "$TMP/store" --ports_file_dir "$TMP/ports" >"$TMP/nats.log" 2>&1 &
NATS_PID=$!
[ -n "${ONLY_TRUE:-}" ] && echo 0 >"$TMP/sink.port"
for _ in $(seq 100); do [ -s "$TMP/sink.port" ] && ls "$TMP"/ports/*.ports >/dev/null 2>&1 && break; sleep 0.05; done
sleep 0.2
HTTP_URL="http://127.0.0.1:$(cat "$TMP/sink.port")/hook"
NATS_URL=$(grep -o 'nats://127.0.0.1:[0-9]*' "$TMP"/ports/*.ports | head -1)
echo "nats-server $(nats-server --version | awk '{print $2}') at $NATS_URL; sink at $HTTP_URL; $ROUNDS rounds of $EVENTS events" >&2

rate() { tail -1 "$1" | sed -n 's/.*events_per_s=\([0-9]*\).*/\1/p'; }
check() { grep -q "^events=$EVENTS failed=0 " <(tail -1 "$1") || { echo "FAILED: $(tail -1 "$1")" >&2; cat "$1" >&2; exit 1; }; }
run() { # name, then the command; records name and events/s
  local name=$1; shift
  sleep "$SETTLE"
  env -i PATH=/usr/bin:/bin HOME="$TMP" "$@" >"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
  check "$TMP/out"
  printf '%s\t%s\t%s\n' "$round" "$name" "$(rate "$TMP/out")" >>"$RAW"
  printf '  %-14s %s\n' "$name" "$(tail -1 "$TMP/out")" >&2
}

printf 'round\tline\tevents_per_s\n' >"$RAW"
for round in $(seq "$ROUNDS"); do
  echo "round $round" >&2
  P=bench.r$round
  nats_env() { echo SFTPGO_NATS__STREAM="BENCH_$round$1" SFTPGO_NATS__SUBJECT_PREFIX="$P.$1"; }
  # The publish storms also fill the streams the relays consume.
  run nats-storm env $(nats_env true) "$HOOKCTL" --config-dir "$TMP" fire --hook "$NATS_URL" --events "$EVENTS" --username 'u{n}' --duration-ms 5
  [ -n "${ONLY_TRUE:-}" ] || run nats-storm-2 env $(nats_env http) "$HOOKCTL" --config-dir "$TMP" fire --hook "$NATS_URL" --events "$EVENTS" --username 'u{n}' --duration-ms 5
  direct_true() { run direct-true "$HOOKCTL" --config-dir "$TMP" fire --hook /bin/true --events "$EVENTS" --username 'u{n}' --duration-ms 5; }
  relay_true() { run relay-true env $(nats_env true) SFTPGO_COMMON__POST_DISCONNECT_HOOK=/bin/true "$HOOKCTL" --config-dir "$TMP" relay --from "$NATS_URL" --max-events "$EVENTS"; }
  direct_http() { run direct-http "$HOOKCTL" --config-dir "$TMP" fire --hook "$HTTP_URL" --events "$EVENTS" --username 'u{n}' --duration-ms 5; }
  relay_http() { run relay-http env $(nats_env http) SFTPGO_COMMON__POST_DISCONNECT_HOOK="$HTTP_URL" "$HOOKCTL" --config-dir "$TMP" relay --from "$NATS_URL" --max-events "$EVENTS"; }
  if [ -n "${ONLY_TRUE:-}" ]; then
    direct_http() { :; }
    relay_http() { :; }
  fi
  if [ -n "${ONLY_HTTP:-}" ]; then
    direct_true() { :; }
    relay_true() { :; }
  fi
  if [ $((round % 2)) = 1 ]; then
    direct_true; relay_true; direct_http; relay_http
  else
    relay_true; direct_true; relay_http; direct_http
  fi
done

echo >&2
echo "raw: $RAW" >&2
python3 - "$RAW" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]).read().splitlines()[1:]:
    _, name, rate = line.split('\t')
    rows[name].append(int(rate))
med = {k: statistics.median(v) for k, v in rows.items()}
print("| line | events/s min | median | max |")
print("|---|---|---|---|")
for name in ["nats-storm", "nats-storm-2", "direct-true", "relay-true", "direct-http", "relay-http"]:
    v = rows.get(name)
    if not v:
        continue
    print(f"| {name} | {min(v):,} | {med[name]:,.0f} | {max(v):,} |")
print()
if 'relay-true' in med:
    print(f"relay/direct, /bin/true: {med['relay-true'] / med['direct-true']:.0%} (medians)")
if 'relay-http' in med:
    print(f"relay/direct, HTTP:      {med['relay-http'] / med['direct-http']:.0%} (medians)")
PY
