#!/usr/bin/env bash
# Crash: five writers (book, book --stream, submit --file, process, sweep) run again and
# again on one database while a killer sends SIGKILL to one of them every 50 ms. Afterwards:
# PRAGMA integrity_check ok, verify clean, the recount clean (every request decided exactly
# once, after a final process), every decision a killed process printed in the database,
# and every bulk submit all or nothing.
#   crash.sh --seed S [--seconds 60] [--interval-ms 50]
set -uo pipefail
source "$(dirname "$0")/lib.sh"

seed=1 seconds=60 interval=50
while (($#)); do
    case $1 in
        --seed) seed=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --interval-ms) interval=$2; shift 2 ;;
        *) echo "usage: crash.sh --seed S [--seconds N] [--interval-ms N]" >&2; exit 2 ;;
    esac
done
[[ -n ${FLASHSALE:-} ]] || flashsale_binary

work=$(mktemp -d /tmp/flashsale-crash.XXXXXX)
db=$work/sale.db
mkdir "$work/out"
fs() { "$FLASHSALE" --db "$db" "$@"; }
# Started with `&` from the runner: the binary itself, not a function (a subshell), so
# that $! is the flashsale process the killer aims at.
# c1: plenty of stock, long holds; c2: few items whose holds expire at once, for sweep.
fs create-sale c1 --inventory 200000 --hold 1h -q
fs create-sale c2 --inventory 20 --hold 100ms -q
# The stream's input, replayed from the start after every kill: its keys make that safe.
for ((i = 1; i <= 20000; i++)); do printf '{"user":"s%d","key":"st%d"}\n' "$i" "$i"; done >"$work/stream.ndjson"

# Runs one writer again and again: its pid in pid.SLOT while it runs, its stdout kept in
# out/SLOT.N and its exit status in status.SLOT.
runner() { # SLOT
    local slot=$1 n=0 status
    RANDOM=$((seed * 100 + ${#slot}))
    while [[ ! -e $work/stop ]]; do
        n=$((n + 1))
        local out=$work/out/$slot.$n
        case $slot in
            book)
                local sale=c1; ((RANDOM % 4 == 0)) && sale=c2
                echo "$sale b$n" >"$out.args"
                "$FLASHSALE" --db "$db" book "$sale" "b$n" --key "bk$n" >"$out" 2>/dev/null &
                ;;
            stream) "$FLASHSALE" --db "$db" book c1 --stream <"$work/stream.ndjson" >"$out" 2>/dev/null & ;;
            submit)
                # 200 requests, each keyed by this run: all of them enqueued, or none.
                for ((i = 0; i < 200; i++)); do printf '{"user":"q%d","key":"sub%d.%d"}\n' $((RANDOM % 3000)) "$n" "$i"; done >"$out.in"
                "$FLASHSALE" --db "$db" submit c1 --file "$out.in" --json >"$out" 2>/dev/null &
                ;;
            process) "$FLASHSALE" --db "$db" process --batch 50 >"$out" 2>/dev/null & ;;
            sweep) "$FLASHSALE" --db "$db" sweep >"$out" 2>/dev/null & ;;
        esac
        echo $! >"$work/pid.$slot"
        wait $!
        status=$?
        rm -f "$work/pid.$slot"
        echo "$n $status" >>"$work/status.$slot"
    done
}

slots=(book stream submit process sweep)
say "crash seed $seed: ${slots[*]} restarted for ${seconds} s, one killed every ${interval} ms ($work)"
runners=()
for slot in "${slots[@]}"; do
    runner "$slot" 2>/dev/null &
    runners+=($!)
done

