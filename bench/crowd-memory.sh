#!/usr/bin/env bash
# bench/http.sh's last run alone, for `flashsale serve`'s memory (issue 13: 10,000 open
# connections, peak RSS at most 128 MiB): serve on a fresh copy of a database with a sale of
# 100,000,000, warmed up at 64 connections, then 10,000 connections of wrk, as http.sh does
# it, BENCH_RUNS times (3). Each run prints serve's peak RSS (VmHWM), the most connections
# serve held at once (its open descriptors, sampled every 0.2 s) and the most the kernel
# held for it unaccepted (the listening socket's queue), the peak RSS the crowd added per
# connection held, wrk's rate and errors, and the checks of http.sh (verify clean, every
# 201 a hold). Serve holds only the connections it has accepted: the rest wait in the
# kernel, cost serve nothing, and are not in its peak RSS.
#
#     bench/crowd-memory.sh                                  # builds the static release first
#     FLASHSALE_BIN=path/to/flashsale bench/crowd-memory.sh  # measures that binary (and its flashsale-serve)
#
# Knobs: BENCH_RUNS (3), BENCH_SECONDS (each run, 10), BENCH_WARMUP_SECONDS (2), BENCH_CROWD
# (10000), BENCH_TMPDIR (where the temp dir goes: a real disk, not tmpfs), FLASHSALE_SCRATCH
# (a --scratch-path for the build). Anything else in the environment reaches serve
# (MALLOC_ARENA_MAX, GLIBC_TUNABLES). Exits 0 when every run completed and every check passed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/workload.sh"   # commas, mib, fresh_copy
source "$(dirname "${BASH_SOURCE[0]}")/http-lib.sh"   # start_serve, load, check_serve, ...

parse_arguments none "$@"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${BENCH_RUNS:-3}
seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP_SECONDS:-2}
crowd=${BENCH_CROWD:-10000}
user_header=X-User
sale=stock100m inventory=100000000

require_bash_5_1   # $SRANDOM, for the ports
require_tools wrk curl ss sqlite3
raise_open_files "$crowd"
find_flashsale
make_workdir crowd-memory
warn_if_tmpfs
make_template_db
say "cores: $(nproc); net.core.somaxconn $(cat /proc/sys/net/core/somaxconn); each run: ${warmup} s at 64 connections, then ${seconds} s at $(commas "$crowd")"

# open_descriptors PID: how many descriptors PID has open (0 once it has exited). A glob, not
# find or ls: a descriptor closed while they list the directory would fail the command.
open_descriptors() {
    local fds=("/proc/$1/fd/"*)
    if [[ -d "/proc/$1/fd" ]]; then printf '%s\n' "${#fds[@]}"; else printf '0\n'; fi
}

# watch_connections FILE: until serve exits, the most descriptors it has open and the longest
# accept queue of its listener, as "held queued" in FILE.
watch_connections() {
    local file=$1 held=0 queued=0 now waiting
    while kill -0 "$server_pid" 2>/dev/null; do
        now=$(open_descriptors "$server_pid")
        waiting=$(ss -Hltn "( sport = :$port )" | awk '{ print $2; exit }')
        (( now > held )) && held=$now
        (( ${waiting:-0} > queued )) && queued=$waiting
        printf '%s %s\n' "$held" "$queued" >"$file"
        sleep 0.2
    done
}

for run in $(seq "$runs"); do
    section "run $run of $runs (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    name=crowd-$run
    start_serve "$name"
    load "$name-warmup" "$sale" 64 "$warmup" "$repo/bench/http-book.lua"
    warm_2xx=$(( requests - non2xx ))
    wait_until_idle
    before_kib=$(peak_rss "$server_pid")
    fds_before=$(open_descriptors "$server_pid")
    watch_connections "$work/$name.held" &
    watcher=$!
    load "$name" "$sale" "$crowd" "$seconds" "$repo/bench/http-book.lua"
    peak_kib=$(peak_rss "$server_pid")
    stop_server || die "$name: serve exited with status $? on SIGTERM"
    wait "$watcher"
    read -r held queued <"$work/$name.held"
    held=$(( held - fds_before ))
    check_serve "$name" "$sale" $(( warm_2xx + requests - non2xx )) "$crowd"
    say "  peak RSS $(mib "$peak_kib") MiB (after the warm-up $(mib "$before_kib") MiB)"
    say "  connections held by serve at most $(commas "$held") of $(commas "$crowd"); waiting in the kernel's accept queue at most $(commas "$queued")"
    say "  peak RSS per connection held: $(awk -v a="$peak_kib" -v b="$before_kib" -v n="$held" 'BEGIN { printf "%.1f", (n > 0 ? (a - b) / n : 0) }') KiB"
    say "  wrk: $(commas "$rps") req/s, p50 $p50 ms, p99 $p99 ms; socket errors: connect $connect_errors, read $read_errors, write $write_errors; timeouts $timeouts"
    say "  $checked"
    rm -f "$work/$name".*
done
