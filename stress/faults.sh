#!/usr/bin/env bash
# Disk faults: a full disk (a small tmpfs if this machine lets us mount one, and a file
# size limit, `ulimit -f`, which makes writes fail with EFBIG), a read-only file, a
# read-only directory, a missing directory, a file that is not a database, a truncated
# WAL. Each must give the contract's exit code (73 or 74) and a one-line message, and leave
# the database as it was before the command.
#   faults.sh
set -uo pipefail
source "$(dirname "$0")/lib.sh"
[[ -n ${FLASHSALE:-} ]] || flashsale_binary

work=$(mktemp -d /tmp/flashsale-faults.XXXXXX)
chmod 755 "$work"
checks=0
T=2026-11-24T15:00:00Z
export FLASHSALE_NOW=$T

# Everything in the file, as sqlite3 reads it: equal fingerprints, unchanged database.
# Not -readonly: a read-only connection leaves -wal and -shm behind, owned by root, which
# would let a later open in a read-only directory succeed.
fingerprint() { sqlite3 "$1" .dump 2>&1 | sha256sum | cut -c1-16; }

# expect NAME WANT STATUS STDERR_FILE: the exit code and a one-line message.
expect() {
    local name=$1 want=$2 status=$3 err=$4
    checks=$((checks + 1))
    local lines
    lines=$(wc -l <"$err")
    say "  $name: exit $status, $(head -c 160 "$err" | head -1)"
    [[ $status == "$want" ]] || violation faults "$name: exit $status, the contract says $want"
    [[ $lines == 1 && $(head -c 11 "$err") == "flashsale: " ]] || violation faults "$name: stderr is not one 'flashsale: ...' line ($lines lines)"
}
unchanged() { # NAME BEFORE DB
    checks=$((checks + 1))
    local after
    after=$(fingerprint "$3")
    [[ $after == "$2" ]] || violation faults "$1: the database changed ($2 -> $after)"
}

a_sale() { # DB: a sale with two holds and a queued request
    "$FLASHSALE" --db "$1" create-sale s1 --inventory 100 -q
    "$FLASHSALE" --db "$1" book s1 u1 >/dev/null
    "$FLASHSALE" --db "$1" book s1 u2 >/dev/null
    "$FLASHSALE" --db "$1" submit s1 u3 >/dev/null
}
for ((i = 0; i < 3000; i++)); do printf '{"user":"f%d","user_agent":"%0200d"}\n' "$i" 0; done >"$work/big.ndjson"

say "faults:"

# Full disk, a real one: a 2 MB tmpfs, filled up after the sale is made.
mkdir "$work/tmpfs"
if mount -t tmpfs -o size=2m tmpfs "$work/tmpfs" 2>/dev/null; then
    db=$work/tmpfs/sale.db
    a_sale "$db"
    before=$(fingerprint "$db")
    dd if=/dev/zero of="$work/tmpfs/filler" bs=4k 2>/dev/null
    "$FLASHSALE" --db "$db" submit s1 --file "$work/big.ndjson" >/dev/null 2>"$work/err"
    expect "full disk (tmpfs), submit --file" 74 $? "$work/err"
    "$FLASHSALE" --db "$db" book s1 u9 >/dev/null 2>"$work/err"
    status=$?
    say "  full disk (tmpfs), book: exit $status $(cat "$work/err")"
    [[ $status == 0 || $status == 74 ]] || violation faults "full disk (tmpfs), book: exit $status"
    rm "$work/tmpfs/filler"
    [[ $status == 74 ]] && unchanged "full disk (tmpfs), submit --file and book" "$before" "$db"
    "$FLASHSALE" --db "$db" submit s1 --file "$work/big.ndjson" -q 2>"$work/err" || violation faults "full disk (tmpfs): with space again, submit exits $?: $(cat "$work/err")"
    integrity "$db" "full disk (tmpfs)"
    umount "$work/tmpfs"
else
    say "  full disk (tmpfs): mount not permitted here, skipped (the file size limit below stands in)"
fi

# Full disk as a file size limit: every write past the file's size fails with EFBIG.
db=$work/limit.db
a_sale "$db"
before=$(fingerprint "$db")
limit=$(( ($(stat -c %s "$db") + 1023) / 1024 ))
bash -c 'ulimit -f "$1"; shift; exec "$@"' _ "$limit" "$FLASHSALE" --db "$db" submit s1 --file "$work/big.ndjson" >/dev/null 2>"$work/err"
expect "file size limit (EFBIG), submit --file" 74 $? "$work/err"
unchanged "file size limit (EFBIG), submit --file" "$before" "$db"
integrity "$db" "file size limit"

