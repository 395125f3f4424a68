#!/usr/bin/env bash
# An identity provider's initial sync: 10,000 users created over SCIM, one POST each,
# from 8 concurrent connections; every invitation email is queued in the same
# transaction (and delivered by the outbox worker to a loopback SMTP sink meanwhile).
#
#   bash bench/scim-provisioning.sh               # SQLite (the embedded default)
#   bash bench/scim-provisioning.sh postgres      # PostgreSQL at $ENROLL_BENCH_POSTGRES_URL
#
# Needs wrk (apt-get install wrk). BENCH_USERS and BENCH_CONNECTIONS change the size.
set -euo pipefail
cd "$(dirname "$0")/.."

engine="${1:-sqlite}"
users="${BENCH_USERS:-10000}"
connections="${BENCH_CONNECTIONS:-8}"
port=18481
sink_port=18426

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --release --quiet --bin enroll --example smtp_sink

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
        database="enroll_scim_bench_$$"
        psql "$admin_url" -qc "CREATE DATABASE $database"
        trap 'cleanup; psql "$admin_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"' EXIT
        export ENROLL_DATABASE_URL="${admin_url%/*}/$database"
        export ENROLL_SESSION_KEY="benchmark-session-key-benchmark-session-key"
        ;;
    *) echo "usage: $0 [sqlite|postgres]"; exit 2 ;;
esac
mkdir -p "$ENROLL_DATA_DIR"

target/release/examples/smtp_sink "$sink_port" "$work/sink.txt" &
pids+=($!)
base="http://127.0.0.1:$port"
jar="$work/cookies"

ENROLL_ADMIN_PASSWORD="benchmark passphrase" ENROLL_LOG=warn \
    target/release/enroll admin add --email bench@example.com --role administrator
ENROLL_LISTEN="127.0.0.1:$port" ENROLL_LOG=warn ENROLL_SMTP_URL="smtp://127.0.0.1:$sink_port" \
    target/release/enroll serve >> "$work/enroll.log" 2>&1 &
server=$!
pids+=($server)
for _ in $(seq 1 100); do
    curl -sf "$base/readyz" >/dev/null && break
    sleep 0.1
done
token() { curl -s -b "$jar" -c "$jar" "$base$1" | grep -o 'name="csrf_token" value="[^"]*' | head -1 | sed 's/.*value="//'; }
curl -s -b "$jar" -c "$jar" -o /dev/null \
    --data-urlencode "email=bench@example.com" --data-urlencode "password=benchmark passphrase" \
    --data-urlencode "csrf_token=$(token /login)" "$base/login"
status=$(curl -s -b "$jar" -c "$jar" -o /dev/null -w '%{http_code}' -H "Origin: $base" \
    --data-urlencode "organization_name=Bench Corp" --data-urlencode "contact_email=it@bench.example.org" \
    --data-urlencode "sender_name=Bench IT" --data-urlencode "sender_address=no-reply@bench.example.org" \
    --data-urlencode "public_url=https://enroll.bench.example.org" --data-urlencode "validity_days=7" \
    --data-urlencode "custom_message=" --data-urlencode "after_join_url=" --data-urlencode "reminder_days=" \
    --data-urlencode "action=save" --data-urlencode "csrf_token=$(token /settings/invitations)" \
    "$base/settings/invitations")
[ "$status" = 303 ] || { echo "could not save the invitation settings ($status)"; exit 1; }
scim_token="$(ENROLL_LOG=warn target/release/enroll token add --kind scim --name bench | sed 's/^token=//')"

threads=2
[ "$connections" -lt 2 ] && threads=1
per_thread=$(( users / threads ))
echo "== creating $users users over SCIM ($engine, $connections connections)"
# wrk runs for a fixed time; it is stopped (SIGINT: it then prints what it measured)
# once the users are all stored, so that its duration is the time they took.
wrk -t"$threads" -c"$connections" -d10m --timeout 30s -s bench/scim-create.lua \
    "$base/scim/v2/Users" -- "$per_thread" "$scim_token" > "$work/wrk.txt" 2>&1 &
loader=$!
pids+=($loader)
stored=0
for _ in $(seq 1 6000); do
    stored=$(curl -s -H "Authorization: Bearer $scim_token" "$base/scim/v2/Users?count=1" \
        | grep -o '"totalResults":[0-9]*' | cut -d: -f2 || true)
    [ "${stored:-0}" -ge "$users" ] && break
    sleep 0.1
done
kill -INT "$loader"
wait "$loader" || true
grep -E "^created|Non-2xx|Socket errors" "$work/wrk.txt" || cat "$work/wrk.txt"
echo "   users stored: $stored (expected $users)"
for _ in $(seq 1 600); do
    read -r count _ _ < "$work/sink.txt" 2>/dev/null || true
    [ "${count:-0}" -ge "$users" ] && break
    sleep 0.2
done
read -r count _ _ < "$work/sink.txt" 2>/dev/null || count=0
echo "   invitation emails delivered by the outbox meanwhile and after: ${count:-0}"
echo "   peak RSS of the server: $(awk '/VmHWM/ { printf "%.1f MB", $2 / 1024 }' "/proc/$server/status")"
