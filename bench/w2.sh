#!/usr/bin/env bash
# The W2 throughput benchmark: W1's 1,100,000 booking requests (bench/workload.sh) for one
# sale of 1,000,000 items, so that every one of its 1,000,000 users gets a hold: decided
# durably by `flashsale book --stream`, and by `flashsale submit --file` followed by
# `flashsale process`, whose 1,000,000 bookings `flashsale export` then writes out; beside
# it, in the same run, Redis 7 running the anchor's Lua script under redis-benchmark with
# the same stock (AOF always). Run by hand (see bench/README.md):
#
#     bench/w2.sh                                     # builds the static release first
#     FLASHSALE_BIN=path/to/flashsale bench/w2.sh     # measures that binary instead
#
# Knobs: BENCH_BATCH (process --batch, default flashsale's own), BENCH_TMPDIR (where the
# temp dir goes; it must be a real disk, not tmpfs, or fsync costs nothing),
# FLASHSALE_SCRATCH (a --scratch-path for the build). Exits 0 when every measurement ran
# and every check passed; a missed target is reported, not an error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/workload.sh"

parse_arguments none "$@"

sale=s1
inventory=1000000                # W2: W1 with a stock for every user
users=1000000                    # W1: u1..u1000000, plus one repeat after every 10th user
requests=$(( users + users / 10 ))
batch=${BENCH_BATCH:-}
rss_target_kib=$(( 32 * 1024 ))

# $SRANDOM (32 random bits per use) makes the Redis port.
require_bash_5_1

# ---------------------------------------------------------------------------------------
section "tools"
require_workload_tools

find_flashsale

# ---------------------------------------------------------------------------------------
make_workdir w2   # sets work; the trap stops Redis and removes it

describe_machine

# ---------------------------------------------------------------------------------------
section "W2: W1's $(commas $requests) requests, one sale of $(commas $inventory) items"
gen_w1 "$users" "$work/W1.ndjson" "$work/W1.csv"
check_w1 "$work/W1.ndjson" "$work/W1.csv" "$requests"
say "W1.ndjson $(stat -c %s "$work/W1.ndjson") bytes, W1.csv $(stat -c %s "$work/W1.csv") bytes (md5 $(md5sum <"$work/W1.csv" | cut -c1-12)); expected: $(commas $users) holds, $(commas $(( requests - users ))) declined at the user limit"
make_template_db

# ---------------------------------------------------------------------------------------
stream_section

# ---------------------------------------------------------------------------------------
section "submit --file W1.csv + process, then export"
say "flashsale --db q.db submit $sale --file W1.csv; flashsale --db q.db process $sale${batch:+ --batch $batch}; flashsale --db q.db export $sale"
db="$work/queue.db"
fresh_copy "$db"
timed submit "$bin" --db "$db" submit "$sale" --file "$work/W1.csv" >"$work/submit.out" ||
    die "submit failed: $(cat "$work/submit.out")"
submit_secs=$secs submit_rss=$rss
report=$(cat "$work/submit.out")
[[ "$report" == "$requests enqueued (ids 1-$requests), 0 repeated, 0 skipped" ]] ||
    die "submit: \"$report\", expected $requests enqueued, none skipped"
say "  submit   $submit_secs s = $(commas "$(rate "$requests" "$submit_secs")") requests/s; peak RSS $(commas "$submit_rss") KiB ($(mib "$submit_rss") MiB)"
process_run process "$db" "$requests"
process_secs=$secs process_rss=$rss
say "  process  $process_secs s = $(commas "$(rate "$requests" "$process_secs")") decisions/s; peak RSS $(commas "$process_rss") KiB ($(mib "$process_rss") MiB)"
e2e_secs=$(awk -v a="$submit_secs" -v b="$process_secs" 'BEGIN { printf "%.3f", a + b }')
e2e_rate=$(rate "$requests" "$e2e_secs")
say "  end to end: $(commas $requests) / (submit $submit_secs s + process $process_secs s) = $(commas "$e2e_rate") requests/s"
timed export "$bin" --db "$db" export "$sale" >"$work/export.csv" || die "export failed"
export_secs=$secs export_rss=$rss
lines=$(wc -l <"$work/export.csv")
[[ "$lines" == "$(( inventory + 1 ))" ]] || die "export: $lines lines, expected $(( inventory + 1 )) (with the header)"
say "  export   $export_secs s = $(commas "$(rate "$inventory" "$export_secs")") bookings/s ($(stat -c %s "$work/export.csv") bytes); peak RSS $(commas "$export_rss") KiB ($(mib "$export_rss") MiB)"
say "  checked: $(commas $requests) enqueued, $(commas $inventory) accepted, verify clean, $(commas $inventory) held and exported"
rm -f "$db" "$db-wal" "$db-shm" "$work/export.csv"

# ---------------------------------------------------------------------------------------
section "redis $redis_version + Lua, stock $(commas $inventory) (127.0.0.1 only, private port, appendonly yes, appendfsync always)"
redis_run always
redis_always=$redis_rate
r_stream=$(ratio "$stream_rate" "$redis_always")
r_queue=$(ratio "$e2e_rate" "$redis_always")

# ---------------------------------------------------------------------------------------
section "summary (W2: $(commas $requests) requests, $(commas $inventory) items; every check passed)"
say "redis always (-c 50 -P 100): $(commas "$redis_always") requests/s"
say "book --stream:     $(commas "$stream_rate") decisions/s ($stream_secs s) -> ${r_stream}x redis   target >= 1.0x: $(at_least "$r_stream" 1.0)"
say "submit + process:  $(commas "$e2e_rate") requests/s end to end (submit $submit_secs s + process $process_secs s) -> ${r_queue}x redis   target >= 1.0x: $(at_least "$r_queue" 1.0)"
say "peak RSS (target <= 32 MiB each):"
for run in stream submit process export; do
    kib_var="${run}_rss"
    printf '  %-8s %6.1f MiB   %s\n' "$run" "$(mib "${!kib_var}")" "$(verdict "${!kib_var}" "$rss_target_kib")"
done
say "run time: $(awk -v a="$run_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s (without the build); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
