#!/usr/bin/env bash
# Side-by-side comparison of commands that each print a rate as `..._per_s=N` on their last line
# (`hookctl fire`, the Go peer, the C spawn loops of scripts/bench.sh): runs them interleaved,
# ROUNDS times, and prints per label the median rate and the median CPU time per event (user +
# system of the command and its children, from `perf stat`'s task-clock), with every round's
# values. Used for the "measured side by side" figures of docs/benchmarks.md, e.g.:
#
#   scripts/ab.sh 7 2000 \
#     "before:::/tmp/hookctl.before --config-dir /tmp/empty fire --hook /bin/true --events 2000" \
#     "after:::target/release/hookctl --config-dir /tmp/empty fire --hook /bin/true --events 2000"
#
# Usage: scripts/ab.sh ROUNDS EVENTS 'label:::command' ...   (EVENTS: to divide the CPU time by)
# Needs: perf (Debian: linux-perf), bc.
set -euo pipefail

rounds=$1 events=$2
shift 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ab.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
declare -A rate cpu
for _ in $(seq "$rounds"); do
  for spec in "$@"; do
    label=${spec%%:::*} cmd=${spec#*:::}
    # shellcheck disable=SC2086
    perf stat -x, -e task-clock -o "$tmp/stat" $cmd >"$tmp/out" 2>/dev/null || true
    r=$(tail -n 1 "$tmp/out" | sed -n 's/.*_per_s=\([0-9.]*\).*/\1/p')
    ms=$(grep task-clock "$tmp/stat" | cut -d, -f1)
    rate[$label]="${rate[$label]:-} ${r%.*}"
    cpu[$label]="${cpu[$label]:-} $(echo "${ms:-0} * 1000 / $events" | bc)"
  done
done
median() { tr ' ' '\n' <<<"$*" | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }
for spec in "$@"; do
  label=${spec%%:::*}
  printf '%s: rate median %s/s, CPU %s us/event   rates:%s   CPU:%s\n' "$label" \
    "$(median ${rate[$label]})" "$(median ${cpu[$label]})" "${rate[$label]}" "${cpu[$label]}"
done
