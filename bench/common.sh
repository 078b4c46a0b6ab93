# Shared by bench/book.sh, w1.sh, w2.sh, sweep.sh, http.sh and pg.sh, which `source` it right after
# `set -euo pipefail` (it sets no shell options itself). Functions only: messages, the tool
# check, the binary, the temp dir and its trap, Redis on 127.0.0.1, the anchors' Lua script.
# Globals they set or read: bin, work, sale, inventory, redis_pid, redis_port, rcli,
# server_pid (a server a script started in the background, stopped by the trap).

# Prints its arguments as one line.
say() { printf '%s\n' "$*"; }
# Prints a blank line and a "== title ==" heading.
section() { printf '\n== %s ==\n' "$*"; }
# Prints "<calling script>: message" to stderr and exits 1.
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
# a / b with `digits` decimals (awk: bash has no floating point): ratio A B [DIGITS].
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN { if (b == 0) print "inf"; else printf "%.*f\n", d, a / b }'; }
# "PASS" when a <= limit, else "MISS": verdict A LIMIT.
verdict() { awk -v a="$1" -v l="$2" 'BEGIN { print (a <= l ? "PASS" : "MISS") }'; }

# Dies unless this is bash 5.1 or later ($SRANDOM: 32 random bits per use).
require_bash_5_1() {
    if (( BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1) )); then
        die "needs bash 5.1 or later (for \$SRANDOM), found $BASH_VERSION"
    fi
}

# require_tools TOOL...: dies naming the first one that is not on PATH.
require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || die "needs $tool"
    done
}

# raise_open_files CONNECTIONS: the soft limit of open files up to the hard one; warns when
# that is still too low for CONNECTIONS at once.
raise_open_files() {
    ulimit -n "$(ulimit -Hn)"
    (( $(ulimit -n) > $1 + 100 )) || say "WARNING: ulimit -n $(ulimit -n) is too low for $1 connections"
}

