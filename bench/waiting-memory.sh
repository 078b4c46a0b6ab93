#!/usr/bin/env bash
# What `flashsale serve`'s memory at 10,000 connections (issue 13: at most 128 MiB) is made
# of, step by step, where bench/crowd-memory.sh gives only wrk's peak: serve on a fresh
# database with a sale of 100,000,000, then a client that opens BENCH_CROWD connections
# (10,000) and leaves them idle; holds the database's write lock (`BEGIN IMMEDIATE` in
# sqlite3) and sends one booking on each, so that every booking waits for its commit;
# then lets the lock go and reads every answer. Prints serve's RSS after each step, what
# each connection and each waiting booking added, the peak, and the checks (every answer
# 201, `verify` clean, the holds counted).
#
#     bench/waiting-memory.sh                                  # builds the static release first
#     FLASHSALE_BIN=path/to/flashsale bench/waiting-memory.sh  # measures that binary (and its flashsale-serve)
#
# Knobs: BENCH_CROWD (10000), BENCH_TMPDIR (where the temp dir goes), FLASHSALE_SCRATCH (a
# --scratch-path for the build). Exits 0 when every check passed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/workload.sh"   # fresh_copy
source "$(dirname "${BASH_SOURCE[0]}")/http-lib.sh"   # start_serve, stop_server

parse_arguments none "$@"

crowd=${BENCH_CROWD:-10000}
user_header=X-User
sale=stock100m inventory=100000000

require_bash_5_1   # $SRANDOM, for the ports
require_tools python3 sqlite3 curl
raise_open_files "$crowd"
find_flashsale
make_workdir waiting-memory
warn_if_tmpfs
make_template_db

section "$(commas "$crowd") connections, each with a booking waiting for its commit"
start_serve crowd
python3 - "$port" "$crowd" "$server_pid" "$work/crowd.db" "$sale" "$user_header" <<'PY'
import socket, subprocess, sys, time

port, crowd, pid, database, sale, header = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]

def rss():
    fields = dict(line.split(':', 1) for line in open(f'/proc/{pid}/status'))
    return int(fields['VmRSS'].split()[0]), int(fields['VmHWM'].split()[0])

def mib(kib):
    return f'{kib / 1024:.1f} MiB'

start, _ = rss()
print(f'  serve at start: {mib(start)}')
connections = [socket.create_connection(('127.0.0.1', port)) for _ in range(crowd)]
time.sleep(2)   # serve accepts them one by one: let it take the last
idle, _ = rss()
print(f'  {crowd:,} idle connections: {mib(idle)} (+{mib(idle - start)}, {(idle - start) * 1024 / crowd / 1024:.2f} KiB each)')

lock = subprocess.Popen(['sqlite3', database], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
lock.stdin.write('PRAGMA busy_timeout = 5000;\nBEGIN IMMEDIATE;\nSELECT 1;\n')
lock.stdin.flush()
time.sleep(1)   # sqlite3 has the lock before the first booking arrives
for index, connection in enumerate(connections):
    body = b'{}'
    connection.sendall(b'POST /booking-service/book-item/%s HTTP/1.1\r\nHost: x\r\n%s: u%d\r\n'
                       b'Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
                       % (sale.encode(), header.encode(), index))
time.sleep(3)   # every booking read and queued
waiting, _ = rss()
print(f'  each with a booking waiting: {mib(waiting)} (+{mib(waiting - idle)}, {(waiting - idle) / crowd:.2f} KiB each)')

lock.stdin.write('ROLLBACK;\n.quit\n')
lock.stdin.flush()
lock.wait()
created = 0
for connection in connections:
    connection.settimeout(60)
    if connection.recv(4096).startswith(b'HTTP/1.1 201 '):
        created += 1
_, peak = rss()
print(f'  answered: peak {mib(peak)}; {created:,} of {crowd:,} answered 201')
sys.exit(0 if created == crowd else 1)
PY
stop_server || die "serve exited with status $? on SIGTERM"
check_serve crowd "$sale" "$crowd" "$crowd"
say "  $checked"
