#!/bin/sh
# mk/plot-results.sh - the figures of docs/results.md, drawn with gnuplot from a scheme's artifacts.
#
#   plot-results.sh loss    PRETRAIN_LOG|none LORA_LOG OUT.svg   training and validation loss
#   plot-results.sh metrics RESULTS.json OUT.svg            metric bars with bootstrap intervals
#
# Logs are lora-train's JSON lines ({"step":..,"loss":..,...,"val_loss":..}); the results are
# metrics' JSON (rows per method; paired bootstrap intervals of method - base). Called by
# pipeline.mk; needs gnuplot (gnuplot-nox) and jq. The output is written to OUT.tmp and renamed.
set -eu
die() { echo "plot-results.sh: $*" >&2; exit 1; }
command -v gnuplot >/dev/null || die "gnuplot not found (apt-get install gnuplot-nox)"
command -v jq >/dev/null || die "jq not found (apt-get install jq)"
tmp=$(mktemp -d)
out=
trap 'rm -rf "$tmp"; [ -z "$out" ] || rm -f "$out.tmp"' EXIT

case "${1:-}" in
loss)
    [ $# = 4 ] || die "usage: plot-results.sh loss PRETRAIN_LOG LORA_LOG OUT.svg"
    # step, loss, val_loss (NaN where the line has none); PRETRAIN_LOG "none": LoRA only
    layout="1,2"
    if [ "$2" = none ]; then layout="1,1"; else
        [ -s "$2" ] || die "$2: missing or empty"
        jq -r '[.step, .loss, (.val_loss // "NaN")] | @tsv' "$2" > "$tmp/2.tsv" || die "$2: not lora-train JSON lines"
    fi
    [ -s "$3" ] || die "$3: missing or empty"
    jq -r '[.step, .loss, (.val_loss // "NaN")] | @tsv' "$3" > "$tmp/3.tsv" || die "$3: not lora-train JSON lines"
    out=$4
    gnuplot <<GP > "$out.tmp"
set terminal svg size 900,360 dynamic font "sans,11" noenhanced
set datafile missing "NaN"
set multiplot layout $layout
set xlabel "update"
set ylabel "cross-entropy (nats/token)"
set key top right
set grid
if ("$layout" eq "1,2") {
set title "Pretraining (all parameters, all tokens)"
plot "$tmp/2.tsv" using 1:2 with lines lw 1 lc rgb "#4477aa" title "train", \
     "$tmp/2.tsv" using 1:3 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#cc3311" title "validation"
}
set title "LoRA instruction tuning (response tokens)"
plot "$tmp/3.tsv" using 1:2 with lines lw 1 lc rgb "#4477aa" title "train", \
     "$tmp/3.tsv" using 1:3 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#cc3311" title "validation"
unset multiplot
GP
    ;;
metrics)
    [ $# = 3 ] || die "usage: plot-results.sh metrics RESULTS.json OUT.svg"
    [ -s "$2" ] || die "$2: missing or empty"
    out=$3
    # long form, one bar a line: x, value, lo, hi, method index; x groups the methods by metric.
    # The interval of a method is base + the paired bootstrap interval of (method - base); base
    # itself has none (lo = hi = value).
    jq -r '
      (.rows | length) as $nm
      | (.rows | map({(.method): .}) | add) as $r
      | ([.bootstrap[] | {key: (.method + " " + .metric), value: .}] | from_entries) as $b
      | ["H@3", "N@3", "H@5", "N@5"] as $ks
      | range(0; $ks | length) as $i | range(0; $nm) as $j
      | $ks[$i] as $k | .rows[$j].method as $m | $r[$m][$k] as $v | $b[$m + " " + $k] as $ci
      | [$i * ($nm + 1) + $j, $v,
         (if $ci == null then $v else $r["base"][$k] + $ci.lo end),
         (if $ci == null then $v else $r["base"][$k] + $ci.hi end), $j] | @tsv' "$2" > "$tmp/m.tsv" \
        || die "$2: not metrics JSON with rows and bootstrap"
    nm=$(jq '.rows | length' "$2")
    keys=$(jq -r '[.rows[].method] | join(" ")' "$2")
    title=$(jq -r '"ML-100K \(.protocol), \(.part) part, \(.users) users; bars: 95% paired bootstrap interval vs base (\(.bootstrap_resamples) resamples)"' "$2")
    gnuplot <<GP > "$out.tmp"
set terminal svg size 900,380 dynamic font "sans,11" noenhanced
set title "$title" font "sans,10"
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "value"
set yrange [0:*]
set grid y
set key outside right top
nm = $nm
set xtics ("H@3" (nm-1)/2.0, "N@3" (nm+1)+(nm-1)/2.0, "H@5" 2*(nm+1)+(nm-1)/2.0, "N@5" 3*(nm+1)+(nm-1)/2.0)
set xrange [-1:4*(nm+1)-1]
colors = "#bbbbbb #4477aa #228833 #ccbb44 #ee6677 #aa3377 #66ccee"
names = "$keys"
plot for [j=0:nm-1] "$tmp/m.tsv" using (\$5 == j ? \$1 : 1/0):2 with boxes lc rgb word(colors, j+1) title word(names, j+1), \
     "$tmp/m.tsv" using 1:2:3:4 with yerrorbars lc rgb "black" lw 1.5 pt 0 notitle
GP
    ;;
*) die "usage: plot-results.sh loss|metrics ..." ;;
esac
mv "$out.tmp" "$out"
