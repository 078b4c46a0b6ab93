#!/usr/bin/env bash
# The W1 throughput benchmark: 1,100,000 booking requests for one sale of 1,000 items,
# decided durably by `flashsale book --stream`, and by `flashsale submit --file` followed
# by `flashsale process`; beside it, in the same run, `sqlite3 .import` of the same CSV and
# Redis 7 running the anchor's Lua script under redis-benchmark (AOF everysec and always).
# Run by hand (see bench/README.md):
#
#     bench/w1.sh                                     # builds the static release first
#     FLASHSALE_BIN=path/to/flashsale bench/w1.sh     # measures that binary instead
#     bench/w1.sh --big                               # adds the 11M-request memory check
#
# Knobs: BENCH_BATCH (process --batch, default flashsale's own), BENCH_TMPDIR (where the
# temp dir goes; it must be a real disk, not tmpfs, or fsync costs nothing),
# FLASHSALE_SCRATCH (a --scratch-path for the build). Exits 0 when every measurement ran
# and every check passed; a missed target is reported, not an error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/workload.sh"

parse_arguments --big "$@"   # sets big

sale=s1
inventory=1000
users=1000000                    # W1: u1..u1000000, plus one repeat after every 10th user
requests=$(( users + users / 10 ))
big_users=10000000               # W1 x10 for the memory check (--big)
big_requests=$(( big_users + big_users / 10 ))
batch=${BENCH_BATCH:-}
# Quoted from /work/shared/anchors.md, not measured here (RabbitMQ 3.10, durable queue,
# persistent messages, C client).
rabbit_publish=23000
rabbit_consume=51000
rss_target_kib=$(( 32 * 1024 ))

# say, section, die, ratio, verdict and the set-up steps are in common.sh; W1 itself, the
# timed runs and their checks in workload.sh.

# $SRANDOM (32 random bits per use) makes the Redis port.
require_bash_5_1

# ---------------------------------------------------------------------------------------
section "tools"
require_workload_tools

find_flashsale

# ---------------------------------------------------------------------------------------
make_workdir w1   # sets work; the trap stops Redis and removes it

describe_machine

# ---------------------------------------------------------------------------------------
# W1 (gen_w1 in workload.sh says how it is made).
section "W1: one sale of $(commas $inventory) items, $(commas $requests) requests"
t0=$EPOCHREALTIME
gen_w1 "$users" "$work/W1.ndjson" "$work/W1.csv"
t1=$EPOCHREALTIME
check_w1 "$work/W1.ndjson" "$work/W1.csv" "$requests"
say "generated in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s: W1.ndjson $(stat -c %s "$work/W1.ndjson") bytes, W1.csv $(stat -c %s "$work/W1.csv") bytes (md5 $(md5sum <"$work/W1.csv" | cut -c1-12))"
say "distinct users $(commas $users), repeats $(commas $(( users / 10 ))); IPv6 $(grep -c '"ip":"2001:' "$work/W1.ndjson"), bot-like agents $(grep -cE '"user_agent":"(python-requests|curl|Go-http-client|Scrapy)' "$work/W1.ndjson")"
say "first lines: $(sed -n 2p "$work/W1.csv")"
say "             $(sed -n 1p "$work/W1.ndjson")"

# One template database made by flashsale itself (schema, WAL, the sale), copied for each
# run so that each starts from the same state. The last connection to close checkpoints and
# removes the -wal file, so a plain copy is complete.
make_template_db

# ---------------------------------------------------------------------------------------
stream_section

