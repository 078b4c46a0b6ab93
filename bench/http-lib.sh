# Shared by bench/http.sh and bench/crowd-memory.sh, which `source` it after common.sh and
# workload.sh: `flashsale serve` started on a fresh copy of the template database and
# stopped, wrk's load and its figures, and the checks of what serve decided. Functions only.
# Globals they read: bin, work, user_header (and fresh_copy's template); they set
# server_pid, port, admin, and the figures of the last load.

# ---------------------------------------------------------------------------------------
# Servers. start_serve sets server_pid and port and returns once serve answers.

# wait_for_port PORT LOG: until something listens on 127.0.0.1:PORT; dies (with LOG) if
# $server_pid exits first or 30 s pass.
wait_for_port() {
    local port=$1 log=$2
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || { tail -5 "$log" >&2; die "the server exited at start-up"; }
        sleep 0.05
    done
    die "nothing listens on 127.0.0.1:$port after 30 s"
}

# start_serve NAME: `flashsale serve` on a fresh copy of the template ($work/NAME.db), the
# user from the gateway header, its JSON log in $work/NAME.log. Sets admin too.
start_serve() {
    local name=$1
    fresh_copy "$work/$name.db"
    port=$(free_port) admin=$(free_port)
    while [[ $admin == "$port" ]]; do admin=$(free_port); done
    "$bin" --db "$work/$name.db" serve --auth header --user-header "$user_header" \
        --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" 2>"$work/$name.log" &
    server_pid=$!
    wait_for_port "$admin" "$work/$name.log"
    wait_for_port "$port" "$work/$name.log"
    [[ "$(curl -s "http://127.0.0.1:$admin/healthz")" == ok ]] || die "serve's /healthz is not ok"
}

# Peak RSS of $server_pid (and of Redis, if running) in KiB, from the kernel's high-water mark.
peak_rss() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# stop_server: SIGTERM, and the server's exit status must be 0 (Node's is 143: it has no handler).
stop_server() {
    local status=0
    kill "$server_pid"
    wait "$server_pid" || status=$?
    server_pid=
    return "$status"
}

# ---------------------------------------------------------------------------------------
# wrk. load NAME SALE CONNECTIONS SECONDS SCRIPT: wrk -t2 on 127.0.0.1:$port, its report in
# $work/NAME.wrk; sets rps, p50 and p99 (ms), requests, non2xx and the socket errors
# (connect_errors, read_errors, write_errors, timeouts).
rps= p50= p99= requests= non2xx= connect_errors= read_errors= write_errors= timeouts=
load() {
    local name=$1 target=$2 connections=$3 duration=$4 script=$5
    SALE=$target USER_HEADER=$user_header wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$script" \
        "http://127.0.0.1:$port" >"$work/$name.wrk" 2>&1 || { cat "$work/$name.wrk" >&2; die "$name: wrk failed"; }
    read -r rps p50 p99 requests non2xx connect_errors read_errors write_errors timeouts < <(awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/) return v * 60000
            if (v ~ /s$/) return v * 1000
            return v + 0
        }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        / requests in / { n = $1 }
        /Socket errors/ { gsub(",", ""); c = $4; r = $6; w = $8; t = $10 }
        /Non-2xx or 3xx/ { x = $NF }
        /^Requests\/sec/ { rps = $2 }
        END { printf "%.0f %.2f %.2f %d %d %d %d %d %d\n", rps, p50, p99, n, x, c, r, w, t }' "$work/$name.wrk")
    (( requests > 0 )) || { cat "$work/$name.wrk" >&2; die "$name: wrk completed no request"; }
}

# Waits (up to 10 s) until no client connection to 127.0.0.1:$port is left, so that the
# warm-up's connections do not count against serve's --max-connections in the next run.
wait_until_idle() {
    for _ in $(seq 200); do
        [[ -z "$(ss -Htn state established "( sport = :$port )")" ]] && return 0
        sleep 0.05
    done
    say "  WARNING: $(ss -Htn state established "( sport = :$port )" | wc -l) connections still open after 10 s"
}

# ---------------------------------------------------------------------------------------
# check_sold NAME SOLD HOLDERS WRK_2XX CONNECTIONS: the server's sold count against the
# successes: exactly one holder per item sold, and at least what wrk counted, at most that
# plus the requests in flight when wrk stopped (answered after wrk closed their connections).
sold=
check_sold() {
    local name=$1 connections=$5
    sold=$2
    (( sold == $3 )) || die "$name: $sold items sold but $3 holders"
    (( sold >= $4 && sold <= $4 + 2 * connections )) ||
        die "$name: $sold items sold, but wrk counted $4 successes (warm-up and run)"
}

# check_serve NAME SALE WRK_2XX CONNECTIONS: flashsale verify clean; the sale's held + booked
# equal to the 201 answers in serve's log, every answer a 201 or a 409 (a decline);
# sets checked (what was checked, for the report).
checked=
check_serve() {
    local name=$1 target=$2 wrk_2xx=$3 connections=$4 db="$work/$1.db" status counts created answers
    "$bin" -q --db "$db" verify || die "$name: flashsale verify found violations"
    status=$("$bin" --db "$db" --json status "$target")
    counts=$(sed -n 's/.*"held":\([0-9]*\).*"booked":\([0-9]*\).*/\1 \2/p' <<<"$status")
    [[ -n "$counts" ]] || die "$name: no held/booked in: $status"
    # The log's request lines: "status":201, "status":409, ...
    answers=$(grep -o '"status":[0-9]*' "$work/$name.log" | cut -d: -f2 | sort | uniq -c | awk '{ printf "%s%s %s", sep, $2, $1; sep = ", " }')
    created=$(grep -c '"status":201' "$work/$name.log" || true)
    ! grep -q '"status":\([^24]\|2[^0]\|20[^1]\|4[^0]\|40[^9]\)' "$work/$name.log" ||
        die "$name: answers other than 201 and 409: $answers"
    local held=${counts% *} booked=${counts#* }
    check_sold "$name" $(( held + booked )) "$created" "$wrk_2xx" "$connections"
    checked="verify clean; sold $(commas "$sold") = 201s logged; answers: $answers"
}
