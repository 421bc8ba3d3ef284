#!/usr/bin/env bash
# Draws the headline comparison of scripts/bench.sh as an SVG bar chart (gnuplot): events per
# second, medians, of ours, SFTPGo's path and the machine's ceiling, for the HTTP storm and the
# two program storms; with a spool column when the results have one.
#
#   [NOTE="where the figures come from"] scripts/bench-chart.sh [RESULTS] [OUT.svg]
#
# RESULTS is one of
#   * a bench.sh raw file, target/bench/results-<timestamp>.tsv (medians computed here);
#   * a bench.sh summary, target/bench/results-<timestamp>.md, or docs/benchmarks.md: the first
#     results table (`| work | who | events/s min | median | ...`) is read, its median column.
# Default: the newest target/bench/results-*.tsv, else docs/benchmarks.md. OUT default:
# docs/benchmarks.svg. Rows are matched by their `who`: `ours` (the default in-flight limit; the
# `--concurrency` variants are left out), `sftpgo`, `ceiling`, and any `who` containing `spool`
# (ours with hooks.spool.dir set), drawn as "ours + spool".
#
# Needs gnuplot (Debian: gnuplot-nox; installed here if missing and apt-get is there).
set -euo pipefail
cd "$(dirname "$0")/.."

in=${1:-}
out=${2:-docs/benchmarks.svg}
if [ -z "$in" ]; then
  in=$(ls -t target/bench/results-*.tsv 2>/dev/null | head -1 || true)
  [ -n "$in" ] || in=docs/benchmarks.md
fi
[ -r "$in" ] || { echo "bench-chart: cannot read $in" >&2; exit 2; }
if ! command -v gnuplot >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null
  else
    echo "bench-chart: gnuplot is needed (Debian: apt-get install gnuplot-nox)" >&2; exit 2
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "work<TAB>who<TAB>median" lines, who normalised to ours / sftpgo / ceiling / spool.
case "$in" in
  *.tsv)
    awk -F'\t' 'NR > 1 { print $2 "\t" $3 "\t" $4 }' "$in" |
      awk -F'\t' '
        function norm(w) { w = tolower(w)
          if (w ~ /spool/) return "spool"; if (w ~ /^ours$/) return "ours"
          if (w ~ /sftpgo/) return "sftpgo"; if (w ~ /^ceiling/) return "ceiling"; return "" }
        { who = norm($2); if (who == "") next; k = $1 "\t" who; n[k]++; v[k, n[k]] = $3 + 0 }
        END { for (k in n) { m = n[k]
          for (i = 1; i <= m; i++) b[i] = v[k, i]
          for (i = 2; i <= m; i++) { t = b[i]; for (j = i - 1; j >= 1 && b[j] > t; j--) b[j+1] = b[j]; b[j+1] = t }
          med = (m % 2) ? b[(m+1)/2] : (b[m/2] + b[m/2+1]) / 2
          print k "\t" med } }' >"$tmp/medians"
    source_note="$(basename "$in"), medians of $(awk -F'\t' 'NR > 1 { print $1 }' "$in" | sort -un | wc -l) runs"
    ;;
  *)
    # The first table whose header starts with "| work | who |".
    awk -F'|' '
      function trim(s) { gsub(/^[ \t*`]+|[ \t*`]+$/, "", s); gsub(/\*\*/, "", s); return s }
      function norm(w) { w = tolower(w)
        if (w ~ /concurrency/) return ""; if (w ~ /spool/) return "spool"
        if (w ~ /ceiling/) return "ceiling"; if (w ~ /sftpgo/) return "sftpgo"
        if (w ~ /c-required/) return ""; if (w ~ /^ours/) return "ours"; return "" }
      function work(w) { w = tolower(w)
        if (w ~ /^http/) return "http"; if (w ~ /bin\/true/) return "true"; if (w ~ /shell/ || w ~ /^sh$/) return "sh"; return "" }
      /^\| work \| who \|/ { if (done) exit; intable = 1; next }
      intable && /^\|---/ { next }
      intable && /^\|/ { wk = work(trim($2)); who = norm(trim($3)); med = trim($5)
        gsub(/,/, "", med); if (wk != "" && who != "" && med ~ /^[0-9.]+$/) print wk "\t" who "\t" med; next }
      intable { done = 1; intable = 0 }' "$in" >"$tmp/medians"
    source_note="$(basename "$in"): its first results table (medians)"
    ;;
