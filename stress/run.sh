#!/usr/bin/env bash
# The long versions of issue 6's checks, run by hand:
#   stress/run.sh --seed S --duration D
# D (seconds, default 600) bounds the whole run: faults and clock edges first (seconds),
# then the crash loop (D/3, at most 60 s), then contention seeds S, S+1, ... while time
# is left (at least one). Prints what it did and every violation; exits 1 on any.
# FLASHSALE_BIN=path skips the release build.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

seed=1 duration=600
while (($#)); do
    case $1 in
        --seed) seed=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        -h | --help) sed -n '2,8p' "$0" | cut -c3-; exit 0 ;;
        *) echo "usage: stress/run.sh --seed S --duration SECONDS" >&2; exit 2 ;;
    esac
done
[[ $seed =~ ^[0-9]+$ && $duration =~ ^[0-9]+$ ]] || { echo "stress/run.sh: --seed and --duration take whole numbers" >&2; exit 2; }

need_tools
flashsale_binary
VIOLATIONS=$(mktemp)
export VIOLATIONS
start=$(now_ms)
say "stress: seed $seed, duration ${duration} s, $("$FLASHSALE" --version), $(nproc) cores"

nice -n 10 "$STRESS_DIR/faults.sh"
nice -n 10 "$STRESS_DIR/clock.sh" --seed "$seed"

crash_seconds=$((duration / 3 < 60 ? duration / 3 : 60))
((crash_seconds < 5)) && crash_seconds=5
nice -n 10 "$STRESS_DIR/crash.sh" --seed "$seed" --seconds "$crash_seconds"

seeds=()
s=$seed
while :; do
    nice -n 10 "$STRESS_DIR/contention.sh" --seed "$s"
    seeds+=("$s")
    s=$((s + 1))
    elapsed=$(( ($(now_ms) - start) / 1000 ))
    # Another seed only if it can finish in time (each takes about as long as the last).
    per=$(( elapsed / ${#seeds[@]} ))
    ((elapsed + per <= duration)) || break
done

elapsed=$(( ($(now_ms) - start) / 1000 ))
count=$(violation_count)
say "stress: seed $seed: faults, clock edges, crash ${crash_seconds} s, contention seeds ${seeds[*]} (64 x 500 each) in ${elapsed} s: $count violations"
if ((count)); then
    cut -f1 "$VIOLATIONS" | sort | uniq -c | sed 's/^/  /'
    exit 1
fi
