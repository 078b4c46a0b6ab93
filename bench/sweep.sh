#!/usr/bin/env bash
# The sweep benchmark (issue 12): `flashsale sweep` of 100,000 overdue holds against
# SQLite's own set-based update of the same rows (one INSERT ... SELECT of the events, one
# UPDATE of the bookings, one of the sale's counters, in one transaction) through the
# sqlite3 shell, on copies of the same database; the peak RSS of sweep; and with --big, a
# sweep of 1,000,000 holds, alone and then beside four loops of `book` processes, whose
# exit codes and wall times it tallies. Run by hand (see bench/README.md):
#
#     bench/sweep.sh                                  # builds the static release first
#     FLASHSALE_BIN=path/to/flashsale bench/sweep.sh  # measures that binary instead
#     bench/sweep.sh --big                            # adds the 1,000,000-hold runs
#
# Knobs: BENCH_TMPDIR (where the temp dir goes; it must be a real disk, not tmpfs, or
# fsync costs nothing), BENCH_BOOK_LOOPS (book loops beside the big sweep, default 4),
# FLASHSALE_SCRATCH (a --scratch-path for the build). Exits 0 when every measurement ran
# and every check passed; a missed target is reported, not an error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_arguments --big "$@"   # sets big

sale=s1
holds=100000
big_holds=1000000
spare=200000                      # items left for the books beside the big sweep
loops=${BENCH_BOOK_LOOPS:-4}
made_at=2026-11-24T15:00:00Z      # the holds are made then (1 h holds) ...
swept_at=2026-11-24T17:00:00Z     # ... and swept an hour after they expired
swept_ms=1795539600000            # $swept_at in Unix milliseconds
ratio_target=2.0
rss_target_kib=$(( 32 * 1024 ))
p99_target_ms=250

commas() { printf '%s\n' "$1" | sed ':a; s/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/; ta'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f\n", k / 1024 }'; }
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (a + b) / 2 }'; }

# $EPOCHREALTIME times each book.
require_bash_5_1

# ---------------------------------------------------------------------------------------
section "tools"
missing=()
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
[[ -x /usr/bin/time ]] || missing+=(time)
install_packages "${missing[@]}"
say "sqlite3 $(sqlite3 --version | cut -d' ' -f1); $(/usr/bin/time --version 2>&1 | head -1); bash $BASH_VERSION"
find_flashsale
make_workdir sweep   # sets work; the trap removes it

section "machine"
say "cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); temp dir: $work ($(stat -f -c %T "$work"), $(df -h --output=avail "$work" | tail -1 | tr -d ' ') free)"
warn_if_tmpfs
say "note: on a shared, noisy machine compare the ratios, not the absolute times; run 3 times"
run_start=$EPOCHREALTIME


# make_holds DB N EXTRA: a sale of N + EXTRA items (1 h holds, 1 per user) whose N holds,
# made by `book --stream` at $made_at for users u1..uN, are all overdue at $swept_at.
# Closed, so that the file alone holds everything (the last connection checkpoints).
make_holds() {
    local db=$1 n=$2 extra=$3 start
    FLASHSALE_NOW=$made_at "$bin" -q --db "$db" init
    FLASHSALE_NOW=$made_at "$bin" -q --db "$db" create-sale "$sale" --inventory $(( n + extra )) --hold 1h --per-user 1
    start=$EPOCHREALTIME
    awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "{\"user\":\"u%d\"}\n", i }' |
        FLASHSALE_NOW=$made_at "$bin" --db "$db" book "$sale" --stream >/dev/null
    [[ "$(sqlite3 "$db" "SELECT held FROM sale")" == "$n" ]] || die "book --stream made $(sqlite3 "$db" "SELECT held FROM sale") holds, expected $n"
    [[ ! -e "$db-wal" ]] || die "$db-wal is left over: a copy of $db would miss it"
    say "  $(commas "$n") holds made by book --stream in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s ($(du -h "$db" | cut -f1))"
}
fresh_copy() { rm -f "$2" "$2-wal" "$2-shm"; cp "$1" "$2"; }

# SQLite's own set-based expiry of the same rows: the events in flashsale's order (its
# partial index gives it), the bookings, the counters, in one durable transaction.
reference_sql="PRAGMA synchronous = FULL;
BEGIN IMMEDIATE;
INSERT INTO event (at, sale, kind, booking, user, detail)
    SELECT $swept_ms, sale, 'expired', id, user, 'sweep' FROM booking
    WHERE sale = '$sale' AND status = 'held' AND expires_at <= $swept_ms ORDER BY expires_at, rowid;
