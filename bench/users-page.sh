#!/usr/bin/env bash
# Load benchmark of the Users page at 100,000 users, against GET /livez as the
# reference, plus a 1,000-row invite, outbox throughput and peak memory.
#
#   bash bench/users-page.sh                 # SQLite (the embedded default)
#   bash bench/users-page.sh postgres        # PostgreSQL at $ENROLL_BENCH_POSTGRES_URL
#
# Needs wrk (apt-get install wrk). Takes about three minutes after the release build.
set -euo pipefail
cd "$(dirname "$0")/.."

engine="${1:-sqlite}"
users="${BENCH_USERS:-100000}"
duration="${BENCH_DURATION:-10s}"
connections="${BENCH_CONNECTIONS:-64}"
port=18480
sink_port=18425

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --release --quiet --bin enroll --example seed --example smtp_sink

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

export ENROLL_DATA_DIR="$work/data"
case "$engine" in
    sqlite)
        export ENROLL_DATABASE_URL="$work/data/enroll.db"
        ;;
    postgres)
        admin_url="${ENROLL_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
        database="enroll_bench_$$"
        psql "$admin_url" -qc "CREATE DATABASE $database"
        pids+=()
        trap 'cleanup; psql "$admin_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"' EXIT
        export ENROLL_DATABASE_URL="${admin_url%/*}/$database"
        export ENROLL_SESSION_KEY="benchmark-session-key-benchmark-session-key"
        ;;
    *) echo "usage: $0 [sqlite|postgres]"; exit 2 ;;
esac
mkdir -p "$ENROLL_DATA_DIR"

echo "== seeding $users users on $engine"
seed_started=$(date +%s.%N)
deep_cursor="$(target/release/examples/seed --database-url "$ENROLL_DATABASE_URL" --users "$users")"
echo "   seeded in $(echo "$(date +%s.%N) - $seed_started" | bc) s"

target/release/examples/smtp_sink "$sink_port" "$work/sink.txt" &
pids+=($!)
base="http://127.0.0.1:$port"
jar="$work/cookies"
server=""

# Starts the console (again), signs in, and sets $cookie to what a browser would send.
start_server() {
    if [ -n "$server" ]; then
        peak_rss
        kill "$server"
        wait "$server" 2>/dev/null || true
    fi
    ENROLL_LISTEN="127.0.0.1:$port" ENROLL_LOG=warn ENROLL_SMTP_URL="smtp://127.0.0.1:$sink_port" \
        target/release/enroll serve >> "$work/enroll.log" 2>&1 &
    server=$!
    pids+=($server)
    for _ in $(seq 1 100); do
        curl -sf "$base/readyz" >/dev/null && break
        sleep 0.1
    done
    rm -f "$jar"
    curl -s -b "$jar" -c "$jar" -o /dev/null \
        --data-urlencode "email=bench@example.com" --data-urlencode "password=benchmark passphrase" \
        --data-urlencode "csrf_token=$(token /login)" "$base/login"
    # Every cookie the browser holds (session and CSRF), as a browser sends them.
    cookie="$(awk '$6 ~ /^enroll_/ { printf "%s%s=%s", sep, $6, $7; sep = "; " }' "$jar")"
    [[ "$cookie" == *enroll_session=* ]] || { echo "could not sign in"; exit 1; }
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$base/users")
    [ "$status" = 200 ] || { echo "the Users page answered $status"; exit 1; }
    sleep 1
}
# Records the running server's peak resident memory (kB).
peak_rss() { awk '/VmHWM/ { print $2 }' "/proc/$server/status" >> "$work/rss.txt"; }
token() { curl -s -b "$jar" -c "$jar" "$base$1" | grep -o 'name="csrf_token" value="[^"]*' | head -1 | sed 's/.*value="//'; }

run() {
    local name="$1" path="$2" header=()
    [ "$path" != /livez ] && header=(-H "Cookie: $cookie")
    # Warm up, then measure.
    wrk -t2 -c"$connections" -d2s "${header[@]}" "$base$path" >/dev/null
    local out
    out="$(wrk -t2 -c"$connections" -d"$duration" --latency "${header[@]}" "$base$path")"
    local rps p99 errors
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    errors=$(echo "$out" | awk '/Non-2xx/ { print $5 }')
    printf '%s\t%s\t%s\t%s\n' "$name" "$rps" "$p99" "${errors:-0}" >> "$work/results.tsv"
}

