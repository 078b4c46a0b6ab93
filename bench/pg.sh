#!/usr/bin/env bash
# The PostgreSQL benchmark: flashsale on `--db postgresql://…` against the PostgreSQL
# anchors (/work/shared/anchors/pg: the same decisions written in SQL, run by psql and
# pgbench), all against one throwaway cluster (.ci/postgres: a private port, fsync on) that
# the script starts and stops. In one run: one `book` process against `psql -c "SELECT
# book(…)"`; 32 `book` processes at once against `pgbench -C -c 32` (and, reported, 32
# psql processes at once and `pgbench -c 32` with kept connections); W1 and W2 (stock 1,000 and 1,000,000) through `book --stream` and
# `submit --file` + `process` against the anchors' batched SQL (decide_batch_set, jit off),
# with peak RSS; `events --follow` latency from commit to line. Run by hand, as root (the
# cluster runs as the `postgres` user); see bench/README.md:
#
#     bench/pg.sh                                     # builds the static release first
#     FLASHSALE_BIN=path/to/flashsale bench/pg.sh     # measures that binary (flashsale-serve beside it)
#
# Knobs: BENCH_RUNS (single bookings per contender, 300), BENCH_WARMUP (10), BENCH_WORKERS
# (32), BENCH_PER_WORKER (40 bookings each), BENCH_PGBENCH_SECONDS (15, the kept-connection
# pgbench), BENCH_USERS (W1's distinct users, 1,000,000), BENCH_BATCH (process --batch),
# BENCH_EVENTS (bookings timed through events --follow, 300), BENCH_PG_PORT (the cluster's
# port, a random free one), BENCH_ANCHORS (the anchors' folder), BENCH_TMPDIR (a real disk),
# FLASHSALE_SCRATCH (a --scratch-path for the build). Exits 0 when every measurement ran
# and every check passed; a missed target is reported (MISS), not an error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/workload.sh"

parse_arguments none "$@"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
anchors=${BENCH_ANCHORS:-$repo/../shared/anchors/pg}
runs=${BENCH_RUNS:-300}
warmup=${BENCH_WARMUP:-10}
workers=${BENCH_WORKERS:-32}
per_worker=${BENCH_PER_WORKER:-40}
pgbench_seconds=${BENCH_PGBENCH_SECONDS:-15}
users=${BENCH_USERS:-1000000}
requests=$(( users + users / 10 ))
batch=${BENCH_BATCH:-}
follow_bookings=${BENCH_EVENTS:-300}
chunk=10000                      # the anchors' batch: one transaction per 10,000 requests
sale=s1
rss_target_kib=$(( 32 * 1024 ))
# The real psql and pgbench, not Debian's perl wrapper in /usr/bin (+33 ms a start).
pgbin=/usr/lib/postgresql/15/bin

# $SRANDOM (32 random bits per use) makes the users and the port.
require_bash_5_1
(( EUID == 0 )) || die "run it as root: the cluster runs as the postgres user"

# ---------------------------------------------------------------------------------------
section "tools"
missing=()
[[ -x $pgbin/postgres && -x $pgbin/pgbench ]] || missing+=(postgresql-15 postgresql-contrib)
command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
[[ -x /usr/bin/time ]] || missing+=(time)
install_packages "${missing[@]}"
for f in schema.sql decide_fn.sql; do [[ -f $anchors/$f ]] || die "no $anchors/$f (set BENCH_ANCHORS)"; done
say "$("$pgbin/postgres" --version); $("$pgbin/pgbench" --version); $(hyperfine --version); $(/usr/bin/time --version 2>&1 | head -1); bash $BASH_VERSION"
say "anchors: $(cd "$anchors" && pwd)"

find_flashsale
[[ -x "$(dirname "$bin")/flashsale-serve" ]] || die "no flashsale-serve beside $bin: flashsale hands postgresql:// commands to it"

# ---------------------------------------------------------------------------------------
make_workdir pg   # sets work; the trap stops $server_pid, the cluster (extra_cleanup) and removes it