DELETE FROM hold_second WHERE sale = '$sale' AND second <= $swept_ms / 1000;
INSERT INTO hold_second (sale, second, held)
    SELECT sale, expires_at / 1000, count(*) FROM booking
    WHERE sale = '$sale' AND status = 'held' AND expires_at > $swept_ms AND expires_at / 1000 = $swept_ms / 1000
    GROUP BY 1, 2;
UPDATE booking SET status = 'expired', expired_at = expires_at
    WHERE sale = '$sale' AND status = 'held' AND expires_at <= $swept_ms;
UPDATE sale SET held = held - changes(), available = available + changes(), expired = expired + changes(),
    high_water = max(high_water, $swept_ms) WHERE id = '$sale';
COMMIT;"

# check_swept DB N LABEL: nothing held, N expired with one `expired` event each, verify clean.
check_swept() {
    local db=$1 n=$2 label=$3 counts
    counts=$(sqlite3 "$db" "SELECT held || ' ' || expired || ' ' || (SELECT count(*) FROM event WHERE kind = 'expired') FROM sale WHERE id = '$sale'")
    [[ "$counts" == "0 $n $n" ]] || die "$label: held/expired/events are $counts, expected 0 $n $n"
    "$bin" -q --db "$db" verify || die "$label: flashsale verify found violations"
}

# reference_run TEMPLATE N LABEL / sweep_run TEMPLATE N LABEL: on a fresh copy; set secs, rss.
reference_run() {
    local db="$work/ref.db"
    fresh_copy "$1" "$db"
    timed "ref-$3" sqlite3 -bail "$db" <<<"$reference_sql" || die "the sqlite3 reference failed"
    local s=$secs r=$rss
    check_swept "$db" "$2" "sqlite3 ($3)"
    rm -f "$db" "$db-wal" "$db-shm"
    say "  $3  sqlite3    $s s  peak RSS $(mib "$r") MiB"
    secs=$s rss=$r
}
sweep_run() {
    local db="$work/fs.db" out
    fresh_copy "$1" "$db"
    timed "sweep-$3" env FLASHSALE_NOW=$swept_at "$bin" --db "$db" sweep >"$work/sweep.out" || die "sweep failed: $(cat "$work/sweep.out")"
    local s=$secs r=$rss
    out=$(cat "$work/sweep.out")
    [[ "$out" == "$2" ]] || die "sweep printed \"$out\", expected $2"
    check_swept "$db" "$2" "sweep ($3)"
    rm -f "$db" "$db-wal" "$db-shm"
    say "  $3  flashsale  $s s  peak RSS $(mib "$r") MiB"
    secs=$s rss=$r
}

# compare TEMPLATE N: two rounds, sqlite3 / sweep / sweep / sqlite3, so that drifting
# load favours neither; sets ratio (mean sweep / mean sqlite3) and sweep_rss (the larger).
cmp_ratio= sweep_rss=
compare() {
    local r1 r2 s1 s2 rss1 rss2
    reference_run "$1" "$2" "round 1"; r1=$secs
    sweep_run "$1" "$2" "round 1"; s1=$secs rss1=$rss
    sweep_run "$1" "$2" "round 2"; s2=$secs rss2=$rss
    reference_run "$1" "$2" "round 2"; r2=$secs
    sweep_rss=$(( rss1 > rss2 ? rss1 : rss2 ))
    cmp_ratio=$(ratio "$(mean "$s1" "$s2")" "$(mean "$r1" "$r2")")
    say "  sweep $(mean "$s1" "$s2") s / sqlite3 $(mean "$r1" "$r2") s = ${cmp_ratio}x   target <= ${ratio_target}x: $(verdict "$cmp_ratio" "$ratio_target")"
    say "  sweep peak RSS $(mib "$sweep_rss") MiB   target <= 32 MiB: $(verdict "$sweep_rss" "$rss_target_kib")"
}

# ---------------------------------------------------------------------------------------
section "$(commas $holds) overdue holds: flashsale sweep against sqlite3's set-based update"
say "flashsale --db fs.db sweep   (FLASHSALE_NOW=$swept_at)"
say "sqlite3 -bail ref.db <<< 'BEGIN IMMEDIATE; INSERT INTO event ... SELECT ...; UPDATE booking ...; UPDATE sale ...; COMMIT'"
make_holds "$work/holds.db" "$holds" 0
compare "$work/holds.db" "$holds"
small_ratio=$cmp_ratio small_rss=$sweep_rss
rm -f "$work/holds.db"