# Prints the table of $work/results.tsv against the /livez rate.
report() {
    echo
    printf '| %-42s | %10s | %8s | %10s | %9s |\n' "$1" "req/s" "p99" "of /livez" "non-2xx"
    printf '|%s|%s|%s|%s|%s|\n' "--------------------------------------------" "------------" "----------" "------------" "-----------"
    while IFS=$'\t' read -r name rps p99 errors; do
        share=$(echo "scale=1; 100 * $rps / $livez" | bc)
        printf '| %-42s | %10.0f | %8s | %9s%% | %9s |\n' "$name" "$rps" "$p99" "$share" "$errors"
    done < "$work/results.tsv"
    local first deep
    first=$(awk -F'\t' '$1 ~ /first page/ { print $2 }' "$work/results.tsv")
    deep=$(awk -F'\t' '$1 ~ /cursor page/ { print $2 }' "$work/results.tsv")
    echo "deep cursor page vs first page: $(echo "scale=1; 100 * $deep / $first" | bc)%"
}

pages() {
    run "Users, first page with status counts" "/users"
    run "Users, status filter (Expired)" "/users?status=expired"
    run "Users, name search (\"grace hopper\")" "/users?q=grace+hopper"
    run "Users, substring search (\"velac\")" "/users?q=velac"
    run "Users, cursor page at row $((users / 2))" "/users?after=$deep_cursor"
}

echo "== measuring ($connections connections, $duration each)"
start_server
: > "$work/results.tsv"
run "GET /livez (reference)" "/livez"
livez=$(awk -F'\t' 'NR == 1 { print $2 }' "$work/results.tsv")
pages
report "request ($engine, $users users)"

if [ "${BENCH_UNCACHED:-1}" = 1 ]; then
    echo
    echo "== the same pages rendered for every request (ENROLL_USERS_PAGE_CACHE_MS=0)"
    export ENROLL_USERS_PAGE_CACHE_MS=0
    start_server
    : > "$work/results.tsv"
    pages
    report "uncached ($engine, $users users)"
    unset ENROLL_USERS_PAGE_CACHE_MS
    start_server
fi

echo
echo "== a 1,000-row invite submission"
form="$work/invite.txt"
invite_token="$(token /users/invite)"
{
    printf 'csrf_token=%s&action=send' "$invite_token"
    for n in $(seq 1 1000); do printf '&first_name=Bench&last_name=Person%d&email=bench.person.%d%%40example.org' "$n" "$n"; done
} > "$form"
time_total=$(curl -s -b "$jar" -o /dev/null -w '%{time_total}' -H 'Content-Type: application/x-www-form-urlencoded' \
    -H "Origin: $base" --data-binary "@$form" "$base/users/invite")
echo "   1,000 invitations saved and queued in ${time_total} s"

echo "== outbox throughput to a loopback SMTP server"
for round in 2 3; do
    invite_token="$(token /users/invite)"
    {
        printf 'csrf_token=%s&action=send' "$invite_token"
        for n in $(seq 1 1000); do printf '&first_name=Bench&last_name=R%dP%d&email=bench.%d.%d%%40example.org' "$round" "$n" "$round" "$n"; done
    } > "$form"
    curl -s -b "$jar" -o /dev/null -H 'Content-Type: application/x-www-form-urlencoded' -H "Origin: $base" \
        --data-binary "@$form" "$base/users/invite"
done
for _ in $(seq 1 600); do
    read -r count first_ms last_ms < "$work/sink.txt" || true
    [ "${count:-0}" -ge 3000 ] && break
    sleep 0.1
done
read -r count first_ms last_ms < "$work/sink.txt"
rate=$(echo "scale=0; 1000 * ($count - 1) / ($last_ms - $first_ms)" | bc)
echo "   $count emails delivered at ${rate} emails/s"

echo "== memory"
peak_rss
echo "   peak RSS of the server, across every run above: $(sort -n "$work/rss.txt" | tail -1 | awk '{ printf "%.1f MB", $1 / 1024 }')"