# The cluster, the follower of the last section and its time-stamper: stopped by the trap.
pg_dir= follow_pid= stamp_pid=
extra_cleanup() {
    stop_process "${follow_pid:-}"
    stop_process "${stamp_pid:-}"
    [[ -z "$pg_dir" ]] || bash "$repo/.ci/postgres" stop "$pg_dir"
}

section "machine and cluster"
port=${BENCH_PG_PORT:-$(free_port)}
eval "$(FLASHSALE_TEST_PG_PORT=$port bash "$repo/.ci/postgres" start)"
pg_dir=$FLASHSALE_TEST_PG_DIR
sock=$FLASHSALE_TEST_PG_SOCKET
# psql on the Unix socket (trust), as flashsale below: both sides pay the same connection.
P() { PGOPTIONS="-c client_min_messages=warning" "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres "$@"; }
P -d postgres -c 'CREATE DATABASE anchor' -c 'CREATE DATABASE flashsale' >/dev/null
P -d anchor -f "$anchors/schema.sql" >/dev/null
A() { P -d anchor "$@"; }
url="postgresql://postgres@/flashsale?host=$sock&port=$port"
say "cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); temp dir: $work ($(stat -f -c %T "$work")); cluster: $pg_dir ($(stat -f -c %T "$pg_dir"))"
warn_if_tmpfs
[[ "$(stat -f -c %T "$pg_dir")" != tmpfs ]] || say "WARNING: the cluster is on tmpfs, where fsync is free"
say "cluster: port $port, socket $sock; $(A -At -c "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'shared_buffers', 'max_connections', 'jit')")"
say "flashsale: --db postgresql://postgres@/flashsale?host=SOCKET&port=$port (a schema per run); anchors: database anchor (schema.sql)"
say "note: this machine is shared and noisy (2 cores, other builds and tests, client and server on the same cores): compare the ratios of one run, not the absolute rates"
run_start=$EPOCHREALTIME

