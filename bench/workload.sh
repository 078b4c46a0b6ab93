# Shared by bench/w1.sh and bench/w2.sh, which `source` it after common.sh: the W1 request
# stream, copies of the template database, timing under GNU time, and the runs both
# measure (book --stream, process, Redis + Lua) with their checks. Functions only. Globals
# they read: bin, work, sale, inventory, requests, batch; they set secs, rss, redis_rate.

# "PASS" when a >= limit, else "MISS".
at_least() { awk -v a="$1" -v l="$2" 'BEGIN { print (a >= l ? "PASS" : "MISS") }'; }
# 1234567 -> 1,234,567 (integers only).
commas() { printf '%s\n' "$1" | sed ':a; s/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/; ta'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f\n", n / s }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f\n", k / 1024 }'; }

# W1, deterministic: users u1..uN in order, and after every 10th user one repeat of a
# random earlier user (u1..u<that 10th user>), drawn with Park-Miller (16807 * x mod
# 2^31-1: exact in awk's doubles, so every awk gives the same file). Request k (0-based)
# has an IPv4 address when k is even and an IPv6 one when odd; the address comes from the
# user number (10.a.b.c, 2001:db8::hi:lo with at most 4 hex digits per group), so a
# repeat of an odd/even-swapped user changes family but not identity. The user agent also
# comes from the user number: about 6% bot-like (python-requests, curl, Go, Scrapy), the
# rest five browser strings; those with a comma are quoted in the CSV.
# gen_w1 USERS NDJSON CSV
gen_w1() {
    awk -v users="$1" -v nd="$2" -v csv="$3" '
    function emit(n,    h, ip, agent, q) {
        h = (n * 40503) % 65536
        agent = (h % 100 < 6) ? bot[h % 4] : ua[int(h / 100) % 5]
        if (line++ % 2) ip = sprintf("2001:db8::%x:%x", int(n / 65536), n % 65536)
        else ip = sprintf("10.%d.%d.%d", int(n / 65536) % 256, int(n / 256) % 256, n % 256)
        printf "{\"user\":\"u%d\",\"ip\":\"%s\",\"user_agent\":\"%s\"}\n", n, ip, agent > nd
        q = index(agent, ",") ? "\"" : ""
        printf "u%d,%s,%s%s%s\n", n, ip, q, agent, q > csv
    }
    BEGIN {
        x = 20261124
        ua[0] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
        ua[1] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
        ua[2] = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"
        ua[3] = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
        ua[4] = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
        bot[0] = "python-requests/2.31"; bot[1] = "curl/8.0"; bot[2] = "Go-http-client/1.1"
        bot[3] = "Scrapy/2.11.0 (+https://scrapy.org)"
        print "user,ip,user_agent" > csv
        line = 0
        for (i = 1; i <= users; i++) {
            emit(i)
            if (i % 10 == 0) { x = (16807 * x) % 2147483647; emit(1 + x % i) }
        }
    }'
}
# check_w1 NDJSON CSV REQUESTS: line counts, and (cheap) what the first lines look like.
check_w1() {
    local lines
    lines=$(wc -l <"$1")
    [[ "$lines" == "$3" ]] || die "$1 has $lines lines, expected $3"
    lines=$(wc -l <"$2")
    [[ "$lines" == "$(( $3 + 1 ))" ]] || die "$2 has $lines lines, expected $(( $3 + 1 )) (with the header)"
}

# A copy of $work/template.db (see make_template_db) at $1, with no -wal or -shm beside it.
fresh_copy() { rm -f "$1" "$1-wal" "$1-shm"; cp "$work/template.db" "$1"; }


# check_db DB LABEL: flashsale's own verify (counters, invariant, per-user limit, events,
# quick_check) and exactly $inventory held items, none left.
check_db() {
    local db=$1 label=$2 counts
    "$bin" -q --db "$db" verify || die "$label: flashsale verify found violations in $db"
    counts=$(sqlite3 "$db" "SELECT available || ' ' || held || ' ' || booked FROM sale WHERE id = '$sale'")
    [[ "$counts" == "0 $inventory 0" ]] || die "$label: available/held/booked are $counts, expected 0 $inventory 0"
}

# stream_run LABEL NDJSON REQUESTS: book --stream on a fresh database; sets secs, rss.
stream_run() {
    local label=$1 input=$2 n=$3 db="$work/$1.db" out="$work/$1.decisions.ndjson" lines ok
    fresh_copy "$db"
    timed "$label" "$bin" --db "$db" book "$sale" --stream <"$input" >"$out" ||
        { tail -5 "$work/$label.time" >&2; die "$label: book --stream failed"; }
    local s=$secs r=$rss
    lines=$(wc -l <"$out")
    ok=$(grep -c '"ok":true' "$out" || true)
    [[ "$lines" == "$n" ]] || die "$label: $lines decisions, expected $n"
    [[ "$ok" == "$inventory" ]] || die "$label: $ok decisions say \"ok\":true, expected $inventory"
    say "  declines: $(grep -o '"error":"[a-z_]*"' "$out" | cut -d'"' -f4 | sort | uniq -c | sort -rn | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')"
    rm -f "$out"
    check_db "$db" "$label"
    rm -f "$db" "$db-wal" "$db-shm"
    secs=$s rss=$r
}