esac

source_note=${NOTE:-$source_note}
[ -s "$tmp/medians" ] || { echo "bench-chart: no ours/sftpgo/ceiling rows found in $in" >&2; exit 1; }
get() { awk -F'\t' -v w="$1" -v who="$2" '$1 == w && $2 == who { print $3; f = 1 } END { if (!f) print "NaN" }' "$tmp/medians"; }
has_spool=$(awk -F'\t' '$2 == "spool" { f = 1 } END { print f ? 1 : 0 }' "$tmp/medians")

# One data file per panel: label ours [spool] sftpgo ceiling (the spool bar next to ours).
row() { # label work
  local line="\"$1\" $(get "$2" ours)"
  [ "$has_spool" = 1 ] && line="$line $(get "$2" spool)"
  echo "$line $(get "$2" sftpgo) $(get "$2" ceiling)"
}
row "HTTP, 10,000 events" http >"$tmp/http.dat"
{ row "/bin/true, 2,000" true; row "shell script, 2,000" sh; } >"$tmp/prog.dat"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NaN" || b == "NaN" || b == 0) print "?"; else printf "%.1fx", a / b }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NaN" || b == "NaN" || b == 0) print "?"; else printf "%.0f%%", 100 * a / b }'; }
h_ours=$(get http ours); h_peer=$(get http sftpgo); h_ceil=$(get http ceiling)
t_ours=$(get true ours); t_peer=$(get true sftpgo); t_ceil=$(get true ceiling)
http_title="HTTP: ours $(ratio "$h_ours" "$h_peer") SFTPGo's path, $(pct "$h_ours" "$h_ceil") of the ceiling"
prog_title="Programs: ours $(ratio "$t_ours" "$t_peer") SFTPGo's path, $(pct "$t_ours" "$t_ceil") of the ceiling (/bin/true)"

ncols=3; [ "$has_spool" = 1 ] && ncols=4
# The plot command of one panel: the bars, then each bar's value above it.
plot_cmd() { # data ceiling-title
  local cmd="plot \"$1\" using 2:xtic(1) title \"ours\" lc rgb \"#1f6fb4\"" c=3
  if [ "$has_spool" = 1 ]; then
    cmd="$cmd, '' using 3 title \"ours + spool\" lc rgb \"#2ca25f\""; c=4
  fi
  cmd="$cmd, '' using $c title \"SFTPGo's path\" lc rgb \"#d9822b\""
  cmd="$cmd, '' using $((c + 1)) title \"$2\" lc rgb \"#8c8c8c\""
  local i
  for i in $(seq 0 $((ncols - 1))); do
    cmd="$cmd, '' using (x($i)):$((i + 2)):(sprintf(\"%.0f\", \$$((i + 2)))) with labels offset 0,0.7 font \",9\" notitle"
  done
  echo "$cmd"
}
cat >"$tmp/chart.gp" <<EOF
set terminal svg size 980,430 dynamic enhanced font "DejaVu Sans,12" background rgb "white"
set output "$out"
set datafile missing "NaN"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.95
set grid ytics lc rgb "#dddddd"
set ylabel "events per second (median)"
set format y "%.0f"
set key below horizontal maxrows 1 width -2 noenhanced
set yrange [0:*]
set offsets 0, 0, graph 0.15, 0
n = $ncols
w = 1.0 / (n + 1)
x(i) = \$0 - (n - 1) / 2.0 * w + i * w
set multiplot layout 1,2 title "Post-disconnect hooks: events/s, ours against SFTPGo's path and the machine's ceiling\n{/*0.8 $source_note; 2 cores}" font ",13"
set title "$http_title" font ",11" noenhanced
$(plot_cmd "$tmp/http.dat" "ceiling (wrk, 64 connections)")
set title "$prog_title" font ",11" noenhanced
$(plot_cmd "$tmp/prog.dat" "ceiling (posix_spawn loop)")
unset multiplot
EOF
gnuplot "$tmp/chart.gp"
echo "bench-chart: $out from $in" >&2
