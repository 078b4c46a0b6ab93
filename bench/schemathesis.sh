#!/usr/bin/env bash
# bench/schemathesis.sh: `flashsale serve` tested against its own OpenAPI document by
# schemathesis (property-based: valid and invalid requests made from the document, every
# answer checked against it). Run by hand; it takes a minute or two.
#
# It builds flashsale (or takes $FLASHSALE_BIN), makes a scratch database with the sale s1
# (the document's example sale id), and runs schemathesis twice against a server on
# loopback, each time with the document that server's admin listener serves:
#   1. --auth header --user-header X-User, every request as the user in X-User. The
#      document names the bearer scheme, which this server does not read: the run is given
#      the document with that scheme swapped for the X-User header. `ignored_auth` is left
#      out, since any X-User value is a user (the gateway in front authenticates).
#   2. --auth jwt with an HS256 key made here and a token signed with it: the document
#      exactly as served.
# Both run with bench/schemathesis.toml: the checks and statuses set there, and why.
# Then it stops the server (SIGTERM: exit 0 expected) and runs `flashsale verify` on what
# the runs left. It exits 0 when both runs passed and the database verifies.
#
# schemathesis comes from PyPI: `st` on PATH, else it is installed (pip, version
# $SCHEMATHESIS_VERSION) into a virtualenv at $SCHEMATHESIS_VENV.
#
#   bench/schemathesis.sh                                           # builds the static release first
#   FLASHSALE_BIN=.build/debug/flashsale bench/schemathesis.sh      # an existing build
#   ST_MAX_EXAMPLES=200 bench/schemathesis.sh                       # more cases per operation (default 50)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
parse_arguments no "$@"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=${SCHEMATHESIS_VERSION:-4.32.5}
venv=${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/flashsale-schemathesis-$version}
max_examples=${ST_MAX_EXAMPLES:-50}
sale=s1
server_pid=

# The EXIT trap: stops a server still running, removes $work.
stop_and_clean() {
    local status=$?
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$status"
}

# Sets st to schemathesis's command, installing it first when it is not on PATH.
find_schemathesis() {
    if command -v st >/dev/null && st --version >/dev/null 2>&1; then
        st=$(command -v st)
    else
        if [[ ! -x "$venv/bin/st" ]]; then
            say "installing schemathesis $version into $venv"
            python3 -m venv "$venv"
            "$venv/bin/pip" install -q "schemathesis==$version"
        fi
        st=$venv/bin/st
    fi
    say "$("$st" --version) ($st)"
}

# start_server AUTH-OPTIONS...: `flashsale serve` on the scratch database, buyers on
# $port and admin on $admin_port (both loopback); waits until /healthz answers.
start_server() {
    port=$(free_port) admin_port=$(free_port)
    while [[ $admin_port == "$port" ]]; do admin_port=$(free_port); done
    "$bin" --db "$work/st.db" serve "$@" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin_port" \
        2>>"$work/serve.log" &
    server_pid=$!
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$admin_port/healthz" >/dev/null 2>&1 && break
        kill -0 "$server_pid" 2>/dev/null || { tail -5 "$work/serve.log" >&2; die "flashsale serve did not start"; }
        sleep 0.05
    done
    curl -fsS "http://127.0.0.1:$admin_port/healthz" >/dev/null || die "flashsale serve did not answer /healthz"
    say "flashsale serve $* (pid $server_pid): buyers on 127.0.0.1:$port, admin on 127.0.0.1:$admin_port"
}

# Stops the server with SIGTERM; dies unless it exits 0.
stop_server() {
    local status=0
    kill -TERM "$server_pid"
    wait "$server_pid" || status=$?
    server_pid=
    (( status == 0 )) || { tail -5 "$work/serve.log" >&2; die "flashsale serve exited $status after SIGTERM"; }
}

# run_schemathesis DOCUMENT ARGS...: schemathesis against the running server, its output
# as it goes, without the checks in $exclude (comma-separated) if set; sets failed=1 when
# it fails. The live event stream never ends: each of its
# requests is read for --request-timeout, and what arrived by then is checked.
failed=0
run_schemathesis() {
    local document=$1
    shift
    # In $work: schemathesis keeps a cache of its crashes in the current directory.
    (cd "$work" && "$st" --config-file "$repo/bench/schemathesis.toml" run "$document" --url "http://127.0.0.1:$port" \
        --max-examples "$max_examples" --request-timeout 2 --no-color ${exclude:+--exclude-checks "$exclude"} "$@") \
        || failed=1
}

# The served document must be the repository's openapi.json, byte for byte.
check_served_document() {
    curl -fsS "http://127.0.0.1:$admin_port/openapi.json" -o "$work/served.json"
    cmp -s "$work/served.json" "$repo/openapi.json" || die "GET /openapi.json is not the repository's openapi.json"
    say "GET /openapi.json on the admin listener: the repository's openapi.json"
}

command -v curl >/dev/null || install_packages curl
command -v python3 >/dev/null || install_packages python3 python3-venv
require_bash_5_1
find_flashsale
find_schemathesis
work=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/flashsale-schemathesis.XXXXXX")
trap stop_and_clean EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Stock and a per-user limit that the runs do not exhaust, so that bookings are made and
# then confirmed, cancelled and read by the operations the document links to them.
"$bin" -q --db "$work/st.db" create-sale "$sale" --inventory 1000000 --per-user 1000000 --hold 1h

section "1. --auth header --user-header X-User"
start_server --auth header --user-header X-User
check_served_document
python3 - "$work/served.json" "$work/header.json" <<'EOF'
import json, sys
document = json.load(open(sys.argv[1]))
document["components"]["securitySchemes"]["bearer"] = {"type": "apiKey", "in": "header", "name": "X-User"}
json.dump(document, open(sys.argv[2], "w"), indent=2)
EOF
exclude=ignored_auth run_schemathesis "$work/header.json" -H "X-User: schemathesis"
stop_server

section "2. --auth jwt (HS256)"
(umask 077 && head -c 32 /dev/urandom | base64 >"$work/jwt.key")
token=$(python3 - "$work/jwt.key" <<'EOF'
import base64, hashlib, hmac, json, sys, time
key = open(sys.argv[1], "rb").read().removesuffix(b"\n")
part = lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
signed = part({"alg": "HS256", "typ": "JWT"}) + "." + part({"sub": "schemathesis", "exp": int(time.time()) + 3600})
signature = hmac.new(key, signed.encode(), hashlib.sha256).digest()
print(signed + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode())
EOF
)
start_server --auth jwt --jwt-key "$work/jwt.key"
check_served_document
run_schemathesis "http://127.0.0.1:$admin_port/openapi.json" -H "Authorization: Bearer $token"
stop_server

section "the database after both runs"
"$bin" --db "$work/st.db" verify || die "flashsale verify found problems"
"$bin" --db "$work/st.db" status "$sale"
(( failed == 0 )) || die "schemathesis found failures (above)"
say "schemathesis: both runs passed"