RANDOM=$seed
kills=0 misses=0
deadline=$(($(now_ms) + seconds * 1000))
delay=$(printf '0.%03d' "$interval")
while (($(now_ms) < deadline)); do
    sleep "$delay"
    slot=${slots[RANDOM % ${#slots[@]}]}
    pid=$(cat "$work/pid.$slot" 2>/dev/null) || { misses=$((misses + 1)); continue; }
    # Only ever our own flashsale on this database, never a recycled pid.
    if grep -qa -- "$db" "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid" 2>/dev/null; then
        kills=$((kills + 1))
    else
        misses=$((misses + 1))
    fi
done
touch "$work/stop"
wait "${runners[@]}"

say "  $kills kills ($misses times the chosen writer was between runs)"
for slot in "${slots[@]}"; do
    say "  $slot: $(wc -l <"$work/status.$slot") runs, $(awk '$2 == 137' "$work/status.$slot" | wc -l) killed, exits: $(awk '{print $2}' "$work/status.$slot" | sort -n | uniq -c | awk '{printf "%s:%s ", $2, $1}')"
    # Killed (137) is expected; otherwise only what the contract allows this writer.
    while read -r n status; do
        case "$slot:$status" in
            *:137 | *:0 | book:6 | book:7 | *:75) ;;
            *) violation exit-code "crash seed $seed: $slot run $n exited $status" ;;
        esac
    done <"$work/status.$slot"
done

# What the killed (and the finished) writers printed must be in the database.
{
    echo "BEGIN;"
    echo "CREATE TEMP TABLE printed_booking (id TEXT, key TEXT);"
    echo "CREATE TEMP TABLE submit_run (n INTEGER, printed INTEGER, first_id INTEGER, last_id INTEGER);"
    while read -r n status; do
        id=$(head -c 200 "$work/out/book.$n")
        [[ $id == bk_* && $(wc -l <"$work/out/book.$n") == 1 ]] && echo "INSERT INTO printed_booking VALUES ('${id%$'\n'}', 'bk$n');"
    done <"$work/status.book"
    for out in "$work"/out/stream.*; do
        # Only whole lines: the last one may have been cut by the kill.
        head -n "$(wc -l <"$out")" "$out"
    done | sort -u | jq -r 'select(.ok) | "INSERT INTO printed_booking VALUES (\u0027\(.booking)\u0027, \u0027st\(.line)\u0027);"' 
    while read -r n status; do
        if [[ -s $work/out/submit.$n ]]; then
            # A report has `enqueued`; a refusal (75, busy) prints {"error": ...} instead.
            jq -r --arg n "$n" 'if .enqueued then "INSERT INTO submit_run VALUES (\($n), 1, \(.first_id // "NULL"), \(.last_id // "NULL"));"
                else "INSERT INTO submit_run VALUES (\($n), 0, NULL, NULL);" end' "$work/out/submit.$n"
        else
            echo "INSERT INTO submit_run VALUES ($n, 0, NULL, NULL);"
        fi
    done <"$work/status.submit"
    echo "COMMIT;"
    echo "CREATE INDEX temp.printed_by_key ON printed_booking (key);"
    cat <<'SQL'
SELECT 'printed booking ' || p.id || ' (key ' || p.key || ') is not in the database'
FROM printed_booking p WHERE NOT EXISTS (SELECT 1 FROM booking b WHERE b.id = p.id AND b.key = p.key);
SELECT 'key ' || key || ' was printed with ' || count(DISTINCT id) || ' booking ids'
FROM printed_booking GROUP BY key HAVING count(DISTINCT id) > 1;
SELECT 'submit run ' || s.n || (CASE s.printed WHEN 1 THEN ' printed its report' ELSE ' was killed' END)
    || ' and left ' || (SELECT count(*) FROM request r WHERE r.key LIKE 'sub' || s.n || '.%') || ' of its 200 requests'
FROM submit_run s
WHERE (SELECT count(*) FROM request r WHERE r.key LIKE 'sub' || s.n || '.%') NOT IN (0, 200)
   OR (s.printed = 1 AND (SELECT count(*) FROM request r WHERE r.key LIKE 'sub' || s.n || '.%'
                          AND r.id BETWEEN s.first_id AND s.last_id) <> 200);
SELECT 'printed=' || (SELECT count(*) FROM printed_booking) || ' submits-whole=' ||
    (SELECT count(*) FROM submit_run s WHERE (SELECT count(*) FROM request r WHERE r.key LIKE 'sub' || s.n || '.%') = 200)
    || ' submits-none=' || (SELECT count(*) FROM submit_run s WHERE NOT EXISTS (SELECT 1 FROM request r WHERE r.key LIKE 'sub' || s.n || '.%'));
SQL
} >"$work/printed.sql"
result=$(sqlite3 "$db" <"$work/printed.sql" 2>&1)
while read -r line; do
    case $line in
        printed=*) say "  checked: ${line}" ;;
        "") ;;
        *) violation printed "crash seed $seed: $line" ;;
    esac
done <<<"$result"

# Every request decided exactly once: drain the queue, then recount.
fs process -q || violation crash "crash seed $seed: the final process exited $?"
integrity "$db" "crash seed $seed"
recount "$db" "crash seed $seed"
[[ ${KEEP:-} ]] || rm -rf "$work"
