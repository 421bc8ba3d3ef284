#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time, one after the other, at the lowest
# priority and one job each (the machine is shared). See docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS: per target, default 600. TARGET: default all of them (`cargo fuzz list`).
# Needs the nightly toolchain and cargo-fuzz (`cargo install --locked cargo-fuzz`).
# Environment: FUZZ_SANITIZER (default `none`: our crates forbid unsafe code; `address` to check
# the dependencies' unsafe code too), FUZZ_LOG_DIR (default fuzz/logs, one log per target).
#
# New inputs the fuzzer finds go to fuzz/corpus/<target>/ (commit the small, useful ones, or run
# `cargo +nightly fuzz cmin <target>` first); a crash leaves its input in fuzz/artifacts/<target>/
# and makes the script exit 1 after the remaining targets have run.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-600}"
shift || true
sanitizer="${FUZZ_SANITIZER:-none}"
log_dir="${FUZZ_LOG_DIR:-logs}"
mkdir -p "$log_dir"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Per-target libFuzzer options: the longest input worth trying, and a dictionary when there is one.
max_len() {
  case "$1" in
    retry_after) echo 128 ;;
    gourl | query) echo 1024 ;;
    *) echo 4096 ;;
  esac
}

# -a: debug assertions and overflow checks, so an arithmetic overflow is a crash too. Built once,
# then each target's binary is run directly (as `cargo fuzz run` would, without rebuilding).
nice -n 19 cargo +nightly fuzz build -a -s "$sanitizer"
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
# Where cargo put them: CARGO_TARGET_DIR when it is set (as CI or a shared build dir may do).
bin_dir="${CARGO_TARGET_DIR:-target}/$triple/release"

failed=()
for target in "${targets[@]}"; do
  dict=()
  if [ -f "dicts/$target.dict" ]; then
    dict=("-dict=dicts/$target.dict")
  fi
  mkdir -p "corpus/$target"
  log="$log_dir/$target.log"
  printf '=== %s: %s s (log: %s)\n' "$target" "$seconds" "$log"
  # -rss_limit_mb / -malloc_limit_mb: bounded memory is a property (an input that makes a parser
  # allocate more is a crash); -timeout: an input taking 10 s is a hang.
  mkdir -p "artifacts/$target"
  if nice -n 19 "$bin_dir/$target" "corpus/$target" -artifact_prefix="artifacts/$target/" \
      -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
      -rss_limit_mb=1024 -malloc_limit_mb=256 -print_final_stats=1 "${dict[@]}" \
      >"$log" 2>&1; then
    status=ok
  else
    status=CRASH
    failed+=("$target")
    tail -n 40 "$log" >&2
  fi
  # The summary: executions, coverage and corpus at the end, from libFuzzer's own lines.
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | awk '{print $2}')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | awk '{print $2}')
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | tail -1 | awk '{print $2}')
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  printf '%s: %s, %s execs (%s/s), cov %s, ft %s, corpus %s, peak RSS %s MB\n' \
    "$target" "$status" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
