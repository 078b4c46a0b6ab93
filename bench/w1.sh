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

big=0
for arg in "$@"; do
    case $arg in
        --big) big=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) printf 'w1.sh: unknown argument %s (try --help)\n' "$arg" >&2; exit 2 ;;
    esac
done

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

# say, section, die, ratio, verdict and the set-up steps below are in common.sh.
# "PASS" when a >= limit, else "MISS".
at_least() { awk -v a="$1" -v l="$2" 'BEGIN { print (a >= l ? "PASS" : "MISS") }'; }
# 1234567 -> 1,234,567 (integers only).
commas() { printf '%s\n' "$1" | sed ':a; s/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/; ta'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f\n", n / s }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f\n", k / 1024 }'; }

# $SRANDOM (32 random bits per use) makes the Redis port.
require_bash_5_1

# ---------------------------------------------------------------------------------------
section "tools"
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
{ command -v redis-cli && command -v redis-benchmark; } >/dev/null 2>&1 || missing+=(redis-tools)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
[[ -x /usr/bin/time ]] || missing+=(time)
install_packages "${missing[@]}"
redis_version=$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
say "sqlite3 $(sqlite3 --version | cut -d' ' -f1); redis-server $redis_version; $(redis-benchmark --version 2>&1 | head -1); $(/usr/bin/time --version 2>&1 | head -1); bash $BASH_VERSION"
[[ "$redis_version" == 7.* ]] || say "WARNING: the anchor is Redis 7, this is Redis $redis_version"

find_flashsale

# ---------------------------------------------------------------------------------------
make_workdir w1   # sets work; the trap stops Redis and removes it

section "machine"
say "cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); temp dir: $work ($(stat -f -c %T "$work"), $(df -h --output=avail "$work" | tail -1 | tr -d ' ') free)"
warn_if_tmpfs
say "note: on a shared, noisy machine compare the ratios, not the absolute rates; run 3 times"
run_start=$EPOCHREALTIME

# ---------------------------------------------------------------------------------------
# W1, deterministic: users u1..uN in order, and after every 10th user one repeat of a
# random earlier user (u1..u<that 10th user>), drawn with Park-Miller (16807 * x mod
# 2^31-1: exact in awk's doubles, so every awk gives the same file). Request k (0-based)
# has an IPv4 address when k is even and an IPv6 one when odd; the address comes from the
# user number (10.a.b.c, 2001:db8::hi:lo with at most 4 hex digits per group), so a
# repeat of an odd/even-swapped user changes family but not identity. The user agent also
# comes from the user number: about 6% bot-like (python-requests, curl, Go, Scrapy), the
# rest five browser strings; those with a comma are quoted in the CSV.
# gen_w1 USERS NDJSON CSV
gen_w1() {
    awk -v users="$1" -v nd="$2" -v csv="$3" '
    function emit(n,    h, ip, agent, q) {
        h = (n * 40503) % 65536
        agent = (h % 100 < 6) ? bot[h % 4] : ua[int(h / 100) % 5]
        if (line++ % 2) ip = sprintf("2001:db8::%x:%x", int(n / 65536), n % 65536)
        else ip = sprintf("10.%d.%d.%d", int(n / 65536) % 256, int(n / 256) % 256, n % 256)
        printf "{\"user\":\"u%d\",\"ip\":\"%s\",\"user_agent\":\"%s\"}\n", n, ip, agent > nd
        q = index(agent, ",") ? "\"" : ""
        printf "u%d,%s,%s%s%s\n", n, ip, q, agent, q > csv
    }
    BEGIN {
        x = 20261124
        ua[0] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
        ua[1] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
        ua[2] = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"
        ua[3] = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
        ua[4] = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
        bot[0] = "python-requests/2.31"; bot[1] = "curl/8.0"; bot[2] = "Go-http-client/1.1"
        bot[3] = "Scrapy/2.11.0 (+https://scrapy.org)"
        print "user,ip,user_agent" > csv
        line = 0
        for (i = 1; i <= users; i++) {
            emit(i)
            if (i % 10 == 0) { x = (16807 * x) % 2147483647; emit(1 + x % i) }
        }
    }'
}
# check_w1 NDJSON CSV REQUESTS: line counts, and (cheap) what the first lines look like.
check_w1() {
    local lines
    lines=$(wc -l <"$1")
    [[ "$lines" == "$3" ]] || die "$1 has $lines lines, expected $3"
    lines=$(wc -l <"$2")
    [[ "$lines" == "$(( $3 + 1 ))" ]] || die "$2 has $lines lines, expected $(( $3 + 1 )) (with the header)"
}

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
fresh_copy() { rm -f "$1" "$1-wal" "$1-shm"; cp "$work/template.db" "$1"; }