# fs_new SCHEMA STOCK: a new flashsale schema with the sale $sale (1 h hold, 1 per user);
# fs SCHEMA ARGS…: flashsale in that schema.
fs() { local schema=$1; shift; "$bin" --db "$url" --pg-schema "$schema" "$@"; }
fs_new() {
    fs "$1" -q init
    fs "$1" -q create-sale "$sale" --inventory "$2" --hold 1h --per-user 1
    P -d flashsale -c CHECKPOINT >/dev/null
}
# fs_status SCHEMA FIELD: a number from `status --json`.
fs_status() { fs "$1" --json status "$sale" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
# fs_check SCHEMA LABEL HELD: verify clean, exactly HELD held and nothing booked; the schema is dropped.
fs_check() {
    local held
    fs "$1" -q verify || die "$2: flashsale verify found violations"
    held=$(fs_status "$1" held)
    [[ "$held" == "$3" ]] || die "$2: $held held, expected $3"
    P -d flashsale -c "DROP SCHEMA $1 CASCADE" >/dev/null
}
# anchor_reset STOCK: the anchors' sale s1, empty bookings and events (as run.sh: booking is
# not analyzed when empty, or the planner caches a seq scan for the per-user count).
anchor_reset() {
    A >/dev/null <<SQL
TRUNCATE booking, event, queue RESTART IDENTITY;
DELETE FROM sale;
INSERT INTO sale (id, total, available, per_user) VALUES ('s1', $1, $1, 1);
VACUUM ANALYZE sale;
CHECKPOINT;
SQL
}
# anchor_check LABEL BOOKINGS [EVENTS]: the counters, the invariant, and the counts.
# BOOKINGS "held": as many as the 'held' events (pgbench draws its users at random, and one
# drawn twice is refused at its limit: a decision with no booking).
anchor_check() {
    local got want
    got=$(A -At -c "SELECT (SELECT count(*) FROM booking) || ' ' || (SELECT count(*) FROM event) || ' ' ||
        (SELECT count(*) FROM event WHERE kind = 'held') || ' ' ||
        (held = (SELECT count(*) FROM booking WHERE status = 'held') AND total = available + held + booked) FROM sale")
    read -r b e h ok <<<"$got"
    want=$2
    [[ "$want" == held ]] && want=$h
    [[ "$ok" == true && "$b" == "$want" ]] || die "$1: the anchor has $b bookings (expected $want), invariant $ok"
    [[ -z "${3:-}" || "$e" == "$3" ]] || die "$1: the anchor has $e events, expected $3"
}
# ms SECONDS: milliseconds, 2 decimals.
ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }

# ---------------------------------------------------------------------------------------
section "one book per process: flashsale against psql -c \"SELECT book(…)\" (hyperfine -N, $runs runs each, interleaved)"
psql_cmd="$pgbin/psql -X -q -h $sock -p $port -U postgres -d anchor"
fs_new single 10000000
anchor_reset 10000000
say "flashsale --db postgresql://… book $sale {u}   (flashsale hands the command to flashsale-serve)"
say "$pgbin/psql -X -q -h SOCKET -p $port -U postgres -d anchor -c \"SELECT book('$sale', '{u}', '127.0.0.1', 'cli')\"   (anchor 1c)"
for (( i = 1; i <= warmup; i++ )); do
    fs single book "$sale" "w$i" >/dev/null
    $psql_cmd -c "SELECT book('$sale', 'w$i', '127.0.0.1', 'cli')" >/dev/null
done
users_list=$(for (( i = 1; i <= runs; i++ )); do printf 'u%d_%08x\n' "$i" "$SRANDOM"; done | paste -sd,)
hyperfine -N --style none --runs 1 -L u "$users_list" --export-csv "$work/single.csv" \
    "$bin --db $url --pg-schema single book $sale {u}" \
    "$psql_cmd -c \"SELECT book('$sale', '{u}', '127.0.0.1', 'cli')\"" \
    2>"$work/hyperfine.err" || { cat "$work/hyperfine.err" >&2; die "hyperfine failed"; }
fs_check single "single book" $(( warmup + runs ))
anchor_check "single book" $(( warmup + runs ))
say "checked: each side made exactly $(( warmup + runs )) holds (flashsale verify clean; the anchor's counters and invariant)"
# CSV: command,mean,stddev,median,user,system,min,max,parameter_u, one row per run; the
# command may hold quoted commas, so numbers are taken from the end of the line.
# single_stats KIND: "mean sd median min max user sys" in seconds over that contender's runs.
single_stats() {
    awk -F, -v kind="$1" 'NR > 1 && (($0 ~ /\/psql /) == (kind == "psql")) {
            n++; w = $(NF - 7); s += w; q += w * w; v[n] = w; u += $(NF - 4); y += $(NF - 3) }
        END { m = s / n; sd = (n > 1) ? sqrt((q - n * m * m) / (n - 1)) : 0
              for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
              med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
              printf "%.9f %.9f %.9f %.9f %.9f %.9f %.9f\n", m, sd, med, v[1], v[n], u / n, y / n }' "$work/single.csv"
}
say "wall time per process (ms):"
for kind in flashsale psql; do
    read -r m sd med lo hi um sm < <(single_stats "$kind")
    awk -v n="$kind" -v m="$m" -v sd="$sd" -v med="$med" -v lo="$lo" -v hi="$hi" -v u="$um" -v s="$sm" 'BEGIN {
        printf "  %-10s mean %6.2f ± %5.2f   median %6.2f   min %6.2f   max %7.2f   (user %5.2f, sys %5.2f)\n",
            n, m * 1000, sd * 1000, med * 1000, lo * 1000, hi * 1000, u * 1000, s * 1000 }'
    declare "mean_$kind=$m" "median_$kind=$med"
