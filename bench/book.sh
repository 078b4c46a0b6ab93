#!/usr/bin/env bash
# The `book` benchmark: one durable booking decision per process, flashsale against the
# sqlite3 CLI doing the same transaction and against redis-cli EVALSHA of the anchor's Lua
# script (AOF, fsync always); then 32 concurrent book processes against 32 sqlite3 ones;
# then the release binary's size and shared libraries. Run by hand (see bench/README.md):
#
#     bench/book.sh                                   # builds the static release first
#     FLASHSALE_BIN=path/to/flashsale bench/book.sh   # measures that binary instead
#
# Knobs: BENCH_RUNS (timed bookings per contender, 500), BENCH_WARMUP (10), BENCH_WORKERS
# (32), BENCH_PER_WORKER (40 bookings each), BENCH_TMPDIR (where the temp dir goes; it
# must be a real disk, not tmpfs, or fsync costs nothing), FLASHSALE_SCRATCH (a
# --scratch-path for the build). Exits 0 when every measurement ran and every database
# checks out; a missed target is reported, not an error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

runs=${BENCH_RUNS:-500}
warmup=${BENCH_WARMUP:-10}
workers=${BENCH_WORKERS:-32}
per_worker=${BENCH_PER_WORKER:-40}
inventory=10000000
sale=s1

# say, section, die, ratio, verdict and the set-up steps below are in common.sh.

# $SRANDOM (32 random bits per use) makes the unique users and the Redis port.
require_bash_5_1

# ---------------------------------------------------------------------------------------
section "tools"
missing=()
command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
install_packages "${missing[@]}"
say "$(hyperfine --version); sqlite3 $(sqlite3 --version | cut -d' ' -f1); $(redis-server --version | cut -d' ' -f1-3); bash $BASH_VERSION"

find_flashsale

# ---------------------------------------------------------------------------------------
make_workdir bench   # sets work; the trap stops Redis and removes it

section "machine"
say "cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); temp dir: $work ($(stat -f -c %T "$work"))"
warn_if_tmpfs
say "note: on a shared, noisy machine compare the ratios, not the absolute times; run 3 times"

# One template database made by flashsale itself (same schema, WAL), copied per contender
# so that each starts from the same state. The last connection to close checkpoints and
# removes the -wal file, so a plain copy is complete.
make_template_db
fresh_copy() { cp "$work/template.db" "$1"; }

# The same decision as SaleStore.book, in one BEGIN IMMEDIATE transaction, durable
# (WAL is in the file; synchronous=FULL and the busy timeout are per connection):
#  - decision time now = max(clock, high_water) in ms, as flashsale does;
#  - the sale must be open at now, the user under per_user active bookings (held and not
#    expired, or booked), available > 0: then available -1, held +1 (guarded decrement);
#  - a booking row with 128 random bits of id, its second's count in hold_second (as
#    flashsale keeps it for counting overdue holds), and a 'held' event row.
# A declined decision writes a NULL sale into booking: NOT NULL fails, -bail exits 1 and
# the transaction rolls back, so a decline is a failure here as it is a non-zero exit there.
clock="CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
now="max(high_water, $clock)"
sql="PRAGMA busy_timeout = 5000;
PRAGMA synchronous = FULL;
BEGIN IMMEDIATE;
UPDATE sale SET available = available - 1, held = held + 1, high_water = $now
 WHERE id = '$sale' AND state = 'open' AND available > 0
   AND starts_at <= $now AND (ends_at IS NULL OR $now < ends_at)
   AND (SELECT count(*) FROM booking AS b
         WHERE b.sale = sale.id AND b.user = '@USER@' AND b.status IN ('held', 'booked')
           AND NOT (b.status = 'held' AND b.expires_at <= $now)) < per_user;
INSERT INTO booking (id, sale, user, status, created_at, expires_at)
  SELECT 'bk_' || lower(hex(randomblob(16))), CASE changes() WHEN 1 THEN id END, '@USER@', 'held',
         high_water, high_water + hold_ms
    FROM sale WHERE id = '$sale';
INSERT INTO hold_second (sale, second, held)
  SELECT sale, expires_at / 1000, 1 FROM booking WHERE rowid = last_insert_rowid()
  ON CONFLICT DO UPDATE SET held = held + 1;
INSERT INTO event (at, sale, kind, booking, user)
  SELECT created_at, sale, 'held', id, user FROM booking WHERE rowid = last_insert_rowid();
COMMIT;
SELECT booking FROM event WHERE seq = last_insert_rowid();"
export BENCH_SQL=$sql

