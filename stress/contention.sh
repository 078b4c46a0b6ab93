#!/usr/bin/env bash
# Contention: PROCESSES workers at once, each running OPS random flashsale commands
# (book, confirm, cancel, cancel --force, sweep, submit, process, seed-inventory,
# pause/resume) on three small sales and many users. Afterwards: every exit code one the
# contract allows for that command, every printed booking and request id committed, keys
# idempotent, and the independent recount (recount.sql) clean.
#   contention.sh --seed S [--processes 64] [--ops 500]
set -uo pipefail
source "$(dirname "$0")/lib.sh"

seed=1 processes=64 ops=500
while (($#)); do
    case $1 in
        --seed) seed=$2; shift 2 ;;
        --processes) processes=$2; shift 2 ;;
        --ops) ops=$2; shift 2 ;;
        *) echo "usage: contention.sh --seed S [--processes N] [--ops N]" >&2; exit 2 ;;
    esac
done
[[ -n ${FLASHSALE:-} ]] || flashsale_binary

work=$(mktemp -d /tmp/flashsale-contention.XXXXXX)
db=$work/sale.db
fs() { "$FLASHSALE" --db "$db" "$@"; }

# Few items, many users: s1 sells out at once, s2 allows two per user, s3 has holds that
# expire within the run (250 ms), so sweep, reclaim and confirm-at-expiry all happen.
fs create-sale s1 --inventory 10 --hold 2s -q
fs create-sale s2 --inventory 25 --hold 1s --per-user 2 -q
fs create-sale s3 --inventory 5 --hold 250ms -q

# The exit codes the contract allows each command here (75: busy, retry, allowed but counted).
allowed() { # OP STATUS
    case "$1:$2" in
        *:75) return 0 ;;
        book:0 | book:6 | book:7 | book:8) return 0 ;;
        confirm:0 | confirm:4 | confirm:5) return 0 ;; # 4: it was cancelled; 5: expired
        cancel:0 | cancel:4) return 0 ;;              # 4: booked, needs --force
        cancel-force:0 | sweep:0 | submit:0 | process:0 | seed-add:0 | pause:0 | resume:0) return 0 ;;
        seed-set:0 | seed-set:4) return 0 ;;          # 4: below held + booked
        *) return 1 ;;
    esac
}

