#!/usr/bin/env bash
# The HTTP benchmark of `flashsale serve` (issue 13): durable POST /booking-service/book-item/SALE
# under wrk on 127.0.0.1, against the anchors of ../shared/anchors/http in the same run: Node +
# Redis running the seed's Lua hold script (AOF always, and everysec for reference) and
# Hummingbird's constant handler (the ceiling of the Swift HTTP stack). Scenarios: a sale of
# 1,000 items (sold out within the warm-up: the run is declines) and one of 100,000,000 (the
# run is holds), each at 64 and 1,000 connections; then 10,000 open connections. Every server
# starts fresh for each run and is warmed up at 64 connections first. Run by hand (see
# bench/README.md):
#
#     bench/http.sh                                      # builds the static release first
#     FLASHSALE_BIN=path/to/flashsale bench/http.sh      # measures that binary (and its flashsale-serve)
#     bench/http.sh --quick                              # a smoke run: 2 s per run, 1 s warm-up
#
# Knobs: BENCH_SECONDS (each measured run, 10), BENCH_WARMUP_SECONDS (2), BENCH_TMPDIR (where
# the temp dir goes; it must be a real disk, not tmpfs, or fsync costs nothing),
# FLASHSALE_SCRATCH (a --scratch-path for the build), BENCH_ANCHORS (the anchors' directory,
# ../shared/anchors/http beside the repository), HB_SCRATCH (a --scratch-path for the
# Hummingbird anchor's build, kept between runs; default: in the temp dir, rebuilt each run),
# HB_BIN (a built HBHello to take instead). Exits 0 when every run completed and every check
# passed; a missed target is reported (MISS), not an error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/workload.sh"   # commas, at_least, mib
source "$(dirname "${BASH_SOURCE[0]}")/http-lib.sh"   # start_serve, load, check_serve, ...

parse_arguments --quick "$@"   # sets quick

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
anchors=${BENCH_ANCHORS:-$repo/../shared/anchors/http}
seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP_SECONDS:-2}
(( quick )) && seconds=${BENCH_SECONDS:-2} warmup=${BENCH_WARMUP_SECONDS:-1}
small=stock1k small_stock=1000
large=stock100m large_stock=100000000
crowd=10000                  # the open-connections run
rss_target_kib=$(( 128 * 1024 ))
user_header=X-User

# $SRANDOM (32 random bits per use) makes the ports.
require_bash_5_1

# ---------------------------------------------------------------------------------------
section "tools"
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
install_packages "${missing[@]}"
command -v node >/dev/null 2>&1 || die "the Node + Redis anchor needs node (no npm packages)"
for file in server.js post.lua hb-hello/Package.swift; do
    [[ -f "$anchors/$file" ]] || die "no $anchors/$file: set BENCH_ANCHORS to the anchors' directory"
done
anchors=$(cd "$anchors" && pwd)
say "$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); $(redis-server --version | cut -d' ' -f1-3); node $(node --version); bash $BASH_VERSION"
say "anchors: $anchors"

# wrk holds every connection open at once, and serve one descriptor for each.
raise_open_files "$crowd"
say "open files (ulimit -n): $(ulimit -n)"

find_flashsale
serve_bin="$(dirname "$bin")/flashsale-serve"
[[ -x "$serve_bin" ]] || die "no flashsale-serve beside $bin: flashsale serve execs it"

make_workdir http   # sets work; the trap stops Redis and $server_pid and removes it

if [[ -n "${HB_BIN:-}" ]]; then
    hb_bin=$HB_BIN
    say "Hummingbird anchor: $hb_bin (HB_BIN, not rebuilt)"
else
    # A copy in the temp dir (the anchors' directory is read-only, and its build is no
    # part of this repository).
    cp -R "$anchors/hb-hello" "$work/hb-hello"
    chmod -R u+w "$work/hb-hello"
    hb_scratch=${HB_SCRATCH:-$work/hb-hello/.build}
    say "building the Hummingbird anchor: swift build -c release --scratch-path $hb_scratch"
    swift build -c release --package-path "$work/hb-hello" --scratch-path "$hb_scratch" >"$work/hb-build.log" 2>&1 ||
        { tail -20 "$work/hb-build.log" >&2; die "the Hummingbird anchor did not build"; }
    hb_bin="$(swift build -c release --package-path "$work/hb-hello" --scratch-path "$hb_scratch" --show-bin-path)/HBHello"
fi
[[ -x "$hb_bin" ]] || die "no executable HBHello at $hb_bin"

section "machine"
say "cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); temp dir: $work ($(stat -f -c %T "$work"))"
warn_if_tmpfs
say "net.core.somaxconn $(cat /proc/sys/net/core/somaxconn); each run: ${warmup} s warm-up at 64 connections, then wrk -t2 -d${seconds}s --latency"
say "note: server, Redis and wrk share the cores; compare the ratios of one run, not the absolute rates"
run_start=$EPOCHREALTIME