# Checks a database after a phase: flashsale's own verify (counters, invariant, one 'held'
# event per booking) and exactly `expected` held bookings.
check_db() {
    local db=$1 expected=$2 label=$3 held
    "$bin" -q --db "$db" verify "$sale" || die "$label: flashsale verify found violations in $db"
    held=$(sqlite3 "$db" "SELECT held FROM sale WHERE id = '$sale'")
    [[ "$held" == "$expected" ]] || die "$label: $held held bookings, expected $expected (some runs were declined?)"
}

# ---------------------------------------------------------------------------------------
section "redis (127.0.0.1 only, private port, appendonly yes, appendfsync always)"
start_redis "$work/redis" always   # sets redis_pid, redis_port, rcli
port=$redis_port
sha=$(load_anchor_lua)
"${rcli[@]}" set "$sale:count" "$inventory" >/dev/null
say "Lua script loaded: $sha"

# ---------------------------------------------------------------------------------------
section "one book per process: wall time (hyperfine -N, $runs runs each, interleaved; $warmup warm-up each)"
fresh_copy "$work/fs.db"
fresh_copy "$work/sq.db"
# Every run must book a new user, or the per-user limit declines it. hyperfine -N (no shell,
# so nothing to subtract) with a parameter list of $runs unique users and one run per
# (command, user): hyperfine runs them user by user, the three commands one after the other,
# so a noisy moment on a shared machine hits all three alike. Users are "u<n>_<64 random bits>";
# the Redis booking id is "bk_<user>" (flashsale and the SQL draw 128 random bits each).
users=$(for (( i = 1; i <= runs; i++ )); do printf 'u%d_%08x%08x\n' "$i" "$SRANDOM" "$SRANDOM"; done | paste -sd,)
sql_line=$(printf %q "${sql//$'\n'/ }")
cmd_fs="$(printf %q "$bin") --db $(printf %q "$work/fs.db") book $sale {u}"
cmd_sq="sqlite3 -bail $(printf %q "$work/sq.db") ${sql_line//@USER@/\{u\}}"
cmd_rd="redis-cli -h 127.0.0.1 -p $port evalsha $sha 4 $sale:count $sale:users $sale:holds $sale:expiry {u} bk_{u} 3600"
say "flashsale: $cmd_fs"
say "sqlite3:   sqlite3 -bail sq.db '<the transaction above, one line, user {u}>'"
say "redis-cli: $cmd_rd"
# Warm-up, untimed: page cache, binaries, the databases' first pages, Redis's AOF file.
for (( i = 1; i <= warmup; i++ )); do
    "$bin" --db "$work/fs.db" book "$sale" "w$i" >/dev/null
    sqlite3 -bail "$work/sq.db" "${sql//@USER@/w$i}" >/dev/null
    [[ "$("${rcli[@]}" evalsha "$sha" 4 "$sale:count" "$sale:users" "$sale:holds" "$sale:expiry" "w$i" "bk_w$i" 3600)" == 1 ]] ||
        die "redis declined warm-up booking w$i"
done
# hyperfine's per-benchmark warnings (outliers, slow first run) are noise with one run each.
hyperfine -N --style none --runs 1 -L u "$users" --export-csv "$work/single.csv" \
    "$cmd_fs" "$cmd_sq" "$cmd_rd" 2>"$work/hyperfine.err" || { cat "$work/hyperfine.err" >&2; die "hyperfine failed"; }

expected=$(( warmup + runs ))
check_db "$work/fs.db" "$expected" flashsale
check_db "$work/sq.db" "$expected" sqlite3
redis_users=$("${rcli[@]}" scard "$sale:users")
redis_left=$("${rcli[@]}" get "$sale:count")
[[ "$redis_users" == "$expected" && "$redis_left" == "$(( inventory - expected ))" ]] ||
    die "redis: $redis_users users, $redis_left left; expected $expected and $(( inventory - expected ))"
say "checked: each contender made exactly $expected holds, none declined (verify clean on both databases)"

