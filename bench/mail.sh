#!/usr/bin/env bash
# The outbox, the session check, idle load and memory, measured from outside:
#
#   bash bench/mail.sh [sqlite|postgres] [outbox|idle|sessions|invite|memory ...]
#
#   outbox    3,000 invitations sent to a loopback SMTP server (emails/s)
#   idle      database transactions of 1 and of 10 idle instances over 60 s (PostgreSQL)
#   sessions  wrk on signed-in pages, and on /livez for reference (the session check)
#   invite    1,000-row invites while the outbox sends 3,000 emails (median, max)
#   memory    peak RSS: 100,000 users invited through the form (mail as .eml files at
#             full speed), then wrk on the Users page
#
# With no section named, all of them. ENROLL_BENCH_BIN runs another build of enroll (to
# compare with an older one); ENROLL_MAIL_WORKERS and the other ENROLL_* settings apply.
# Needs wrk and bc; PostgreSQL at $ENROLL_BENCH_POSTGRES_URL for the postgres runs.
set -euo pipefail
cd "$(dirname "$0")/.."

engine="${1:-sqlite}"
shift || true
sections=("$@")
[ ${#sections[@]} -eq 0 ] && sections=(outbox sessions invite idle memory)
port="${BENCH_PORT:-18580}"
sink_port=$((port - 55))
base="http://127.0.0.1:$port"

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --release --quiet --bin enroll --example seed --example smtp_sink
bin="${ENROLL_BENCH_BIN:-target/release/enroll}"

work="$(mktemp -d)"
pids=()
databases=()
admin_url="${ENROLL_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for database in "${databases[@]}"; do
        psql "$admin_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# A fresh database with the benchmark's administrator and settings: sets ENROLL_DATABASE_URL.
fresh_database() {
    export ENROLL_DATA_DIR="$work/data-$1"
    mkdir -p "$ENROLL_DATA_DIR"
    case "$engine" in
        sqlite) export ENROLL_DATABASE_URL="$ENROLL_DATA_DIR/enroll.db" ;;
        postgres)
            local database="enroll_mailbench_$$_$1"
            psql "$admin_url" -qc "CREATE DATABASE $database"
            databases+=("$database")
            export ENROLL_DATABASE_URL="${admin_url%/*}/$database"
            export ENROLL_SESSION_KEY="benchmark-session-key-benchmark-session-key"
            ;;
        *) echo "usage: $0 [sqlite|postgres] [sections]"; exit 2 ;;
    esac
    target/release/examples/seed --database-url "$ENROLL_DATABASE_URL" --users 1 >/dev/null 2>&1
}

# Starts one console on $port (mail to the sink unless SMTP is unset), signs in: $server, $cookie.
start_server() {
    local smtp=(ENROLL_SMTP_URL="smtp://127.0.0.1:$sink_port")
    [ "${1:-smtp}" = files ] && smtp=()
    env ENROLL_LISTEN="127.0.0.1:$port" ENROLL_LOG=warn "${smtp[@]}" "$bin" serve >> "$work/enroll.log" 2>&1 &
    server=$!
    pids+=("$server")
    for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
    jar="$work/cookies"
    rm -f "$jar"
    curl -s -b "$jar" -c "$jar" -o /dev/null \
        --data-urlencode "email=bench@example.com" --data-urlencode "password=benchmark passphrase" \
        --data-urlencode "csrf_token=$(token /login)" "$base/login"
    cookie="$(awk '$6 ~ /^enroll_/ { printf "%s%s=%s", sep, $6, $7; sep = "; " }' "$jar")"
    [[ "$cookie" == *enroll_session=* ]] || { echo "could not sign in"; exit 1; }
}
stop_server() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
}
token() { curl -s -b "$jar" -c "$jar" "$base$1" | grep -o 'name="csrf_token" value="[^"]*' | head -1 | sed 's/.*value="//'; }

# Submits a 1,000-row invite (addresses tagged $1); prints the seconds it took.
invite() {
    local form="$work/invite.txt"
    {
        printf 'csrf_token=%s&action=send' "$(token /users/invite)"
        for n in $(seq 1 1000); do printf '&first_name=Bench&last_name=P%s.%d&email=bench.%s.%d%%40example.org' "$1" "$n" "$1" "$n"; done
    } > "$form"
    curl -s -b "$jar" -o /dev/null -w '%{time_total}\n' -H 'Content-Type: application/x-www-form-urlencoded' \
        -H "Origin: $base" --data-binary "@$form" "$base/users/invite"
}