# process_run LABEL DB REQUESTS: process (with --batch $batch, if set) on a submitted
# database; sets secs, rss.
process_run() {
    local label=$1 db=$2 n=$3 report queued args=(process "$sale")
    [[ -n "${batch:-}" ]] && args+=(--batch "$batch")
    timed "$label" "$bin" --db "$db" "${args[@]}" >"$work/$label.out" ||
        die "$label: process failed: $(cat "$work/$label.out")"
    local s=$secs r=$rss
    report=$(cat "$work/$label.out")
    [[ "$report" == "$inventory accepted, $(( n - inventory )) rejected" ]] ||
        die "$label: \"$report\", expected $inventory accepted, $(( n - inventory )) rejected"
    queued=$("$bin" --db "$db" --json status "$sale" | sed -n 's/.*"queued":\([0-9]*\).*/\1/p')
    [[ "$queued" == 0 ]] || die "$label: ${queued:-?} requests still queued"
    say "  $report"
    check_db "$db" "$label"
    secs=$s rss=$r
}

# Redis 7 + the anchor's Lua script, 127.0.0.1 only, on a random free port, a fresh server
# (and data dir) per AOF mode, stopped right after (and by the trap, whatever happens).
# redis_run MODE: sets redis_rate (requests/s as redis-benchmark prints it).
# redis-benchmark draws its users at random from 1,000,000, so $requests requests come from
# about 1 - e^-1.1 = 67% of them: a stock of $inventory sells out only when that is fewer.
redis_rate=
redis_run() {
    local mode=$1 dir="$work/redis-$1" port sha left members sold_out=$(( inventory < 600000 ))
    start_redis "$dir" "$mode"   # sets redis_pid, redis_port, rcli
    port=$redis_port
    sha=$(load_anchor_lua)
    "${rcli[@]}" set "$sale:count" "$inventory" >/dev/null
    local bench=(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -P 100 -n "$requests" -r 1000000 --csv
        EVALSHA "$sha" 4 "$sale:count" "$sale:users" "$sale:holds" "$sale:expiry" user-__rand_int__ bk-__rand_int__ 3600)
    say "redis-benchmark -c 50 -P 100 -n $requests -r 1000000 EVALSHA <sha> 4 $sale:count $sale:users $sale:holds $sale:expiry user-__rand_int__ bk-__rand_int__ 3600"
    "${bench[@]}" >"$dir/bench.csv" 2>"$dir/bench.err" || { cat "$dir/bench.err" >&2; die "redis-benchmark failed"; }
    # --csv: a header, then "test","rps","avg_latency_ms",... (7 numbers after the test name).
    redis_rate=$(tail -1 "$dir/bench.csv" | tr -d '"' | awk -F, '{ printf "%.0f", $(NF - 6) }')
    [[ "$redis_rate" =~ ^[0-9]+$ && "$redis_rate" -gt 0 ]] || { cat "$dir/bench.csv" >&2; die "could not read requests/s from redis-benchmark"; }
    # The script's own invariant: every item is either left or held by one user, and a small
    # stock is sold out. (Booking ids are a second __rand_int__, so a few may collide in the
    # hash: reported, not checked.)
    left=$("${rcli[@]}" get "$sale:count")
    members=$("${rcli[@]}" scard "$sale:users")
    (( left + members == inventory && members > 0 )) || die "redis ($mode): $members users, $left left; expected $inventory in all"
    (( !sold_out || left == 0 )) || die "redis ($mode): $left left of $inventory, expected none"
    say "  $(commas "$redis_rate") requests/s (p50 $(tail -1 "$dir/bench.csv" | tr -d '"' | awk -F, '{ print $(NF - 3) }') ms); checked: $(commas "$members") users hold an item, $(commas "$left") left (holds hash $(commas "$("${rcli[@]}" hlen "$sale:holds")"), AOF $(du -sh "$dir" | cut -f1))"
    stop_redis
    rm -rf "$dir"
}

# The tools W1 and W2 need (Redis with redis-benchmark, sqlite3, GNU time), installed when
# missing, and their versions; sets redis_version.
require_workload_tools() {
    local missing=()
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    { command -v redis-cli && command -v redis-benchmark; } >/dev/null 2>&1 || missing+=(redis-tools)
    command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
    [[ -x /usr/bin/time ]] || missing+=(time)
    install_packages "${missing[@]}"
    redis_version=$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
    say "sqlite3 $(sqlite3 --version | cut -d' ' -f1); redis-server $redis_version; $(redis-benchmark --version 2>&1 | head -1); $(/usr/bin/time --version 2>&1 | head -1); bash $BASH_VERSION"
    [[ "$redis_version" == 7.* ]] || say "WARNING: the anchor is Redis 7, this is Redis $redis_version"
}

# The "machine" section of a workload run, and the start of its clock (run_start).
describe_machine() {
    section "machine"
    say "cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); temp dir: $work ($(stat -f -c %T "$work"), $(df -h --output=avail "$work" | tail -1 | tr -d ' ') free)"
    warn_if_tmpfs
    say "note: on a shared, noisy machine compare the ratios, not the absolute rates; run 3 times"
    run_start=$EPOCHREALTIME
}

# The W1 request stream through `book --stream` into a fresh copy of the template, timed
# and checked; sets stream_secs, stream_rss and stream_rate.
stream_section() {
    section "book --stream: W1 as NDJSON on stdin, one NDJSON decision per line out (durable)"
    say "flashsale --db fs.db book $sale --stream < W1.ndjson > decisions.ndjson"
    stream_run stream "$work/W1.ndjson" "$requests"
    stream_secs=$secs stream_rss=$rss
    stream_rate=$(rate "$requests" "$stream_secs")
    say "  $(commas $requests) decisions in $stream_secs s = $(commas "$stream_rate") decisions/s; peak RSS $(commas "$stream_rss") KiB ($(mib "$stream_rss") MiB)"
    say "  checked: $(commas $requests) lines, exactly $(commas $inventory) \"ok\":true, verify clean, $(commas $inventory) held"
}
