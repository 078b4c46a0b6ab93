# Shared by the stress scripts: the binary, violations, the recount. Sourced, not run.

STRESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$STRESS_DIR/.." && pwd)

# Every violation is one line on stdout and one in $VIOLATIONS (the run's tally).
: "${VIOLATIONS:=$(mktemp)}"
export VIOLATIONS

violation() { # CHECK WHAT...
    local check=$1
    shift
    printf 'VIOLATION [%s] %s\n' "$check" "$*"
    printf '%s\t%s\n' "$check" "$*" >>"$VIOLATIONS"
}

violation_count() { wc -l <"$VIOLATIONS" | tr -d ' '; }

say() { printf '%s\n' "$*"; }

need_tools() {
    local missing=()
    for tool in sqlite3 jq; do command -v "$tool" >/dev/null || missing+=("$tool"); done
    if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        apt-get install -y "${missing[@]}" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
    fi
}

# The binary under test: $FLASHSALE_BIN, else a release build of this checkout.
flashsale_binary() {
    if [[ -n ${FLASHSALE_BIN:-} ]]; then
        FLASHSALE=$FLASHSALE_BIN
    else
        say "building: swift build -c release --static-swift-stdlib"
        (cd "$ROOT" && nice -n 10 swift build -c release --static-swift-stdlib >/dev/null) || { say "build failed"; exit 2; }
        FLASHSALE=$ROOT/.build/release/flashsale
    fi
    export FLASHSALE
}

# Runs the independent recount (recount.sql) on DB: each violation it finds is reported
# under LABEL; its figures line is printed.
recount() { # DB LABEL
    local db=$1 label=$2 out
    if ! out=$(sqlite3 -readonly "$db" <"$STRESS_DIR/recount.sql" 2>&1); then
        violation recount "$label: the recount failed: $out"
        return
    fi
    while IFS='|' read -r kind check what; do
        case $kind in
            violation) violation "$check" "$label: $what" ;;
            recount) say "  recount $label: ${check} ${what//|/ }" ;;
        esac
    done <<<"$out"
}

# PRAGMA integrity_check and flashsale verify on DB, each a violation unless ok.
integrity() { # DB LABEL
    local db=$1 label=$2 check verify
    check=$(sqlite3 "$db" 'PRAGMA integrity_check' 2>&1)
    [[ $check == ok ]] || violation integrity "$label: integrity_check says: $(head -3 <<<"$check" | tr '\n' ' ')"
    verify=$("$FLASHSALE" --db "$db" verify 2>&1) || true
    [[ $verify == ok ]] || violation verify "$label: verify says: $(head -5 <<<"$verify" | tr '\n' ' ')"
}

# Seconds since the epoch, with milliseconds, for elapsed times.
now_ms() { date +%s%3N; }