start_sink() {
    rm -f "$work/sink.txt"
    target/release/examples/smtp_sink "$sink_port" "$work/sink.txt" &
    sink=$!
    pids+=("$sink")
    sleep 0.3
}
stop_sink() { kill "$sink" 2>/dev/null || true; wait "$sink" 2>/dev/null || true; }
# Waits until the sink has $1 emails (or a minute passed); prints "count first_ms last_ms".
sink_wait() {
    local count=0 first_ms last_ms
    for _ in $(seq 1 600); do
        read -r count first_ms last_ms < "$work/sink.txt" 2>/dev/null || true
        [ "${count:-0}" -ge "$1" ] && break
        sleep 0.1
    done
    read -r count first_ms last_ms < "$work/sink.txt"
    echo "$count $first_ms $last_ms"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

section_outbox() {
    echo "== outbox to a loopback SMTP server ($engine, ENROLL_MAIL_WORKERS=${ENROLL_MAIL_WORKERS:-default})"
    fresh_database outbox
    start_sink
    start_server
    for round in 1 2 3; do invite "o$round" >/dev/null; done
    read -r count first_ms last_ms <<<"$(sink_wait 3000)"
    echo "   $count emails delivered at $(echo "1000 * ($count - 1) / ($last_ms - $first_ms)" | bc) emails/s"
    echo "   SMTP connections open to the sink: $(ss -Htn state established "( dport = :$sink_port )" | wc -l)"
    stop_server
    stop_sink
}

section_sessions() {
    echo "== the session check: wrk -t2 -c64 -d10s ($engine)"
    fresh_database sessions
    start_sink
    start_server
    for path in /livez /account /users; do
        local header=()
        [ "$path" != /livez ] && header=(-H "Cookie: $cookie")
        wrk -t2 -c64 -d2s "${header[@]}" "$base$path" >/dev/null
        local out
        out="$(wrk -t2 -c64 -d10s --latency "${header[@]}" "$base$path")"
        printf '   %-8s %10s req/s  p50 %8s  p99 %8s  non-2xx %s\n' "$path" \
            "$(echo "$out" | awk '/Requests\/sec/ { print $2 }')" \
            "$(echo "$out" | awk '$1 == "50%" { print $2 }')" \
            "$(echo "$out" | awk '$1 == "99%" { print $2 }')" \
            "$(echo "$out" | awk '/Non-2xx/ { print $5 }' | grep . || echo 0)"
    done
    stop_server
    stop_sink
}

section_invite() {
    echo "== 1,000-row invites while the outbox sends ($engine)"
    fresh_database invite
    start_sink
    start_server
    invite warm >/dev/null
    sink_wait 1000 >/dev/null
    : > "$work/times.txt"
    for round in 1 2 3 4 5; do
        # 3,000 emails queued, then a 1,000-row invite timed while they go out.
        for part in a b c; do invite "q$round$part" >/dev/null; done
        invite "t$round" >> "$work/times.txt"
        sink_wait $((1000 + round * 4000)) >/dev/null
    done
    echo "   1,000-row invite: median $(median < "$work/times.txt") s, max $(sort -n "$work/times.txt" | tail -1) s (5 runs)"
    stop_server
    stop_sink
}

# Transactions committed in the benchmark's databases over 60 s, less this script's own.
commits() {
    psql "$admin_url" -Atc "SELECT coalesce(sum(xact_commit + xact_rollback), 0) FROM pg_stat_database WHERE datname LIKE 'enroll_mailbench_$$_%'"
}

section_idle() {
    [ "$engine" = postgres ] || { echo "== idle: PostgreSQL only (SQLite: see README)"; return; }
    echo "== database load of idle instances over 60 s (PostgreSQL)"
    fresh_database idle
    start_sink
    for count in 1 10; do
        local idle_pids=()
        for n in $(seq 1 "$count"); do
            # Two pooled connections each, so that ten fit in PostgreSQL's 100.
            env ENROLL_LISTEN="127.0.0.1:$((port + 10 + n))" ENROLL_LOG=warn ENROLL_DB_POOL_SIZE=2 \
                ENROLL_SMTP_URL="smtp://127.0.0.1:$sink_port" "$bin" serve >> "$work/enroll.log" 2>&1 &
            idle_pids+=($!)
            pids+=($!)
        done
        local ready=0
        for n in $(seq 1 "$count"); do
            for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$((port + 10 + n))/readyz" >/dev/null && break; sleep 0.1; done
            curl -sf "http://127.0.0.1:$((port + 10 + n))/readyz" >/dev/null && ready=$((ready + 1))
        done
        [ "$ready" = "$count" ] || echo "   only $ready of $count instances started"
        sleep 5
        psql "$admin_url" -qc "SELECT pg_stat_clear_snapshot()" >/dev/null
        local before after
        before=$(commits)
        sleep 60
        after=$(commits)
        echo "   $count idle instance(s): $((after - before)) transactions in 60 s ($(echo "scale=1; ($after - $before) / 60" | bc)/s), $(psql "$admin_url" -Atc "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'enroll_mailbench_$$_%' AND state = 'active'") connections active at the end"
        for pid in "${idle_pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
    done
    stop_sink
}

section_memory() {
    echo "== peak RSS: ${BENCH_MEMORY_ROUNDS:-100},000 users invited through the form, mail written as files, then the Users page ($engine)"
    fresh_database memory
    start_server files
    local started
    started=$(date +%s.%N)
    local rounds="${BENCH_MEMORY_ROUNDS:-100}"
    for round in $(seq 1 "$rounds"); do invite "m$round" >/dev/null; done
    echo "   $((rounds * 1000)) invited in $(echo "$(date +%s.%N) - $started" | bc) s"
    for _ in $(seq 1 600); do
        [ "$(find "$ENROLL_DATA_DIR/mail" -name '*.eml' | wc -l)" -ge $((rounds * 1000)) ] && break
        sleep 0.5
    done
    wrk -t2 -c64 -d10s -H "Cookie: $cookie" "$base/users" >/dev/null
    wrk -t2 -c64 -d10s -H "Cookie: $cookie" "$base/users?q=person" >/dev/null
    echo "   peak RSS $(awk '/VmHWM/ { printf "%.1f MB", $2 / 1024 }' "/proc/$server/status"), threads $(awk '/Threads/ { print $2 }' "/proc/$server/status")"
    stop_server
}

for section in "${sections[@]}"; do "section_$section"; done