# timed NAME CMD...: runs CMD under /usr/bin/time -v (stdin and stdout as the caller
# redirects them); sets secs (wall, from $EPOCHREALTIME) and rss (peak RSS in KiB).
# Returns CMD's exit status.
secs= rss=
timed() {
    local name=$1 start end status=0
    shift
    start=$EPOCHREALTIME
    /usr/bin/time -v -o "$work/$name.time" "$@" || status=$?
    end=$EPOCHREALTIME
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/$name.time")
    return "$status"
}

# check_db DB LABEL: flashsale's own verify (counters, invariant, per-user limit, events,
# quick_check) and exactly $inventory held items, none left.
check_db() {
    local db=$1 label=$2 counts
    "$bin" -q --db "$db" verify || die "$label: flashsale verify found violations in $db"
    counts=$(sqlite3 "$db" "SELECT available || ' ' || held || ' ' || booked FROM sale WHERE id = '$sale'")
    [[ "$counts" == "0 $inventory 0" ]] || die "$label: available/held/booked are $counts, expected 0 $inventory 0"
}

# stream_run LABEL NDJSON REQUESTS: book --stream on a fresh database; sets secs, rss.
stream_run() {
    local label=$1 input=$2 n=$3 db="$work/$1.db" out="$work/$1.decisions.ndjson" lines ok
    fresh_copy "$db"
    timed "$label" "$bin" --db "$db" book "$sale" --stream <"$input" >"$out" ||
        { tail -5 "$work/$label.time" >&2; die "$label: book --stream failed"; }
    local s=$secs r=$rss
    lines=$(wc -l <"$out")
    ok=$(grep -c '"ok":true' "$out" || true)
    [[ "$lines" == "$n" ]] || die "$label: $lines decisions, expected $n"
    [[ "$ok" == "$inventory" ]] || die "$label: $ok decisions say \"ok\":true, expected $inventory"
    say "  declines: $(grep -o '"error":"[a-z_]*"' "$out" | cut -d'"' -f4 | sort | uniq -c | sort -rn | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')"
    rm -f "$out"
    check_db "$db" "$label"
    rm -f "$db" "$db-wal" "$db-shm"
    secs=$s rss=$r
}

# ---------------------------------------------------------------------------------------
section "book --stream: W1 as NDJSON on stdin, one NDJSON decision per line out (durable)"
say "flashsale --db fs.db book $sale --stream < W1.ndjson > decisions.ndjson"
stream_run stream "$work/W1.ndjson" "$requests"
stream_secs=$secs stream_rss=$rss
stream_rate=$(rate "$requests" "$stream_secs")
say "  $(commas $requests) decisions in $stream_secs s = $(commas "$stream_rate") decisions/s; peak RSS $(commas "$stream_rss") KiB ($(mib "$stream_rss") MiB)"
say "  checked: $(commas $requests) lines, exactly $(commas $inventory) \"ok\":true, verify clean, $(commas $inventory) held"

