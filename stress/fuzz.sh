#!/bin/sh
# Builds the libFuzzer targets in stress/fuzz and runs each for a number of executions,
# then prints one line of figures per target. Usage:
#   stress/fuzz.sh [--runs N] [--seconds S] [--target args|ndjson|csv|time]
# --seconds stops each target after S seconds even if it has not made N executions.
# Seeds come from stress/corpus/TARGET (committed); what the fuzzer adds goes to
# stress/out/corpus/TARGET, its log to stress/out/TARGET.log, and any crash input to
# stress/out/crashes/TARGET/ (stress/out is not committed). Runs at nice 19: the fuzzers
# take whole cores for minutes.
set -eu

runs=10000000
seconds=0
targets="args ndjson csv time"
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --target) targets="$2"; shift 2 ;;
        *) echo "usage: stress/fuzz.sh [--runs N] [--seconds S] [--target args|ndjson|csv|time]" >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
out="$here/out"
mkdir -p "$out"
# -enable-testing: the targets reach internal parsers through @testable import.
# lld: gold fails with an internal error on these binaries (dwarf_reader.cc).
build="swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing -Xswiftc -use-ld=lld"
(cd "$here/fuzz" && nice -n 19 $build) > "$out/build.log" 2>&1 || { echo "build failed; see $out/build.log" >&2; exit 1; }
bin=$(cd "$here/fuzz" && $build --show-bin-path)

printf '%-8s %12s %9s %9s %8s\n' target executions seconds exec/s crashes
status=0
for target in $targets; do
    mkdir -p "$out/corpus/$target" "$out/crashes/$target"
    log="$out/$target.log"
    start=$(date +%s.%N)
    # The output goes to a file, not a pipe: ASan's symbolizer can hold a pipe open after the run.
    # Swift's own crash backtracer would trip ASan after a failed property; libFuzzer reports it.
    SWIFT_BACKTRACE=enable=no nice -n 19 "$bin/fuzz-$target" -runs="$runs" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$out/crashes/$target/" "$out/corpus/$target" "$here/corpus/$target" \
        > "$log" 2>&1 || status=1
    end=$(date +%s.%N)
    # The last status line (`#N ... exec/s`) or the final `Done N runs` gives the count.
    executions=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p; s/^Done \([0-9][0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    crashes=$(find "$out/crashes/$target" -type f | wc -l)
    awk -v t="$target" -v n="${executions:-0}" -v s="$start" -v e="$end" -v c="$crashes" \
        'BEGIN { d = e - s; printf "%-8s %12d %9.1f %9.0f %8d\n", t, n, d, (d > 0 ? n / d : 0), c }'
done
exit $status