big_ratio= big_rss= beside_rss= beside_secs= tally= p50= p99= books=0
if (( big )); then
    section "$(commas $big_holds) overdue holds"
    make_holds "$work/big.db" "$big_holds" "$spare"
    compare "$work/big.db" "$big_holds"
    big_ratio=$cmp_ratio big_rss=$sweep_rss

    section "$(commas $big_holds) overdue holds swept beside $loops loops of book processes"
    say "each loop: flashsale --db fs.db book $sale bL-I, one after another, until the sweep ends (default --busy-timeout 5s)"
    db="$work/fs.db"
    fresh_copy "$work/big.db" "$db"
    rm -f "$work/big.db"
    start=$EPOCHREALTIME
    FLASHSALE_NOW=$swept_at /usr/bin/time -v -o "$work/beside.time" "$bin" --db "$db" sweep >"$work/sweep.out" 2>"$work/sweep.err" &
    sweep_pid=$!
    for loop in $(seq "$loops"); do
        (
            i=0
            while kill -0 "$sweep_pid" 2>/dev/null; do
                i=$(( i + 1 ))
                t0=$EPOCHREALTIME
                status=0
                FLASHSALE_NOW=$swept_at "$bin" -q --db "$db" book "$sale" "b$loop-$i" 2>>"$work/books.err" || status=$?
                printf '%s %s\n' "$status" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }')"
            done >"$work/books-$loop.txt"
        ) &
    done
    wait "$sweep_pid" || die "the sweep beside the books failed: $(cat "$work/sweep.err")"
    beside_secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
    wait   # the book loops end with the sweep
    beside_rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/beside.time")
    cat "$work"/books-*.txt >"$work/books.txt"
    books=$(wc -l <"$work/books.txt")
    (( books > 0 )) || die "no book ran beside the sweep"
    tally=$(cut -d' ' -f1 "$work/books.txt" | sort -n | uniq -c | awk '{ printf "%s%s x exit %s", sep, $1, $2; sep = ", " }')
    read -r p50 p99 < <(cut -d' ' -f2 "$work/books.txt" | sort -n |
        awk '{ v[NR] = $1 } END { i50 = int(NR * 0.50 + 0.999); i99 = int(NR * 0.99 + 0.999); print v[i50], v[i99] }')
    swept=$(cat "$work/sweep.out")
    held=$(sqlite3 "$db" "SELECT count(*) FROM booking WHERE status = 'held'")
    [[ "$swept" == "$big_holds" ]] || die "the sweep beside the books printed \"$swept\", expected $big_holds"
    [[ "$held" == "$(grep -c '^0 ' "$work/books.txt" || true)" ]] || die "$held holds left, but $(grep -c '^0 ' "$work/books.txt") books succeeded"
    "$bin" -q --db "$db" verify || die "verify found violations after the sweep beside the books"
    say "  sweep: $(commas "$swept") expired in $beside_secs s, peak RSS $(mib "$beside_rss") MiB"
    say "  books: $books ran ($tally); wall time p50 $p50 ms, p99 $p99 ms, max $(cut -d' ' -f2 "$work/books.txt" | sort -n | tail -1) ms"
    say "  no exit 75: $( [[ "$tally" == *"exit 75"* ]] && echo MISS || echo PASS); p99 < $p99_target_ms ms: $(awk -v p="$p99" -v t="$p99_target_ms" 'BEGIN { print (p < t ? "PASS" : "MISS") }')"
    say "  checked: verify clean, every successful book holds its item"
    [[ ! -s "$work/books.err" ]] || say "  book stderr (first lines): $(head -3 "$work/books.err" | tr '\n' ' ')"
    rm -f "$db" "$db-wal" "$db-shm"
fi

# ---------------------------------------------------------------------------------------
section "summary"
say "sweep / sqlite3, $(commas $holds) holds:     ${small_ratio}x   target <= ${ratio_target}x: $(verdict "$small_ratio" "$ratio_target")"
[[ -n "$big_ratio" ]] && say "sweep / sqlite3, $(commas $big_holds) holds:   ${big_ratio}x"
say "sweep peak RSS, $(commas $holds) holds:     $(mib "$small_rss") MiB   target <= 32 MiB: $(verdict "$small_rss" "$rss_target_kib")"
if (( big )); then
    say "sweep peak RSS, $(commas $big_holds) holds:   $(mib "$big_rss") MiB alone, $(mib "$beside_rss") MiB beside the books   target <= 32 MiB: $(verdict "$(( big_rss > beside_rss ? big_rss : beside_rss ))" "$rss_target_kib")"
    say "books beside the $(commas $big_holds)-hold sweep: $books ($tally); p50 $p50 ms, p99 $p99 ms   targets: no exit 75, p99 < $p99_target_ms ms"
else
    say "(run with --big for the $(commas $big_holds)-hold sweep and the books beside it)"
fi
say "run time: $(awk -v a="$run_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s (without the build); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