# CSV: command,mean,stddev,median,user,system,min,max,parameter_u, one row per run. The
# command may hold quoted commas, so numbers are taken from the end of the line.
# samples KIND COLUMN: that column (mean = the run's wall time, user, system) in seconds.
samples() {
    awk -F, -v kind="$1" -v col="$2" '
        NR == 1 { next }
        { k = ($0 ~ /^"?sqlite3 /) ? "sqlite3" : ($0 ~ /^"?redis-cli /) ? "redis-cli" : "flashsale" }
        k == kind { print (col == "wall") ? $(NF - 7) : (col == "user") ? $(NF - 4) : $(NF - 3) }' "$work/single.csv"
}
# stats: "mean stddev median min max" of numbers on stdin.
stats() {
    sort -g | awk '{ v[NR] = $1; s += $1; q += $1 * $1 }
        END { m = s / NR; sd = (NR > 1) ? sqrt((q - NR * m * m) / (NR - 1)) : 0
              med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              printf "%.9f %.9f %.9f %.9f %.9f\n", m, sd, med, v[1], v[NR] }'
}
declare -A mean median
say ""
say "single book, wall time per process (ms), $runs runs each:"
for name in flashsale sqlite3 redis-cli; do
    read -r m sd med lo hi < <(samples "$name" wall | stats)
    read -r um _ < <(samples "$name" user | stats)
    read -r sm _ < <(samples "$name" sys | stats)
    mean[$name]=$m
    median[$name]=$med
    awk -v n="$name" -v m="$m" -v sd="$sd" -v med="$med" -v lo="$lo" -v hi="$hi" -v u="$um" -v s="$sm" 'BEGIN {
        printf "  %-10s mean %6.2f ± %5.2f   median %6.2f   min %6.2f   max %7.2f   (user %5.2f, sys %5.2f)\n",
            n, m * 1000, sd * 1000, med * 1000, lo * 1000, hi * 1000, u * 1000, s * 1000 }'
done
r_sq=$(ratio "${mean[flashsale]}" "${mean[sqlite3]}")
r_rd=$(ratio "${mean[flashsale]}" "${mean[redis-cli]}")
rm_sq=$(ratio "${median[flashsale]}" "${median[sqlite3]}")
rm_rd=$(ratio "${median[flashsale]}" "${median[redis-cli]}")
say "  flashsale / sqlite3:   ${r_sq}x (medians ${rm_sq}x)   target <= 1.2x: $(verdict "$r_sq" 1.2)"
say "  flashsale / redis-cli: ${r_rd}x (medians ${rm_rd}x)   target <= 1.0x: $(verdict "$r_rd" 1.0)"

# ---------------------------------------------------------------------------------------
section "process start-up alone (hyperfine -N, no database work)"
# What a process costs before it decides anything, and flashsale opening the database
# (a read transaction, no fsync) to separate start-up from the durable commit.
qbin=$(printf %q "$bin")
hyperfine -N --style none --warmup 5 --runs 100 --export-csv "$work/startup.csv" \
    -n "flashsale --version" "$qbin --version" \
    -n "sqlite3 :memory: 'select 1'" "sqlite3 :memory: 'select 1'" \
    -n "redis-cli ping" "redis-cli -h 127.0.0.1 -p $port ping" \
    -n "flashsale status (open + read)" "$qbin --db $(printf %q "$work/fs.db") status $sale" \
    -n "sqlite3 read of the sale" "sqlite3 $(printf %q "$work/sq.db") 'SELECT * FROM sale'" \
    2>"$work/hyperfine.err" || { cat "$work/hyperfine.err" >&2; die "hyperfine failed"; }
say "start-up, mean ± σ (ms):"
awk -F, 'NR > 1 { printf "  %-34s %6.2f ± %5.2f   (user %5.2f, sys %5.2f)\n", $1, $2 * 1000, $3 * 1000, $5 * 1000, $6 * 1000 }' \
    "$work/startup.csv"