# ---------------------------------------------------------------------------------------
section "submit --file W1.csv + process, against sqlite3 .import of the same CSV"
# Two rounds, .import / submit / submit / .import, so drifting background load favours
# neither; the ratio is of the two totals. The first submit's database is then processed.
# .import runs with sqlite3's defaults on a fresh file: one transaction, rollback journal,
# synchronous=FULL (flashsale: WAL, synchronous=FULL).
say "flashsale --db q.db submit $sale --file W1.csv; flashsale --db q.db process $sale${batch:+ --batch $batch}"
say "sqlite3 x.db 'CREATE TABLE r(user, ip, user_agent)' '.import --csv --skip 1 W1.csv r'"
import_run() {
    local round=$1 db="$work/import-$1.db" count
    rm -f "$db"
    timed "import-$round" sqlite3 "$db" 'CREATE TABLE r(user, ip, user_agent)' ".import --csv --skip 1 $work/W1.csv r" ||
        die ".import round $round failed"
    local s=$secs r=$rss
    count=$(sqlite3 "$db" 'SELECT count(*) FROM r')
    [[ "$count" == "$requests" ]] || die ".import round $round: $count rows, expected $requests"
    say "  round $round  .import  $s s = $(commas "$(rate "$requests" "$s")") rows/s; peak RSS $(commas "$r") KiB ($(sqlite3 "$db" 'PRAGMA journal_mode') journal)"
    secs=$s rss=$r
}
submit_run() {
    local round=$1 db="$work/queue-$1.db" report
    fresh_copy "$db"
    timed "submit-$round" "$bin" --db "$db" submit "$sale" --file "$work/W1.csv" >"$work/submit-$round.out" ||
        die "submit round $round failed: $(cat "$work/submit-$round.out")"
    report=$(cat "$work/submit-$round.out")
    [[ "$report" == "$requests enqueued (ids 1-$requests), 0 repeated, 0 skipped" ]] ||
        die "submit round $round: \"$report\", expected $requests enqueued, none skipped"
    say "  round $round  submit   $secs s = $(commas "$(rate "$requests" "$secs")") requests/s; peak RSS $(commas "$rss") KiB ($report)"
}
# SQLite's own floor for the same rows under flashsale's fixed choices (its schema with the
# queue index, WAL, synchronous=FULL), without flashsale: .import's rows copied by one
# INSERT ... SELECT from the sqlite3 shell. submit can at best approach it.
floor_run() {
    local db="$work/floor.db"
    fresh_copy "$db"
    timed floor sqlite3 "$db" 'PRAGMA synchronous = FULL' "ATTACH '$1' AS imported" \
        "INSERT INTO request (sale, user, ip, user_agent, submitted_at) SELECT '$sale', user, ip, user_agent, 0 FROM imported.r" ||
        die "the INSERT ... SELECT floor failed"
    say "  SQLite alone, W1 into flashsale's schema in WAL mode (INSERT ... SELECT): $secs s"
    rm -f "$db" "$db-wal" "$db-shm"
}
import_run 1; import1=$secs import_rss=$rss
rm -f "$work/import-1.db"
submit_run 1; submit1=$secs submit_rss=$rss
submit_run 2; submit2=$secs
rm -f "$work/queue-2.db" "$work/queue-2.db-wal" "$work/queue-2.db-shm"
import_run 2; import2=$secs
floor_run "$work/import-2.db"; floor_secs=$secs
rm -f "$work/import-2.db"
submit_secs=$(awk -v a="$submit1" -v b="$submit2" 'BEGIN { printf "%.3f", (a + b) / 2 }')
import_secs=$(awk -v a="$import1" -v b="$import2" 'BEGIN { printf "%.3f", (a + b) / 2 }')
submit_import=$(ratio "$submit_secs" "$import_secs")
floor_import=$(ratio "$floor_secs" "$import_secs")
say "  submit / .import: ${submit_import}x (round 1 $(ratio "$submit1" "$import1")x, round 2 $(ratio "$submit2" "$import2")x)   target <= 1.2x: $(verdict "$submit_import" 1.2)"
say "  SQLite alone in WAL / .import: ${floor_import}x; submit / SQLite alone: $(ratio "$submit_secs" "$floor_secs")x"

process_run process "$work/queue-1.db" "$requests"
process_secs=$secs process_rss=$rss
rm -f "$work/queue-1.db" "$work/queue-1.db-wal" "$work/queue-1.db-shm"
submit_rate=$(rate "$requests" "$submit1")
process_rate=$(rate "$requests" "$process_secs")
e2e_secs=$(awk -v a="$submit1" -v b="$process_secs" 'BEGIN { printf "%.3f", a + b }')
e2e_rate=$(rate "$requests" "$e2e_secs")
say "  process  $process_secs s = $(commas "$process_rate") decisions/s; peak RSS $(commas "$process_rss") KiB ($(mib "$process_rss") MiB)"
say "  end to end: $(commas $requests) / (submit $submit1 s + process $process_secs s) = $(commas "$e2e_rate") requests/s   target >= 200,000/s: $(at_least "$e2e_rate" 200000)"
say "  checked: $(commas $requests) enqueued, $(commas $inventory) accepted, verify clean, $(commas $inventory) held"

# ---------------------------------------------------------------------------------------
section "redis $redis_version + Lua (127.0.0.1 only, private port, appendonly yes, appendfsync everysec)"
redis_run everysec
redis_everysec=$redis_rate
section "redis $redis_version + Lua (127.0.0.1 only, private port, appendonly yes, appendfsync always)"
redis_run always
redis_always=$redis_rate
r_everysec=$(ratio "$stream_rate" "$redis_everysec")
r_always=$(ratio "$stream_rate" "$redis_always")