# One template database made by flashsale itself: both sales, a 1 h hold (nothing expires
# during a run), 1 per user. Each flashsale run takes a fresh copy (fresh_copy, workload.sh).
sale=$small inventory=$small_stock
make_template_db
"$bin" -q --db "$work/template.db" create-sale "$large" --inventory "$large_stock" --hold 1h --per-user 1
[[ ! -e "$work/template.db-wal" ]] || die "the template's WAL was not checkpointed"

# ---------------------------------------------------------------------------------------
# Servers (start_serve is in http-lib.sh). Each start_* sets server_pid and port and
# returns once the server answers.

# start_node NAME MODE STOCK SALE: Redis (AOF MODE) with STOCK in SALE's count key (the key
# names of server.js), and the Node anchor on it.
start_node() {
    local name=$1 mode=$2 stock=$3 target=$4
    start_redis "$work/$name-redis" "$mode" >/dev/null
    "${rcli[@]}" set "sale:{$target}:count" "$stock" >/dev/null
    port=$(free_port)
    MODE=redis WORKERS=1 PORT=$port REDIS_PORT=$redis_port node "$anchors/server.js" >"$work/$name.log" 2>&1 &
    server_pid=$!
    wait_for_port "$port" "$work/$name.log"
}
# start_hb NAME: the Hummingbird constant handler.
start_hb() {
    port=$(free_port)
    "$hb_bin" "$port" >"$work/$1.log" 2>&1 &
    server_pid=$!
    wait_for_port "$port" "$work/$1.log"
}

# ---------------------------------------------------------------------------------------
# The results, by "contender scenario": "rps p50 p99 peak-RSS-KiB".
declare -A result
# A line of the table: contender, then the figures of the last load.
report() {
    local label=$1 rss_kib=$2 note=${3:-}
    printf '  %-24s %8s req/s   p50 %8s ms   p99 %8s ms   peak RSS %6s MiB%s\n' \
        "$label" "$(commas "$rps")" "$p50" "$p99" "$(mib "$rss_kib")" "${note:+   $note}"
}

# measure CONTENDER SCENARIO SALE STOCK CONNECTIONS: one fresh server, warm-up, the measured
# run, the checks; records the figures in result[CONTENDER SCENARIO].
measure() {
    local who=$1 scenario=$2 target=$3 stock=$4 connections=$5 name="$1-$2" rss_kib redis_kib=0 note= left holders
    case $who in
        flashsale) start_serve "$name" ;;
        node-always) start_node "$name" always "$stock" "$target" ;;
        node-everysec) start_node "$name" everysec "$stock" "$target" ;;
        hummingbird) start_hb "$name" ;;
    esac
    # The anchors take the user in the body; serve from the gateway's header.
    local script=$anchors/post.lua
    [[ $who == flashsale ]] && script=$repo/bench/http-book.lua
    load "$name-warmup" "$target" 64 "$warmup" "$script"
    local warm_2xx=$(( requests - non2xx ))
    wait_until_idle
    load "$name" "$target" "$connections" "$seconds" "$script"
    local run_2xx=$(( requests - non2xx )) wrk_2xx
    wrk_2xx=$(( warm_2xx + run_2xx ))
    rss_kib=$(peak_rss "$server_pid")
    [[ -n "${redis_pid:-}" ]] && redis_kib=$(peak_rss "$redis_pid")
    case $who in
        flashsale)
            stop_server || die "$name: serve exited with status $? on SIGTERM"
            check_serve "$name" "$target" "$wrk_2xx" "$connections"
            note="($checked)" ;;
        node-*)
            stop_server || true   # no SIGTERM handler: 143
            # Both counts at one instant: Redis may still be running scripts Node sent.
            read -r left holders < <("${rcli[@]}" eval "return {redis.call('GET', KEYS[1]), redis.call('SCARD', KEYS[2])}" 2 \
                "sale:{$target}:count" "sale:{$target}:users" | paste -sd' ')
            check_sold "$name" $(( stock - left )) "$holders" "$wrk_2xx" "$connections"
            stop_redis
            note="(+ Redis $(mib "$redis_kib") MiB; sold $(commas "$sold"))" ;;
        hummingbird)
            stop_server || true ;;
    esac
    report "$(label "$who")" "$rss_kib" "$note"
    [[ $scenario == crowd ]] || (( connect_errors + read_errors + write_errors == 0 )) ||
        say "    socket errors: connect $connect_errors, read $read_errors, write $write_errors (timeouts $timeouts)"
    result["$who $scenario"]="$rps $p50 $p99 $(( rss_kib + redis_kib ))"
    rm -f "$work/$name.db" "$work/$name.db-wal" "$work/$name.db-shm" "$work/$name.log"
    rm -rf "$work/$name-redis"
}