worker() { # N: one process's random walk, logged one line per command
    local w=$1 i op sale user status out key booking r
    local -a mine=() mine_sale=() bkeys=() bkey_user=() bkey_sale=() qkeys=() qkey_user=() qkey_sale=()
    RANDOM=$((seed * 1000 + w))
    local sales=(s1 s2 s3)
    exec >"$work/w$w.log" 2>"$work/w$w.err"
    for ((i = 0; i < ops; i++)); do
        r=$((RANDOM % 100))
        sale=${sales[RANDOM % 3]}
        user=u$((RANDOM % 400))
        key=
        if ((r < 30)); then
            op=book
            if ((${#bkeys[@]} && RANDOM % 5 == 0)); then # the same key again: the same booking
                local k=$((RANDOM % ${#bkeys[@]}))
                key=${bkeys[k]} user=${bkey_user[k]} sale=${bkey_sale[k]}
            elif ((RANDOM % 3 == 0)); then
                key=b$w.$i
                bkeys+=("$key") bkey_user+=("$user") bkey_sale+=("$sale")
            fi
            out=$(fs book "$sale" "$user" ${key:+--key "$key"} 2>>"$work/w$w.err"); status=$?
            if ((status == 0)); then mine+=("$out") mine_sale+=("$sale"); fi
            echo "book $status $sale $user ${key:--} ${out:--}"
            continue
        elif ((r < 45)); then
            op=confirm
        elif ((r < 53)); then
            op=cancel
        elif ((r < 57)); then
            op=cancel-force
        elif ((r < 62)); then
            fs sweep -q; echo "sweep $?"; continue
        elif ((r < 77)); then
            if ((${#qkeys[@]} && RANDOM % 5 == 0)); then
                local k=$((RANDOM % ${#qkeys[@]}))
                key=${qkeys[k]} user=${qkey_user[k]} sale=${qkey_sale[k]}
            elif ((RANDOM % 3 == 0)); then
                key=q$w.$i
                qkeys+=("$key") qkey_user+=("$user") qkey_sale+=("$sale")
            fi
            out=$(fs submit "$sale" "$user" ${key:+--key "$key"}); status=$?
            echo "submit $status $sale $user ${key:--} ${out:--}"
            continue
        elif ((r < 87)); then
            fs process --batch $((1 + RANDOM % 20)) --limit $((1 + RANDOM % 40)) -q; echo "process $?"; continue
        elif ((r < 91)); then
            fs seed-inventory "$sale" $((1 + RANDOM % 3)) -q; echo "seed-add $? $sale"; continue
        elif ((r < 93)); then
            fs seed-inventory "$sale" $((5 + RANDOM % 25)) --set -q; echo "seed-set $? $sale"; continue
        elif ((r < 96)); then
            fs pause "$sale" -q; echo "pause $? $sale"; continue
        else
            fs resume "$sale" -q; echo "resume $? $sale"; continue
        fi
        # confirm / cancel / cancel --force one of this worker's bookings
        if ((${#mine[@]} == 0)); then
            fs sweep -q; echo "sweep $?"; continue
        fi
        local k=$((RANDOM % ${#mine[@]}))
        booking=${mine[k]} sale=${mine_sale[k]}
        case $op in
            confirm) fs confirm "$sale" "$booking" -q; status=$? ;;
            cancel) fs cancel "$sale" "$booking" -q; status=$? ;;
            cancel-force) fs cancel "$sale" "$booking" --force -q; status=$? ;;
        esac
        echo "$op $status $sale $booking"
    done
}

say "contention seed $seed: $processes processes x $ops operations on 3 sales, 400 users ($work)"
start=$(now_ms)
pids=()
for ((w = 0; w < processes; w++)); do
    worker "$w" &
    pids+=($!)
done
wait "${pids[@]}"
elapsed=$(($(now_ms) - start))

# Let the queue drain: every request must end decided.
for s in s1 s2 s3; do fs resume "$s" -q; done
fs process -q || violation contention "seed $seed: the final process exited $?"

cat "$work"/w*.log >"$work/all.log"
total=$(wc -l <"$work/all.log")
say "  ran $total operations in $((elapsed / 1000)).$((elapsed % 1000 / 100)) s; exits: $(awk '{print $1"="$2}' "$work/all.log" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')"
((total == processes * ops)) || violation contention "seed $seed: $total operations logged, expected $((processes * ops))"
while read -r op status rest; do
    allowed "$op" "$status" || violation exit-code "seed $seed: $op exited $status ($rest): $(grep -h -m1 . "$work"/w*.err | head -1)"
done <"$work/all.log"
if grep -q . "$work"/w*.err; then
    say "  stderr lines seen: $(cat "$work"/w*.err | sed 's/bk_[A-Za-z0-9_-]*/bk_…/g' | sort | uniq -c | sort -rn | head -5 | tr -s ' ' | tr '\n' ';')"
fi

# Printed means committed: every booking id a book printed is in the database as that
# user's, in that sale; every request id a submit printed is that user's request.
awk '$1 == "book" && $2 == 0 {print $6 "," $3 "," $4 "," $5}' "$work/all.log" >"$work/booked.csv"
awk '$1 == "submit" && $2 == 0 {print $6 "," $3 "," $4 "," $5}' "$work/all.log" >"$work/submitted.csv"
missing=$(sqlite3 "$db" <<SQL
CREATE TEMP TABLE printed (id TEXT, sale TEXT, user TEXT, key TEXT);
CREATE TEMP TABLE queued (id INTEGER, sale TEXT, user TEXT, key TEXT);
.mode csv
.import $work/booked.csv printed
.import $work/submitted.csv queued
.mode list
SELECT 'booking ' || p.id || ' printed for ' || p.user || ' is ' || coalesce(b.sale || '/' || b.user || '/' || coalesce(b.key, '-'), 'missing')
FROM printed p LEFT JOIN booking b ON b.id = p.id
WHERE b.id IS NULL OR b.sale <> p.sale OR b.user <> p.user OR coalesce(b.key, '-') <> p.key;
SELECT 'key ' || key || ' printed ' || count(DISTINCT id) || ' booking ids' FROM printed WHERE key <> '-' GROUP BY key HAVING count(DISTINCT id) > 1;
SELECT 'request ' || q.id || ' printed for ' || q.user || ' is ' || coalesce(r.sale || '/' || r.user || '/' || coalesce(r.key, '-'), 'missing')
FROM queued q LEFT JOIN request r ON r.id = q.id
WHERE r.id IS NULL OR r.sale <> q.sale OR r.user <> q.user OR coalesce(r.key, '-') <> q.key;
SELECT 'key ' || key || ' printed ' || count(DISTINCT id) || ' request ids' FROM queued WHERE key <> '-' GROUP BY key HAVING count(DISTINCT id) > 1;
SQL
)
while read -r line; do [[ -n $line ]] && violation printed "seed $seed: $line"; done <<<"$missing"

recount "$db" "contention seed $seed"
integrity "$db" "contention seed $seed"
[[ ${KEEP:-} ]] || rm -rf "$work"