# ---------------------------------------------------------------------------------------
section "submit --file W1.csv + process, against sqlite3 .import of the same CSV"
# Two rounds, .import / submit / submit / .import, so drifting background load favours
# neither; the ratio is of the two totals. The first submit's database is then processed.
# .import runs with sqlite3's defaults on a fresh file: one transaction, rollback journal,
# synchronous=FULL (flashsale: WAL, synchronous=FULL).
process_args=(process "$sale")
[[ -n "$batch" ]] && process_args+=(--batch "$batch")
say "flashsale --db q.db submit $sale --file W1.csv; flashsale --db q.db ${process_args[*]}"
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

# process_run LABEL DB REQUESTS: process on a submitted database; sets secs, rss.
process_run() {
    local label=$1 db=$2 n=$3 report queued
    timed "$label" "$bin" --db "$db" "${process_args[@]}" >"$work/$label.out" ||
        die "$label: process failed: $(cat "$work/$label.out")"
    local s=$secs r=$rss
    report=$(cat "$work/$label.out")
    [[ "$report" == "$inventory accepted, $(( n - inventory )) rejected" ]] ||
        die "$label: \"$report\", expected $inventory accepted, $(( n - inventory )) rejected"
    queued=$("$bin" --db "$db" --json status "$sale" | sed -n 's/.*"queued":\([0-9]*\).*/\1/p')
    [[ "$queued" == 0 ]] || die "$label: ${queued:-?} requests still queued"
    say "  $report"
    check_db "$db" "$label"
    secs=$s rss=$r
}
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
# Redis 7 + the anchor's Lua script, 127.0.0.1 only, on a random free port, a fresh server
# (and data dir) per AOF mode, stopped right after (and by the trap, whatever happens).
# redis_run MODE: sets redis_rate (requests/s as redis-benchmark prints it).
redis_rate=
redis_run() {
    local mode=$1 dir="$work/redis-$1" port sha left members
    start_redis "$dir" "$mode"   # sets redis_pid, redis_port, rcli
    port=$redis_port
    sha=$(load_anchor_lua)
    "${rcli[@]}" set "$sale:count" "$inventory" >/dev/null
    local bench=(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -P 100 -n "$requests" -r 1000000 --csv
        EVALSHA "$sha" 4 "$sale:count" "$sale:users" "$sale:holds" "$sale:expiry" user-__rand_int__ bk-__rand_int__ 3600)
    say "redis-benchmark -c 50 -P 100 -n $requests -r 1000000 EVALSHA <sha> 4 $sale:count $sale:users $sale:holds $sale:expiry user-__rand_int__ bk-__rand_int__ 3600"
    "${bench[@]}" >"$dir/bench.csv" 2>"$dir/bench.err" || { cat "$dir/bench.err" >&2; die "redis-benchmark failed"; }
    # --csv: a header, then "test","rps","avg_latency_ms",... (7 numbers after the test name).
    redis_rate=$(tail -1 "$dir/bench.csv" | tr -d '"' | awk -F, '{ printf "%.0f", $(NF - 6) }')
    [[ "$redis_rate" =~ ^[0-9]+$ && "$redis_rate" -gt 0 ]] || { cat "$dir/bench.csv" >&2; die "could not read requests/s from redis-benchmark"; }
    # The script's own invariant: exactly $inventory users took an item, none left. (Booking
    # ids are a second __rand_int__, so a few may collide in the hash: reported, not checked.)
    left=$("${rcli[@]}" get "$sale:count")
    members=$("${rcli[@]}" scard "$sale:users")
    [[ "$left" == 0 && "$members" == "$inventory" ]] || die "redis ($mode): $members users, $left left; expected $inventory and 0"
    say "  $(commas "$redis_rate") requests/s (p50 $(tail -1 "$dir/bench.csv" | tr -d '"' | awk -F, '{ print $(NF - 3) }') ms); checked: $members users hold an item, count 0 (holds hash $("${rcli[@]}" hlen "$sale:holds"), AOF $(du -sh "$dir" | cut -f1))"
    stop_redis
    rm -rf "$dir"
}
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