label() {
    case $1 in
        flashsale) printf 'flashsale serve' ;;
        node-always) printf 'Node + Redis (always)' ;;
        node-everysec) printf 'Node + Redis (everysec)' ;;
        hummingbird) printf 'Hummingbird constant' ;;
    esac
}

# scenario NAME SALE STOCK CONNECTIONS TITLE: every contender, one after the other, then the ratios.
scenario() {
    local name=$1 target=$2 stock=$3 connections=$4
    section "$5 (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    for who in flashsale node-always node-everysec hummingbird; do
        measure "$who" "$name" "$target" "$stock" "$connections"
    done
    local fs node hb
    read -ra fs <<<"${result["flashsale $name"]}"
    read -ra node <<<"${result["node-always $name"]}"
    read -ra hb <<<"${result["hummingbird $name"]}"
    say "  flashsale / Node + Redis (always): $(ratio "${fs[0]}" "${node[0]}")x   target >= 1.0: $(at_least "$(ratio "${fs[0]}" "${node[0]}")" 1.0)"
    say "  flashsale / Hummingbird constant:  $(ratio "${fs[0]}" "${hb[0]}")x   target >= 0.8: $(at_least "$(ratio "${fs[0]}" "${hb[0]}")" 0.8)"
    if (( connections >= 1000 )); then
        say "  p99: flashsale ${fs[2]} ms, Node + Redis (always) ${node[2]} ms   target: no worse: $(verdict "${fs[2]}" "${node[2]}")"
    fi
}

scenario small-64 "$small" "$small_stock" 64 "stock 1,000 (sold out in the warm-up: declines), 64 connections"
scenario large-64 "$large" "$large_stock" 64 "stock 100,000,000 (holds), 64 connections"
scenario small-1000 "$small" "$small_stock" 1000 "stock 1,000 (sold out in the warm-up: declines), 1,000 connections"
scenario large-1000 "$large" "$large_stock" 1000 "stock 100,000,000 (holds), 1,000 connections"

# ---------------------------------------------------------------------------------------
section "$(commas $crowd) open connections, stock 100,000,000 (load average $(cut -d' ' -f1-3 /proc/loadavg))"
say "  (wrk's own timeout is 2 s: a request unanswered by then counts as a timeout, not an error)"
declare -A crowd_errors
for who in flashsale node-always hummingbird; do
    measure "$who" crowd "$large" "$large_stock" "$crowd"
    crowd_errors[$who]="$connect_errors $read_errors $write_errors $timeouts"
    say "    wrk: $(commas "$requests") answers; socket errors: connect $connect_errors, read $read_errors, write $write_errors; timeouts $timeouts"
done

# ---------------------------------------------------------------------------------------
section "summary (every check passed; ${seconds} s per run$( (( quick )) && printf ', --quick: a smoke run, not a measurement'))"
printf '  %-12s %-26s %9s %9s %9s\n' scenario contender "req/s" "p50 ms" "p99 ms"
for name in small-64 large-64 small-1000 large-1000 crowd; do
    for who in flashsale node-always node-everysec hummingbird; do
        [[ -n "${result["$who $name"]:-}" ]] || continue
        read -ra figures <<<"${result["$who $name"]}"
        printf '  %-12s %-26s %9s %9s %9s\n' "$name" "$(label "$who")" "$(commas "${figures[0]}")" "${figures[1]}" "${figures[2]}"
    done
done
say "ratios (flashsale / Node + Redis always, target >= 1.0; / Hummingbird constant, target >= 0.8; p99 at 1,000 connections no worse than Node + Redis):"
for name in small-64 large-64 small-1000 large-1000; do
    read -ra fs <<<"${result["flashsale $name"]}"
    read -ra node <<<"${result["node-always $name"]}"
    read -ra hb <<<"${result["hummingbird $name"]}"
    r_node=$(ratio "${fs[0]}" "${node[0]}") r_hb=$(ratio "${fs[0]}" "${hb[0]}")
    line="  $(printf '%-11s' "$name") ${r_node}x $(at_least "$r_node" 1.0)   ${r_hb}x $(at_least "$r_hb" 0.8)"
    [[ $name == *-1000 ]] && line+="   p99 ${fs[2]} vs ${node[2]} ms $(verdict "${fs[2]}" "${node[2]}")"
    say "$line"
done
read -ra fs <<<"${result["flashsale crowd"]}"
read -ra errors <<<"${crowd_errors[flashsale]}"
say "$(commas $crowd) connections: flashsale errors connect ${errors[0]}, read ${errors[1]}, write ${errors[2]} (timeouts ${errors[3]})   target 0: $(verdict $(( errors[0] + errors[1] + errors[2] )) 0)"
say "  peak RSS of serve $(mib "${fs[3]}") MiB   target <= 128 MiB: $(verdict "${fs[3]}" "$rss_target_kib")"
say "run time: $(awk -v a="$run_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s (without the builds); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