# ---------------------------------------------------------------------------------------
big_stream_rss= big_process_rss= big_submit_rss=
if (( big )); then
    section "memory check: W1 x10, $(commas $big_requests) requests (users u1..u$big_users)"
    avail_kib=$(df -k --output=avail "$work" | tail -1 | tr -d ' ')
    (( avail_kib > 7 * 1024 * 1024 )) || say "WARNING: $(( avail_kib / 1024 )) MiB free in $work; this part needs about 6 GiB"
    rm -f "$work/W1.ndjson"   # the 1.1M files are done with (W1.csv too, below)
    rm -f "$work/W1.csv"
    t0=$EPOCHREALTIME
    gen_w1 "$big_users" "$work/W11.ndjson" "$work/W11.csv"
    t1=$EPOCHREALTIME
    check_w1 "$work/W11.ndjson" "$work/W11.csv" "$big_requests"
    say "generated in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s: W11.ndjson $(stat -c %s "$work/W11.ndjson") bytes, W11.csv $(stat -c %s "$work/W11.csv") bytes"
    say "book --stream:"
    stream_run stream-big "$work/W11.ndjson" "$big_requests"
    big_stream_secs=$secs big_stream_rss=$rss
    rm -f "$work/W11.ndjson"
    say "  $(commas $big_requests) decisions in $secs s = $(commas "$(rate "$big_requests" "$secs")") decisions/s; peak RSS $(commas "$rss") KiB ($(mib "$rss") MiB)"
    say "submit + process:"
    db="$work/queue-big.db"
    fresh_copy "$db"
    timed submit-big "$bin" --db "$db" submit "$sale" --file "$work/W11.csv" >"$work/submit-big.out" ||
        die "submit (11M) failed: $(cat "$work/submit-big.out")"
    big_submit_secs=$secs big_submit_rss=$rss
    grep -q "^$big_requests enqueued" "$work/submit-big.out" || die "submit (11M): $(cat "$work/submit-big.out")"
    rm -f "$work/W11.csv"
    say "  submit   $secs s = $(commas "$(rate "$big_requests" "$secs")") requests/s; peak RSS $(commas "$rss") KiB ($(mib "$rss") MiB)"
    process_run process-big "$db" "$big_requests"
    big_process_secs=$secs big_process_rss=$rss
    say "  process  $secs s = $(commas "$(rate "$big_requests" "$secs")") decisions/s; peak RSS $(commas "$rss") KiB ($(mib "$rss") MiB)"
    say "  end to end: $(commas "$(rate "$big_requests" "$(awk -v a="$big_submit_secs" -v b="$big_process_secs" 'BEGIN { print a + b }')")") requests/s"
    rm -f "$db" "$db-wal" "$db-shm"
fi

# ---------------------------------------------------------------------------------------
section "summary (W1: $(commas $requests) requests, $(commas $inventory) items; every check passed)"
say "book --stream:     $(commas "$stream_rate") decisions/s ($stream_secs s)"
say "  / redis everysec (-c 50 -P 100): $(commas "$redis_everysec")/s -> ${r_everysec}x   target >= 1.0x: $(at_least "$r_everysec" 1.0)"
say "  / redis always   (-c 50 -P 100): $(commas "$redis_always")/s -> ${r_always}x   target >= 1.0x: $(at_least "$r_always" 1.0)"
say "submit + process:  $(commas "$e2e_rate") requests/s end to end (submit $submit1 s + process $process_secs s)   target >= 200,000/s: $(at_least "$e2e_rate" 200000)"
say "submit / .import:  ${submit_import}x (submit $submit_secs s, .import $import_secs s, mean of 2 rounds)   target <= 1.2x: $(verdict "$submit_import" 1.2)"
say "  (SQLite alone in WAL mode: ${floor_import}x .import, $floor_secs s)"
rss_line() {  # rss_line LABEL KIB
    if [[ -z "$2" ]]; then printf '  %-22s not measured (run with --big)\n' "$1"
    else printf '  %-22s %6.1f MiB   target <= 32 MiB: %s\n' "$1" "$(mib "$2")" "$(verdict "$2" "$rss_target_kib")"; fi
}
say "peak RSS:"
rss_line "stream, 1.1M" "$stream_rss"
rss_line "process, 1.1M" "$process_rss"
rss_line "stream, 11M" "$big_stream_rss"
rss_line "process, 11M" "$big_process_rss"
say "  (not targeted: submit $(mib "$submit_rss") MiB$( [[ -n "$big_submit_rss" ]] && printf ', %s MiB at 11M' "$(mib "$big_submit_rss")"), sqlite3 .import $(mib "$import_rss") MiB)"
say "RabbitMQ 3.10 anchor (durable queue, persistent messages; NOT measured here, quoted from anchors.md):"
say "  publish with confirms $(commas $rabbit_publish)/s: flashsale submit $(commas "$submit_rate")/s is $(ratio "$submit_rate" "$rabbit_publish" 1)x that"
say "  consume with acks     $(commas $rabbit_consume)/s: flashsale process $(commas "$process_rate")/s is $(ratio "$process_rate" "$rabbit_consume" 1)x that"
say "run time: $(awk -v a="$run_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s (without the build); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