# ---------------------------------------------------------------------------------------
section "$workers processes at once, $per_worker bookings each (distinct users), busy timeout 5 s"
# Each worker runs its bookings one after another; all workers start together. A failure
# is any non-zero exit (flashsale: 75 = busy; sqlite3: "database is locked"; any decline).
# Two rounds in the order flashsale, sqlite3, sqlite3, flashsale (each on a fresh copy of
# the template), so drifting background load does not favour one side; totals add up both.
# concurrent LABEL ROUND: appends "decisions failures locked seconds" to $work/conc-LABEL.
concurrent() {
    local label=$1 round=$2 w
    local db="$work/conc-$label-$round.db" out="$work/conc-$label-$round"
    fresh_copy "$db"
    mkdir "$out"
    local start end pids=()
    start=$EPOCHREALTIME
    for (( w = 0; w < workers; w++ )); do
        (
            set +e
            ok=0 failed=0
            for (( i = 0; i < per_worker; i++ )); do
                user="c${w}_$i"
                if [[ "$label" == flashsale ]]; then
                    "$bin" --db "$db" book "$sale" "$user" >/dev/null 2>>"$out/$w.err"
                else
                    sqlite3 -bail "$db" "${BENCH_SQL//@USER@/$user}" >/dev/null 2>>"$out/$w.err"
                fi
                status=$?
                if (( status == 0 )); then ok=$(( ok + 1 )); else failed=$(( failed + 1 )); echo "exit $status" >>"$out/$w.err"; fi
            done
            echo "$ok $failed" >"$out/$w.count"
        ) &
        pids+=($!)
    done
    wait "${pids[@]}"   # not a bare wait: redis-server is a child of this shell too
    end=$EPOCHREALTIME
    local ok failed locked seconds
    ok=$(cat "$out"/*.count | awk '{ s += $1 } END { print s + 0 }')
    failed=$(cat "$out"/*.count | awk '{ s += $2 } END { print s + 0 }')
    locked=$(cat "$out"/*.err | grep -ciE 'locked|busy' || true)
    seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    awk -v l="$label" -v r="$round" -v n="$ok" -v s="$seconds" -v f="$failed" -v k="$locked" 'BEGIN {
        printf "  round %d  %-10s %5d decisions in %6.3f s = %5.0f/s; failures %d (locked/busy messages %d)\n", r, l, n, s, n / s, f, k }'
    if (( failed > 0 )); then
        say "    most frequent failure messages:"
        { cat "$out"/*.err | grep -v '^exit ' | sort | uniq -c | sort -rn | head -3 | sed 's/^/    /'; } || true
    fi
    check_db "$db" "$ok" "$label (concurrent, round $round)"
    echo "$ok $failed $locked $seconds" >>"$work/conc-$label"
}
concurrent flashsale 1
concurrent sqlite3 1
concurrent sqlite3 2
concurrent flashsale 2
# total LABEL: "decisions/s failures locked decisions seconds" over both rounds.
total() { awk '{ n += $1; f += $2; k += $3; s += $4 } END { printf "%.0f %d %d %d %.3f\n", n / s, f, k, n, s }' "$work/conc-$1"; }
read -r rate_fs fail_fs locked_fs n_fs s_fs < <(total flashsale)
read -r rate_sq fail_sq locked_sq n_sq s_sq < <(total sqlite3)
say "  flashsale: $n_fs decisions in $s_fs s = $rate_fs decisions/s, $fail_fs failures ($locked_fs locked/busy)"
say "  sqlite3:   $n_sq decisions in $s_sq s = $rate_sq decisions/s, $fail_sq failures ($locked_sq locked/busy)"
say "  flashsale / sqlite3 decisions per second: $(ratio "$rate_fs" "$rate_sq")x"

# ---------------------------------------------------------------------------------------
section "release binary"
size=$(stat -c %s "$bin")
say "size: $size bytes ($(awk -v b="$size" 'BEGIN { printf "%.1f", b / 1048576 }') MiB)"
if command -v file >/dev/null 2>&1; then say "file: $(file -b "$bin")"; fi
say "ldd $bin:"
# ldd exits 1 on a statically linked executable ("not a dynamic executable").
libs=$(ldd "$bin" 2>&1) || true
printf '%s\n' "$libs" | sed 's/^\s*/  /'
if ! printf '%s\n' "$libs" | grep -q '=>'; then
    libs_verdict="statically linked: no shared libraries at all"
else
    # System libraries: from the distribution's lib directories, and none of Swift's own
    # runtime (libswift*, Foundation, dispatch, ICU) that --static-swift-stdlib should embed.
    foreign=$(printf '%s\n' "$libs" | awk '
        /=>/ { name = $1; path = $3 }
        !/=>/ { name = $1; path = $1 }
        name ~ /^linux-vdso/ { next }
        name ~ /swift|Foundation|dispatch|BlocksRuntime|icu/ || path !~ /^\/(usr\/)?lib(64|\/x86_64-linux-gnu|\/aarch64-linux-gnu)?\// { print name " => " path }')
    extra=$(printf '%s\n' "$libs" | awk '{ print $1 }' |
        grep -vE '^(linux-vdso|libc\.so|libm\.so|libsqlite3\.so|/lib64/ld-linux|ld-linux)' | paste -sd' ' || true)
    if [[ -n "$foreign" ]]; then
        libs_verdict="NOT only system libraries: $(printf '%s\n' "$foreign" | paste -sd' ')"
    elif [[ -n "$extra" ]]; then
        libs_verdict="only system libraries: yes (no Swift runtime libraries), but beyond libc, libm, libsqlite3 and the loader also: $extra"
    else
        libs_verdict="only system libraries: yes, exactly libc, libm, libsqlite3 and the loader"
    fi
fi
say "$libs_verdict"

section "summary"
say "single book:  flashsale / sqlite3 ${r_sq}x (target <= 1.2x: $(verdict "$r_sq" 1.2)), flashsale / redis-cli ${r_rd}x (target <= 1.0x: $(verdict "$r_rd" 1.0))"
say "$workers at once: flashsale $rate_fs/s ($fail_fs failures), sqlite3 $rate_sq/s ($fail_sq failures), ratio $(ratio "$rate_fs" "$rate_sq")x"
say "binary: $size bytes; $libs_verdict"
say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
