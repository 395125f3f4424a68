#!/usr/bin/env bash
# SearchUsers of the Alexa for Business API against the Users page, in the same run,
# at 100,000 users (SQLite, the embedded default): MaxResults 50 with and without a
# filter, and the page with and without the same filter. The API should cost no more
# than the page: each ratio (API ÷ page, of requests answered with 2xx per second) is
# printed, and should be >= 1.0.
# Twice: as shipped (both share a result for ENROLL_USERS_PAGE_CACHE_MS, 1 second), then
# with ENROLL_USERS_PAGE_CACHE_MS=0 (the page rendered and the search run for every
# request), the cost of a search nobody else asked for a moment ago.
#
#   bash bench/a4b-search.sh
#
# Needs wrk (apt-get install wrk) and the boto3 venv of .ci/run (target/a4b-venv), whose
# botocore signs the requests: each is signed once and replayed, as SigV4 allows within
# its 15 minutes. Takes about three minutes after the release build.
set -euo pipefail
cd "$(dirname "$0")/.."

users="${BENCH_USERS:-100000}"
duration="${BENCH_DURATION:-10s}"
connections="${BENCH_CONNECTIONS:-64}"
port=18497
python=target/a4b-venv/bin/python

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
[ -x "$python" ] || { echo "no $python: make it as .ci/run does"; exit 1; }
cargo build --release --quiet --bin enroll --example seed

work="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

export ENROLL_DATA_DIR="$work/data" ENROLL_DATABASE_URL="$work/data/enroll.db" ENROLL_LOG=warn
mkdir -p "$ENROLL_DATA_DIR"
echo "== seeding $users users"
target/release/examples/seed --database-url "$ENROLL_DATABASE_URL" --users "$users" >/dev/null
keys="$(target/release/enroll token add --kind access-key --name benchmark --role administrator)"
key_id="$(sed -n 's/^access_key_id=//p' <<<"$keys")"
secret="$(sed -n 's/^secret_access_key=//p' <<<"$keys")"

base="http://127.0.0.1:$port"
# Starts the server with these extra settings (NAME=value ...), stopping the last one.
serve() {
    if [ -n "$server" ]; then
        kill "$server"
        wait "$server" 2>/dev/null || true
    fi
    env "$@" ENROLL_LISTEN="127.0.0.1:$port" target/release/enroll serve >> "$work/enroll.log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
}
serve
jar="$work/cookies"
csrf="$(curl -s -b "$jar" -c "$jar" "$base/login" | grep -o 'name="csrf_token" value="[^"]*' | head -1 | sed 's/.*value="//')"
curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "email=bench@example.com" \
    --data-urlencode "password=benchmark passphrase" --data-urlencode "csrf_token=$csrf" "$base/login"
cookie="$(awk '$6 ~ /^enroll_/ { printf "%s%s=%s", sep, $6, $7; sep = "; " }' "$jar")"

# A wrk script that POSTs one request signed by botocore (the SDK's own signer).
signed() {
    "$python" - "$base/a4b" "$key_id" "$secret" "$1" > "$2" <<'PY'
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, key_id, secret, body = sys.argv[1:]
request = AWSRequest(method="POST", url=url, data=body, headers={
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "AlexaForBusiness.SearchUsers"})
SigV4Auth(Credentials(key_id, secret), "a4b", "us-east-1").add_auth(request)
print("wrk.method = 'POST'")
print("wrk.body = " + json.dumps(body))
for name, value in request.headers.items():
    print("wrk.headers[%s] = %s" % (json.dumps(name), json.dumps(value)))
PY
}

run() {
    local name="$1" path="$2" out
    shift 2
    wrk -t2 -c"$connections" -d2s "$@" "$base$path" >/dev/null
    out="$(wrk -t2 -c"$connections" -d"$duration" --latency "$@" "$base$path")"
    local rps p99 errors total ok
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    errors=$(awk '/Non-2xx/ { print $5 }' <<<"$out")
    total=$(awk '/requests in/ { print $1 }' <<<"$out")
    # Answered requests only: a page refused as busy (503) is not a page served.
    ok=$(echo "scale=2; $rps * ($total - ${errors:-0}) / $total" | bc)
    printf '| %-52s | %9.0f | %9.0f | %8s | %7s |\n' "$name" "$rps" "$ok" "$p99" "${errors:-0}" >&2
    echo "$ok"
}

signed '{"MaxResults": 50}' "$work/all.lua"
signed '{"MaxResults": 50, "Filters": [{"Key": "EnrollmentStatus", "Values": ["REGISTERED"]}]}' "$work/filtered.lua"
check="$(wrk -t1 -c1 -d1s -s "$work/all.lua" "$base/a4b" | awk '/Non-2xx/ { print $5 }')"
[ -z "$check" ] || { echo "SearchUsers was refused"; tail "$work/enroll.log"; exit 1; }

# The four rows and their two ratios, under the server running now.
compare() {
    local page api page_filtered api_filtered
    printf '| %-52s | %9s | %9s | %8s | %7s |\n' "request ($1)" "req/s" "2xx/s" "p99" "non-2xx" >&2
    printf '|%s|%s|%s|%s|%s|\n' "------------------------------------------------------" "-----------" "-----------" "----------" "---------" >&2
    page=$(run "GET /users (first page, 50 rows)" "/users" -H "Cookie: $cookie")
    api=$(run "SearchUsers, MaxResults 50" "/a4b" -s "$work/all.lua")
    page_filtered=$(run "GET /users?status=enrolled (50 rows)" "/users?status=enrolled" -H "Cookie: $cookie")
    api_filtered=$(run "SearchUsers, MaxResults 50, EnrollmentStatus=REGISTERED" "/a4b" -s "$work/filtered.lua")
    echo
    echo "$1: SearchUsers vs Users page, no filter:      $(echo "scale=2; $api / $page" | bc)"
    echo "$1: SearchUsers vs Users page, status filter:  $(echo "scale=2; $api_filtered / $page_filtered" | bc)"
    echo
}

echo "== $connections connections, $duration each, $users users"
compare "as shipped"
serve ENROLL_USERS_PAGE_CACHE_MS=0
compare "uncached"
uptime
