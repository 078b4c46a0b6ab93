#!/usr/bin/env bash
# Clock edges, with FLASHSALE_NOW: at expiry - 1 ms a hold is confirmable and nothing
# takes it; at expiry every path treats it as expired (confirm, sweep, cancel, book's
# reclaim, the per-user limit, process, book --stream, status). Confirm racing sweep on
# the same hold from two processes never ends with both. A clock stepped backwards at
# random never extends a hold or reorders events (the recount's checks).
#   clock.sh --seed S [--races 200] [--steps 400]
set -uo pipefail
source "$(dirname "$0")/lib.sh"

seed=1 races=200 steps=400
while (($#)); do
    case $1 in
        --seed) seed=$2; shift 2 ;;
        --races) races=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        *) echo "usage: clock.sh --seed S [--races N] [--steps N]" >&2; exit 2 ;;
    esac
done
[[ -n ${FLASHSALE:-} ]] || flashsale_binary
work=$(mktemp -d /tmp/flashsale-clock.XXXXXX)

T=2026-11-24T15:00:00.000Z
BEFORE=2026-11-24T15:04:59.999Z # expiry - 1 ms of a 5 m hold made at T
AT=2026-11-24T15:05:00.000Z     # expiry
at() { local now=$1; shift; FLASHSALE_NOW=$now "$FLASHSALE" --db "$db" "$@" 2>/dev/null; }
edge() { # NAME WANT GOT
    [[ $2 == "$3" ]] || violation clock "$1: got $3, want $2"
    edges=$((edges + 1))
}

# A sale with one item, held by alice at T; a fresh copy for each path.
db=$work/template.db
at $T create-sale s1 --inventory 1 --hold 5m -q
hold=$(at $T book s1 alice)
fresh() { cp "$work/template.db" "$work/$1.db"; db=$work/$1.db; }

edges=0
for when in BEFORE AT; do
    now=${!when}
    fresh "confirm-$when"; at "$now" confirm s1 "$hold" -q; got=$?; edge "confirm at $when" "$([[ $when == AT ]] && echo 5 || echo 0)" $got
    fresh "sweep-$when"; edge "sweep at $when" "$([[ $when == AT ]] && echo 1 || echo 0)" "$(at "$now" sweep)"
    fresh "cancel-$when"; at "$now" cancel s1 "$hold" -q
    edge "cancel at $when: status" "$([[ $when == AT ]] && echo expired || echo cancelled)" "$(at "$now" booking s1 "$hold" --json | jq -r .status)"
    fresh "book-$when"; at "$now" book s1 bob >/dev/null; got=$?; edge "book (reclaim) at $when" "$([[ $when == AT ]] && echo 0 || echo 6)" $got
    fresh "limit-$when"; at "$now" seed-inventory s1 1 -q; at "$now" book s1 alice >/dev/null; got=$?
    edge "per-user limit at $when" "$([[ $when == AT ]] && echo 0 || echo 7)" $got
    fresh "process-$when"; at $T submit s1 bob -q; at "$now" process -q
    edge "process at $when: bob's request" "$([[ $when == AT ]] && echo held || echo rejected)" "$(at "$now" events | jq -r 'select(.request == 1) | .kind')"
    fresh "stream-$when"; edge "book --stream at $when" "$([[ $when == AT ]] && echo true || echo false)" \
        "$(echo '{"user":"bob"}' | FLASHSALE_NOW=$now "$FLASHSALE" --db "$db" book s1 --stream | jq -r .ok)"
    fresh "status-$when"; edge "status overdue at $when" "$([[ $when == AT ]] && echo 1 || echo 0)" "$(at "$now" status s1 --json | jq -r .overdue)"
done
say "clock: $edges expiry-edge checks (expiry - 1 ms and expiry, 8 paths)"

# Confirm at expiry - 1 ms racing sweep at expiry, two processes on the same hold: one wins.
confirmed=0 swept=0
for ((i = 0; i < races; i++)); do
    db=$work/race.db
    rm -f "$db"
    at $T create-sale s1 --inventory 1 --hold 5m -q
    hold=$(at $T book s1 alice)
    at $BEFORE confirm s1 "$hold" -q &
    c=$!
    n=$(at $AT sweep)
    wait $c
    cs=$?
    status=$(at $AT booking s1 "$hold" --json | jq -r .status)
    ((cs == 0)) && confirmed=$((confirmed + 1))
    [[ $n == 1 ]] && swept=$((swept + 1))
    if ((cs == 0)) && [[ $n == 1 ]]; then violation race "race $i: confirm exited 0 and sweep expired the hold"; fi
    if ! { { ((cs == 0)) && [[ $status == booked && $n == 0 ]]; } || { ((cs == 5)) && [[ $status == expired && $n == 1 ]]; }; }; then
        violation race "race $i: confirm exited $cs, sweep took $n, the booking is $status"
    fi
done
say "clock: $races confirm/sweep races: confirm won $confirmed, sweep won $swept"

# A clock that jumps backwards at random: book, confirm, cancel, sweep, submit, process at
# random times around a moving 'now'; afterwards no event is earlier than the one before
# it in its sale, no hold ends before its time, no confirm after expiry (recount.sql).
db=$work/walk.db
RANDOM=$seed
base=1795532400000 # 2026-11-24T15:00:00Z in ms
now=$base
FLASHSALE_NOW=$T "$FLASHSALE" --db "$db" create-sale s1 --inventory 5 --hold 10s --per-user 2 -q
holds=() backwards=0
for ((i = 0; i < steps; i++)); do
    if ((RANDOM % 3 == 0)); then now=$((now - RANDOM % 20000)); backwards=$((backwards + 1)); else now=$((now + RANDOM % 5000)); fi
    t=$((now / 1000)).$(printf '%03d' $((now % 1000)))
    user=u$((RANDOM % 6))
    case $((RANDOM % 6)) in
        0 | 1) id=$(at "$t" book s1 "$user") && holds+=("$id") ;;
        2) ((${#holds[@]})) && at "$t" confirm s1 "${holds[RANDOM % ${#holds[@]}]}" -q ;;
        3) ((${#holds[@]})) && at "$t" cancel s1 "${holds[RANDOM % ${#holds[@]}]}" -q ;;
        4) at "$t" sweep -q ;;
        5) at "$t" submit s1 "$user" -q; at "$t" process -q ;;
    esac
done
say "clock: $steps steps of a clock that went backwards $backwards times (seed $seed)"
recount "$db" "clock walk seed $seed"
integrity "$db" "clock walk seed $seed"
[[ ${KEEP:-} ]] || rm -rf "$work"