# Read-only file and read-only directory, as a user whom permission bits stop.
as_nobody=()
[[ $(id -u) == 0 ]] && as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
mkdir "$work/ro-file" "$work/ro-dir"
db=$work/ro-file/sale.db
a_sale "$db"
chown -R 65534:65534 "$work/ro-file" && chmod 644 "$db" && chmod 0444 "$db"
before=$(fingerprint "$db")
"${as_nobody[@]}" "$FLASHSALE" --db "$db" book s1 u9 >/dev/null 2>"$work/err"
expect "read-only file, book" 73 $? "$work/err"
unchanged "read-only file, book" "$before" "$db"

db=$work/ro-dir/sale.db
a_sale "$db"
chown -R 65534:65534 "$work/ro-dir" && chmod 0555 "$work/ro-dir"
before=$(fingerprint "$db")
"${as_nobody[@]}" "$FLASHSALE" --db "$db" book s1 u9 >/dev/null 2>"$work/err"
expect "read-only directory, book" 73 $? "$work/err"
unchanged "read-only directory, book" "$before" "$db"
chmod 755 "$work/ro-dir"

# A missing directory: nothing created.
"$FLASHSALE" --db "$work/no/such/dir/sale.db" create-sale s1 --inventory 1 >/dev/null 2>"$work/err"
expect "missing directory, create-sale" 73 $? "$work/err"
checks=$((checks + 1))
[[ -e $work/no ]] && violation faults "missing directory: something was created"

# A file that is not a database: byte for byte as it was.
head -c 8192 /dev/urandom >"$work/junk.db"
sum=$(sha256sum <"$work/junk.db")
"$FLASHSALE" --db "$work/junk.db" book s1 u1 >/dev/null 2>"$work/err"
expect "not a database, book" 73 $? "$work/err"
checks=$((checks + 1))
[[ $(sha256sum <"$work/junk.db") == "$sum" && ! -e $work/junk.db-wal ]] || violation faults "not a database: the file changed"

# A truncated WAL: a copy of a database and its WAL taken while a reader kept the WAL
# from being checkpointed (as after a crash), the WAL cut in the middle of its last frame.
# Its last transaction is lost, everything before it is there, and flashsale carries on.
db=$work/wal.db
a_sale "$db"
mkfifo "$work/reader"
sqlite3 "$db" <"$work/reader" >/dev/null &
reader=$!
exec {hold}>"$work/reader"
echo 'BEGIN; SELECT count(*) FROM sale;' >&"$hold"
sleep 0.2
for i in 1 2 3 4 5; do "$FLASHSALE" --db "$db" book s1 "w$i" >/dev/null; done
mkdir "$work/crashed"
cp "$db" "$db-wal" "$work/crashed/" 2>/dev/null
exec {hold}>&- # the reader's input ends, so it finishes
wait "$reader"
wal=$work/crashed/wal.db-wal
if [[ -s $wal ]]; then
    size=$(stat -c %s "$wal")
    truncate -s $((size - 100)) "$wal"
    db=$work/crashed/wal.db
    "$FLASHSALE" --db "$db" book s1 w9 >/dev/null 2>"$work/err"
    status=$?
    checks=$((checks + 1))
    say "  truncated WAL ($size -> $((size - 100)) bytes), book: exit $status $(cat "$work/err")"
    [[ $status == 0 || $status == 73 || $status == 74 ]] || violation faults "truncated WAL: book exit $status"
    integrity "$db" "truncated WAL"
    "$FLASHSALE" --db "$db" process -q
    recount "$db" "truncated WAL"
    checks=$((checks + 1))
    held=$(sqlite3 "$db" "SELECT count(*) FROM booking WHERE user LIKE 'w%'")
    say "  truncated WAL: $held of the holds w1..w5 and w9 are there"
    # The cut removes w5's commit frame: w1..w4 survive, and w9 if its book succeeded.
    [[ $held == $((status == 0 ? 5 : 4)) ]] || violation faults "truncated WAL: $held holds of w1..w5, w9 survived; expected w1..w4 and w9"
else
    violation faults "truncated WAL: no WAL to truncate (the reader did not keep it)"
fi

say "  $checks fault checks"
[[ ${KEEP:-} ]] || rm -rf "$work"