done
r_single=$(ratio "$mean_flashsale" "$mean_psql")
say "  flashsale / psql: ${r_single}x (medians $(ratio "$median_flashsale" "$median_psql")x)   target <= 1.0x: $(verdict "$r_single" 1.0)"
fs_new startup 1
hyperfine -N --style none --warmup 5 --runs 50 --export-csv "$work/startup.csv" \
    -n "flashsale --version" "$bin --version" \
    -n "flashsale-serve --version" "$(dirname "$bin")/flashsale-serve --version" \
    -n "flashsale status (connect + read)" "$bin --db $url --pg-schema startup status $sale" \
    -n "psql -c 'SELECT 1' (connect floor)" "$psql_cmd -c \"SELECT 1\"" \
    2>"$work/hyperfine.err" || { cat "$work/hyperfine.err" >&2; die "hyperfine failed"; }
fs_check startup "start-up" 0
say "start-up and connection alone, mean ± σ (ms):"
awk -F, 'NR > 1 { printf "  %-36s %6.2f ± %5.2f   (user %5.2f, sys %5.2f)\n", $1, $2 * 1000, $3 * 1000, $5 * 1000, $6 * 1000 }' \
    "$work/startup.csv"
say "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------
section "$workers processes at once on one sale, $per_worker bookings each, against pgbench -C -c $workers -j 2 -t $per_worker -f decide_fn.sql"
# flashsale: $workers workers, each $per_worker bookings one after another with its own users,
# all started together; a failure is any non-zero exit. pgbench -C: a new connection per
# transaction, as a process per decision makes; the same number of decisions. Two rounds,
# flashsale, pgbench, pgbench, flashsale, so drifting load favours neither; stock 10,000,000.
# Also reported, not targeted: psql processes the same way, a process and a connection per
# decision as flashsale's (pgbench -C pays the connection but not the process).
# concurrent_fs ROUND / concurrent_pgbench ROUND: append "decisions failures seconds" to $work/conc-LABEL.
# concurrent_processes LABEL BOOK: $workers workers each run BOOK WORKER I $per_worker times,
# all started together; prints the line and sets conc_ok, conc_failed, conc_secs.
concurrent_processes() {
    local label=$1 book=$2 out="$work/conc-$RANDOM" w start end pids=()
    mkdir "$out"
    start=$EPOCHREALTIME
    for (( w = 0; w < workers; w++ )); do
        (
            set +e
            ok=0 failed=0
            for (( i = 0; i < per_worker; i++ )); do
                if "$book" "$w" "$i" >/dev/null 2>>"$out/$w.err"; then ok=$(( ok + 1 ))
                else echo "exit $?" >>"$out/$w.err"; failed=$(( failed + 1 )); fi
            done
            echo "$ok $failed" >"$out/$w.count"
        ) &
        pids+=($!)
    done
    wait "${pids[@]}"
    end=$EPOCHREALTIME
    conc_ok=$(cat "$out"/*.count | awk '{ s += $1 } END { print s + 0 }')
    conc_failed=$(cat "$out"/*.count | awk '{ s += $2 } END { print s + 0 }')
    conc_secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    say "  $label  $(commas "$conc_ok") decisions in $conc_secs s = $(commas "$(rate "$conc_ok" "$conc_secs")")/s; failures $conc_failed"
    if (( conc_failed > 0 )); then
        { cat "$out"/*.err | grep -v '^exit ' | sort | uniq -c | sort -rn | head -3 | sed 's/^/    /'; } || true
    fi
}
fs_book() { fs "$conc_schema" book "$sale" "c${1}_$2"; }
psql_book() { $psql_cmd -c "SELECT book('$sale', 'p${1}_$2', '127.0.0.1', 'cli')"; }
concurrent_fs() {
    conc_schema="conc$1"
    fs_new "$conc_schema" 10000000
    concurrent_processes "round $1  flashsale" fs_book
    fs_check "$conc_schema" "concurrent round $1" "$conc_ok"
    echo "$conc_ok $conc_failed $conc_secs" >>"$work/conc-fs"
}
# pgbench_run LABEL ARGS…: pgbench on the anchor (stock 10,000,000), checked; sets pgb_n, pgb_failed, pgb_secs.
pgbench_run() {
    local label=$1 start end
    shift
    anchor_reset 10000000
    start=$EPOCHREALTIME
    (cd "$work" && "$pgbin/pgbench" -n -h "$sock" -p "$port" -U postgres "$@" -f "$anchors/decide_fn.sql" anchor) \
        >"$work/pgbench.out" 2>&1 || { cat "$work/pgbench.out" >&2; die "$label: pgbench failed"; }
    end=$EPOCHREALTIME
    pgb_secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    pgb_n=$(awk '/number of transactions actually processed/ { split($NF, a, "/"); print a[1] }' "$work/pgbench.out")
    pgb_failed=$(awk '/number of failed transactions/ { print $5 }' "$work/pgbench.out")
    anchor_check "$label" held "$pgb_n"
    say "  $label  $(commas "$pgb_n") decisions in $pgb_secs s = $(commas "$(rate "$pgb_n" "$pgb_secs")")/s; failures ${pgb_failed:-0}; pgbench: $(grep -m1 '^tps' "$work/pgbench.out"), $(grep -m1 '^latency average' "$work/pgbench.out")"
}
concurrent_pgbench() {
    pgbench_run "round $1  pgbench -C" -C -c "$workers" -j 2 -t "$per_worker"
    echo "$pgb_n ${pgb_failed:-0} $pgb_secs" >>"$work/conc-pgbench"
}
say "flashsale --db postgresql://… book $sale c<worker>_<i>; pgbench -n -C -c $workers -j 2 -t $per_worker -f decide_fn.sql anchor"
concurrent_fs 1
concurrent_pgbench 1
concurrent_pgbench 2
concurrent_fs 2
# total LABEL: "decisions/s failures decisions seconds" over both rounds.
total() { awk '{ n += $1; f += $2; s += $3 } END { printf "%.0f %d %d %.3f\n", n / s, f, n, s }' "$work/conc-$1"; }
read -r rate_cfs fail_cfs n_cfs s_cfs < <(total fs)
read -r rate_cpg fail_cpg n_cpg s_cpg < <(total pgbench)
r_conc=$(ratio "$rate_cfs" "$rate_cpg")
say "  flashsale:  $(commas "$n_cfs") decisions in $s_cfs s = $(commas "$rate_cfs")/s, $fail_cfs failures"
say "  pgbench -C: $(commas "$n_cpg") decisions in $s_cpg s = $(commas "$rate_cpg")/s, $fail_cpg failures"
say "  flashsale / pgbench -C: ${r_conc}x   target >= 0.8x: $(at_least "$r_conc" 0.8); failures: $( (( fail_cfs == 0 )) && echo PASS || echo MISS)"
say "a psql process per decision (not targeted: the process flashsale pays and pgbench -C does not):"
anchor_reset 10000000
concurrent_processes "psql -c book()" psql_book
anchor_check "concurrent psql" "$conc_ok"
rate_cpsql=$(rate "$conc_ok" "$conc_secs")
say "  flashsale / psql processes: $(ratio "$rate_cfs" "$rate_cpsql")x"
say "kept connections (the rate serve and process should beat by batching):"
pgbench_run "pgbench -c $workers -T $pgbench_seconds" -c "$workers" -j 2 -T "$pgbench_seconds"
rate_kept=$(rate "$pgb_n" "$pgb_secs")
say "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------
section "W1 and W2: $(commas $requests) requests (bench/workload.sh), stock 1,000 and $(commas "$users")"
gen_w1 "$users" "$work/W1.ndjson" "$work/W1.csv"
check_w1 "$work/W1.ndjson" "$work/W1.csv" "$requests"
# The anchor's batches: W1.csv numbered (seq first) in files of $chunk rows, one transaction
# each: BEGIN; \copy staging FROM chunk; SELECT decide_batch_set('s1'); COMMIT (jit off).
mkdir "$work/chunks"
tail -n +2 "$work/W1.csv" | awk '{ print NR "," $0 }' | split -l "$chunk" -d -a 4 - "$work/chunks/c"
{
    echo "SET jit = off;"
    echo "CREATE TEMP TABLE staging (seq bigint, user_id text, ip text, user_agent text) ON COMMIT DELETE ROWS;"
    for f in "$work"/chunks/c*; do
        printf "BEGIN;\n\\\\copy staging FROM '%s' WITH (FORMAT csv)\nSELECT decide_batch_set('s1');\nCOMMIT;\n" "$f"
    done
} >"$work/driver.sql"
say "W1.csv md5 $(md5sum <"$work/W1.csv" | cut -c1-12); $(commas "$(ls "$work/chunks" | wc -l)") anchor batches of $(commas $chunk)"
say "flashsale: book $sale --stream < W1.ndjson; submit $sale --file W1.csv, then process $sale${batch:+ --batch $batch}"
say "anchor:    psql -f driver.sql (SET jit = off; per batch: BEGIN; \\copy staging FROM chunk; SELECT decide_batch_set('s1'); COMMIT)"
# w_run TAG STOCK: the three contenders on that stock; prints their lines and sets TAG_* for the summary.
w_run() {
    local tag=$1 stock=$2 out lines ok report
    say ""
    say "$tag: stock $(commas "$stock") (expect $(commas "$stock") holds)   load average: $(cut -d' ' -f1-3 /proc/loadavg)"

    anchor_reset "$stock"
    timed "$tag-anchor" "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d anchor \
        -o /dev/null -f "$work/driver.sql" || die "$tag: the anchor's driver failed"
    anchor_check "$tag anchor" "$stock" "$requests"
    local a_secs=$secs a_rate
    a_rate=$(rate "$requests" "$a_secs")
    say "  anchor decide_batch_set   $a_secs s = $(commas "$a_rate") decisions/s   (checked: $(commas "$stock") bookings, $(commas "$requests") events)"
    A -c "TRUNCATE booking, event, queue" >/dev/null

    fs_new "${tag}_stream" "$stock"
    out="$work/$tag.decisions.ndjson"
    timed "$tag-stream" "$bin" --db "$url" --pg-schema "${tag}_stream" book "$sale" --stream <"$work/W1.ndjson" >"$out" ||
        { tail -5 "$work/$tag-stream.time" >&2; die "$tag: book --stream failed"; }
    local s_secs=$secs s_rss=$rss s_rate
    lines=$(wc -l <"$out")
    ok=$(grep -c '"ok":true' "$out" || true)
    [[ "$lines" == "$requests" && "$ok" == "$stock" ]] || die "$tag: book --stream made $lines decisions, $ok ok; expected $requests and $stock"
    rm -f "$out"
    fs_check "${tag}_stream" "$tag stream" "$stock"
    s_rate=$(rate "$requests" "$s_secs")
    say "  book --stream             $s_secs s = $(commas "$s_rate") decisions/s; peak RSS $(commas "$s_rss") KiB ($(mib "$s_rss") MiB)   / anchor: $(ratio "$s_rate" "$a_rate")x"

    fs_new "${tag}_queue" "$stock"
    timed "$tag-submit" "$bin" --db "$url" --pg-schema "${tag}_queue" submit "$sale" --file "$work/W1.csv" >"$work/$tag.submit" ||
        die "$tag: submit failed: $(cat "$work/$tag.submit")"
    local q_secs=$secs q_rss=$rss
    grep -q "^$requests enqueued" "$work/$tag.submit" || die "$tag: submit said \"$(cat "$work/$tag.submit")\""
    local args=(process "$sale")
    [[ -n "$batch" ]] && args+=(--batch "$batch")
    timed "$tag-process" "$bin" --db "$url" --pg-schema "${tag}_queue" "${args[@]}" >"$work/$tag.process" ||
        die "$tag: process failed: $(cat "$work/$tag.process")"
    local p_secs=$secs p_rss=$rss e_rate
    report=$(cat "$work/$tag.process")
    [[ "$report" == "$stock accepted, $(( requests - stock )) rejected" ]] || die "$tag: process said \"$report\""
    [[ "$(fs_status "${tag}_queue" queued)" == 0 ]] || die "$tag: requests still queued after process"
    fs_check "${tag}_queue" "$tag queue" "$stock"
    e_rate=$(rate "$requests" "$(awk -v a="$q_secs" -v b="$p_secs" 'BEGIN { print a + b }')")
    say "  submit --file             $q_secs s = $(commas "$(rate "$requests" "$q_secs")") requests/s; peak RSS $(commas "$q_rss") KiB ($(mib "$q_rss") MiB)"
    say "  process                   $p_secs s = $(commas "$(rate "$requests" "$p_secs")") decisions/s; peak RSS $(commas "$p_rss") KiB ($(mib "$p_rss") MiB)   ($report)"
    say "  submit + process          $(commas "$e_rate") requests/s end to end   / anchor: $(ratio "$e_rate" "$a_rate")x"
    say "  checked: $(commas "$requests") decisions each, exactly $(commas "$stock") held, verify clean, nothing left queued"
    declare -g "${tag}_anchor=$a_rate" "${tag}_stream=$s_rate" "${tag}_stream_rss=$s_rss" \
        "${tag}_e2e=$e_rate" "${tag}_process_rss=$p_rss" "${tag}_submit_rss=$q_rss"
}
w_run w1 1000
w_run w2 "$users"   # W2: a stock for every user
rm -rf "$work/chunks" "$work/driver.sql"

# ---------------------------------------------------------------------------------------
section "events --follow: from commit to line, $follow_bookings bookings one after another"
# The follower's lines are stamped as they arrive ($EPOCHREALTIME); each event's "at" is its
# decision's time, taken before the commit, so "arrival - at" is an upper bound of commit to
# line (it adds the commit itself); "arrival - the book process's exit" a lower bound (the
# exit comes after the commit, and the line may come first: then it is negative).
fs_new follow 10000000
mkfifo "$work/follow.fifo"
# Not through fs: $! must be flashsale's own pid (a function's subshell would outlive the kill
# and keep the fifo open).
"$bin" --db "$url" --pg-schema follow events --sale "$sale" --follow >"$work/follow.fifo" 2>"$work/follow.err" &
follow_pid=$!
while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done <"$work/follow.fifo" >"$work/follow.log" &
stamp_pid=$!
# f0's line says the follower is past its first read and waiting: the timed bookings follow it.
fs follow book "$sale" f0 >/dev/null || die "events: book f0 failed"
for _ in $(seq 200); do [[ -s "$work/follow.log" ]] && break; sleep 0.05; done
[[ -s "$work/follow.log" ]] || die "events --follow printed nothing in 10 s: $(head -3 "$work/follow.err")"
for (( i = 1; i <= follow_bookings; i++ )); do
    fs follow book "$sale" "f$i" >/dev/null || die "events: book f$i failed"
    printf 'f%d %s\n' "$i" "$EPOCHREALTIME" >>"$work/follow.exits"
done
# Lines of the f users only: the log also has the sale's own events.
booked_lines() { grep -c '"user":"f[0-9]*"' "$work/follow.log" || true; }
for _ in $(seq 100); do (( $(booked_lines) > follow_bookings )) && break; sleep 0.05; done
stop_process "$follow_pid"; follow_pid=
wait "$stamp_pid" 2>/dev/null || true; stamp_pid=
arrived=$(( $(booked_lines) - 1 ))
(( arrived == follow_bookings )) || die "events --follow: $arrived lines for $follow_bookings bookings ($(head -3 "$work/follow.err"))"
fs_check follow "events" $(( follow_bookings + 1 ))
[[ "$(grep -o '"user":"f[0-9]*"' "$work/follow.log" | cut -d'"' -f4 | paste -sd' ')" == "$(seq -f 'f%g' 0 "$follow_bookings" | paste -sd' ')" ]] ||
    die "events --follow: the lines are not f0..f$follow_bookings in order"
# latencies KIND: one latency in ms per line (KIND upper: from "at", lower: from the exit).
# "at" is UTC ISO 8601 with ms; compared within the day (a day's wrap is undone).
latencies() {
    awk -v kind="$1" 'NR == FNR { exit_at[$1] = $2; next }
        { arrive = $1
          match($0, /"user":"f[0-9]+"/); user = substr($0, RSTART + 8, RLENGTH - 9)
          if (!(user in exit_at)) next
          if (kind == "lower") { print (arrive - exit_at[user]) * 1000; next }
          match($0, /"at":"[^"]*"/); t = substr($0, RSTART + 6, RLENGTH - 7)
          at = substr(t, 12, 2) * 3600 + substr(t, 15, 2) * 60 + substr(t, 18, 6)
          d = (arrive % 86400) - at; if (d < -43200) d += 86400
          print d * 1000 }' "$work/follow.exits" "$work/follow.log" | sort -g
}
# pct P: the P-th percentile of the sorted numbers on stdin (nearest rank).
pct() { awk -v p="$1" '{ v[NR] = $1 } END { i = int((NR * p + 99) / 100); if (i < 1) i = 1; printf "%.2f", v[i] }'; }
latencies upper >"$work/upper.ms"
latencies lower >"$work/lower.ms"
p99=$(pct 99 <"$work/upper.ms")
say "  from the event's time (upper bound): p50 $(pct 50 <"$work/upper.ms") ms, p90 $(pct 90 <"$work/upper.ms") ms, p99 $p99 ms, max $(pct 100 <"$work/upper.ms") ms"
say "  from book's exit (lower bound):      p50 $(pct 50 <"$work/lower.ms") ms, p99 $(pct 99 <"$work/lower.ms") ms, max $(pct 100 <"$work/lower.ms") ms"
say "  p99 < 100 ms: $(awk -v a="$p99" 'BEGIN { print (a < 100 ? "PASS" : "MISS") }')   (checked: $arrived lines for $follow_bookings bookings, in order, verify clean)"

# ---------------------------------------------------------------------------------------
section "summary (one run; every check passed)"
say "single book:      flashsale / psql -c book() ${r_single}x (mean $(ms "$mean_flashsale") against $(ms "$mean_psql") ms)   target <= 1.0x: $(verdict "$r_single" 1.0)"
say "$workers at once:     flashsale $(commas "$rate_cfs")/s ($fail_cfs failures) / pgbench -C $(commas "$rate_cpg")/s ($fail_cpg failures) = ${r_conc}x   target >= 0.8x, 0 failures: $(at_least "$r_conc" 0.8)"
say "  (a psql process per decision: $(commas "$rate_cpsql")/s, flashsale / psql $(ratio "$rate_cfs" "$rate_cpsql")x; pgbench -c $workers, kept connections: $(commas "$rate_kept")/s)"
for tag in w1 w2; do
    a=${tag}_anchor s=${tag}_stream e=${tag}_e2e
    say "${tag^^} anchor decide_batch_set $(commas "${!a}")/s:"
    say "  book --stream    $(commas "${!s}")/s -> $(ratio "${!s}" "${!a}")x   target >= 0.8x: $(at_least "$(ratio "${!s}" "${!a}")" 0.8)"
    say "  submit + process $(commas "${!e}")/s -> $(ratio "${!e}" "${!a}")x   target >= 0.8x: $(at_least "$(ratio "${!e}" "${!a}")" 0.8)"
done
say "peak RSS (flashsale-serve after the hand-off):"
for label in w1_stream_rss w1_process_rss w2_stream_rss w2_process_rss; do
    printf '  %-16s %6.1f MiB   target <= 32 MiB: %s\n' "${label%_rss}" "$(mib "${!label}")" "$(verdict "${!label}" "$rss_target_kib")"
done
say "  (not targeted: submit $(mib "$w1_submit_rss") MiB (W1), $(mib "$w2_submit_rss") MiB (W2))"
say "events --follow: p99 $p99 ms from the event's time to the line   target < 100 ms: $(awk -v a="$p99" 'BEGIN { print (a < 100 ? "PASS" : "MISS") }')"
say "run time: $(awk -v a="$run_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s (without the build); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