# Installs the named apt packages (with sudo unless root); does nothing when given none.
install_packages() {
    (( $# > 0 )) || return 0
    say "installing: $*"
    local sudo=()
    (( EUID == 0 )) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@"
}

# Sets bin to $FLASHSALE_BIN, or builds the static release of this repo and takes that; prints its version.
find_flashsale() {
    local repo
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [[ -n "${FLASHSALE_BIN:-}" ]]; then
        bin=$FLASHSALE_BIN
        say "flashsale: $bin (FLASHSALE_BIN, not rebuilt)"
    else
        local scratch=()
        [[ -n "${FLASHSALE_SCRATCH:-}" ]] && scratch=(--scratch-path "$FLASHSALE_SCRATCH")
        say "building: swift build -c release --static-swift-stdlib ${scratch[*]}"
        (cd "$repo" && swift build -c release --static-swift-stdlib "${scratch[@]}")
        bin="$(cd "$repo" && swift build -c release --static-swift-stdlib "${scratch[@]}" --show-bin-path)/flashsale"
    fi
    [[ -x "$bin" ]] || die "no executable flashsale at $bin"
    bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
    say "$("$bin" --version)"
}

# Sets work to a new temp dir flashsale-NAME.XXXXXX (in $BENCH_TMPDIR, $TMPDIR or /tmp) and
# traps EXIT/INT/TERM so that Redis and $server_pid are stopped and the dir removed whatever happens.
make_workdir() {
    work=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/flashsale-$1.XXXXXX")
    redis_pid= server_pid=
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
# The EXIT trap: stops Redis and $server_pid, runs the script's own extra_cleanup if it
# defines one, removes $work, exits with the status the script was exiting with.
cleanup() {
    local status=$?
    stop_redis
    stop_process "${server_pid:-}"
    if declare -F extra_cleanup >/dev/null; then extra_cleanup || true; fi
    rm -rf "$work"
    exit "$status"
}
# Warns when $work is on tmpfs, where fsync costs nothing.
warn_if_tmpfs() {
    if [[ "$(stat -f -c %T "$work")" == tmpfs ]]; then
        say "WARNING: the temp dir is on tmpfs, where fsync is free: set BENCH_TMPDIR to a real disk"
    fi
}

# Makes $work/template.db with flashsale itself (init, the sale $sale of $inventory items,
# 1 h hold, 1 per user), checkpointed so that a plain copy is complete; dies unless it is WAL.
make_template_db() {
    "$bin" -q --db "$work/template.db" init
    "$bin" -q --db "$work/template.db" create-sale "$sale" --inventory "$inventory" --hold 1h --per-user 1
    [[ ! -e "$work/template.db-wal" ]] || sqlite3 "$work/template.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    [[ "$(sqlite3 "$work/template.db" 'PRAGMA journal_mode;')" == wal ]] || die "template is not in WAL mode"
}

# Prints a random TCP port of 127.0.0.1 that nothing listens on (below the kernel's
# ephemeral range, so that wrk's own connections cannot take it).
free_port() {
    local candidate
    for _ in $(seq 20); do
        candidate=$(( 20000 + SRANDOM % 12000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then printf '%s\n' "$candidate"; return 0; fi
    done
    die "found no free port on 127.0.0.1"
}

# start_redis DIR APPENDFSYNC: starts redis-server bound to 127.0.0.1 only, on a random free
# port, AOF on with that fsync mode, no RDB, data and log in DIR (created); waits for PONG and
# prints its settings. Sets redis_pid, redis_port and rcli (redis-cli for it, as an array).
start_redis() {
    local dir=$1 mode=$2
    redis_port=$(free_port)
    mkdir "$dir"
    redis-server --bind 127.0.0.1 --port "$redis_port" --protected-mode yes --daemonize no \
        --appendonly yes --appendfsync "$mode" --save '' --dir "$dir" \
        --logfile "$dir/redis.log" &
    redis_pid=$!
    rcli=(redis-cli -h 127.0.0.1 -p "$redis_port")
    for _ in $(seq 100); do
        [[ "$("${rcli[@]}" ping 2>/dev/null)" == PONG ]] && break
        kill -0 "$redis_pid" 2>/dev/null || { cat "$dir/redis.log" >&2; die "redis-server did not start"; }
        sleep 0.05
    done
    [[ "$("${rcli[@]}" ping 2>/dev/null)" == PONG ]] || die "redis-server did not answer on port $redis_port"
    say "redis-server pid $redis_pid on 127.0.0.1:$redis_port: appendonly $("${rcli[@]}" config get appendonly | tail -1), appendfsync $("${rcli[@]}" config get appendfsync | tail -1), bind $("${rcli[@]}" config get bind | tail -1)"
}
# Stops the redis-server started by start_redis, if it is still running, and waits for it.
stop_redis() {
    stop_process "${redis_pid:-}"
    redis_pid=
}
# stop_process PID: SIGTERM to PID (a child of this shell), if it is still running, and waits
# for it; does nothing for an empty PID.
stop_process() {
    if [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}

# Loads the anchors' booking Lua script into the Redis of $rcli and prints its SHA1.
# KEYS: count, users set, holds hash, expiry zset; ARGV: user, booking id, hold seconds.
load_anchor_lua() {
    local lua="if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return 0 end
redis.call('DECR', KEYS[1]); redis.call('SADD', KEYS[2], ARGV[1])
local t = redis.call('TIME'); local exp = tonumber(t[1]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1] .. '|' .. exp); redis.call('ZADD', KEYS[4], exp, ARGV[2])
return 1"
    "${rcli[@]}" script load "$lua"
}

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

# parse_arguments FLAG ARGS...: the scripts' own arguments, `--help` (their header comment)
# and the one flag the script takes, FLAG (`--big`, `--quick`, or `none`), which sets big=1 or
# quick=1; anything else exits 2. Sets big and quick.
parse_arguments() {
    local flag=$1 script arg
    shift
    script=$(basename "$0")
    big=0 quick=0
    for arg in "$@"; do
        case $arg in
            -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            --big | --quick)
                [[ $arg == "$flag" ]] || { printf '%s: unknown argument %s (try --help)\n' "$script" "$arg" >&2; exit 2; }
                if [[ $arg == --big ]]; then big=1; else quick=1; fi ;;
            *) printf '%s: unknown argument %s (try --help)\n' "$script" "$arg" >&2; exit 2 ;;
        esac
    done
}
