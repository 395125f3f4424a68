#!/usr/bin/env bash
# A help desk at work: many people, each typing different searches, on a freshly seeded
# database. Issue 13 ("varied views", "any single search", "cached views") and issue 15
# (PostgreSQL right after seeding, no manual ANALYZE).
#
#   bash bench/varied-views.sh               # SQLite
#   bash bench/varied-views.sh postgres      # PostgreSQL at $ENROLL_BENCH_POSTGRES_URL
#   BENCH_USERS=1000000 bash bench/varied-views.sh
#
# Seeds BENCH_USERS users through the invite code (examples/seed, batches of 1,000) with
# 32 help-desk accounts and, on purpose, no ANALYZE; then measures with wrk -t2 -c64:
#   1. GET /livez, the reference;
#   2. the varied mix: each request picks one of 20,000 distinct URLs at random (name
#      parts, numbers in addresses, whole names; 30% with a status filter; some sorted
#      or paged differently) and one of the 25 signed-in sessions;
#   3. single searches rendered for every request (ENROLL_USERS_PAGE_CACHE_MS=0): "ove",
#      "an" (too short: not run, the page says so), a whole name, a number;
#   4. cached views (the default cache): first page, a filter, a deep page, several
#      rounds, for the worst p99;
# and reports the database size, the seed time and the server's peak memory. Before
# measuring, each server start waits until its search index answers (and says how long
# that took, and the server's memory then). Needs wrk.
#
# BENCH_KEEP=DIR: seed into DIR (on PostgreSQL, into a database named after DIR) and keep
# it; a later run with the same DIR and BENCH_USERS measures it again without seeding (a
# million users take minutes to seed).
# BENCH_AGAINST=DIR: also the varied mix as shipped on this database and on the one kept
# in DIR (by an earlier run with BENCH_KEEP=DIR and another BENCH_USERS), alternately, for
# BENCH_ROUNDS rounds, and their ratio: two sizes compared at the same moments, where runs
# minutes apart saw this machine's `/livez` rate drift by a third.
# BENCH_CLASSES=1: also each kind of view of the mix on its own, uncached (name parts,
# whole names, a name with a number, numbers of 3, 4 and 5 digits; each also sorted
# otherwise than by name), to see which of them a larger database slows.
set -euo pipefail
cd "$(dirname "$0")/.."

engine="${1:-sqlite}"
users="${BENCH_USERS:-100000}"
duration="${BENCH_DURATION:-10s}"
connections="${BENCH_CONNECTIONS:-64}"
rounds="${BENCH_ROUNDS:-3}"
port=18490

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --release --quiet --bin enroll --example seed

work="$(mktemp -d)"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

admin_url="${ENROLL_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
# The database of a directory: its file, or on PostgreSQL one named after the directory
# (kept with it, BENCH_KEEP: never dropped here).
database_of() {
    case "$engine" in
        sqlite) echo "$1/enroll.db" ;;
        *) echo "${admin_url%/*}/enroll_kept_$(basename "$1" | tr -c 'a-zA-Z0-9_\n' '_')" ;;
    esac
}
data="${BENCH_KEEP:-$work/data}"
export ENROLL_DATA_DIR="$data"
case "$engine" in
    sqlite) export ENROLL_DATABASE_URL="$(database_of "$data")" ;;
    postgres)
        if [ -n "${BENCH_KEEP:-}" ]; then
            export ENROLL_DATABASE_URL="$(database_of "$data")"
            [ -f "$data/seeded-$users.txt" ] \
                || psql "$admin_url" -qc "CREATE DATABASE ${ENROLL_DATABASE_URL##*/}"
        else
            database="enroll_varied_$$"
            psql "$admin_url" -qc "CREATE DATABASE $database"
            trap 'cleanup; psql "$admin_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"' EXIT
            export ENROLL_DATABASE_URL="${admin_url%/*}/$database"
        fi
        export ENROLL_SESSION_KEY="benchmark-session-key-benchmark-session-key"
        ;;
    *) echo "usage: $0 [sqlite|postgres]"; exit 2 ;;
esac
mkdir -p "$ENROLL_DATA_DIR"

if [ -n "${BENCH_KEEP:-}" ] && [ -f "$data/seeded-$users.txt" ]; then
    echo "== reusing $users users seeded earlier in $data"
    cp "$data/seeded-$users.txt" "$work/seed-summary.txt"
    cp "$data/deep-cursor.txt" "$data/seed-rss.txt" "$work/"
else
    echo "== seeding $users users on $engine through the invite code (no ANALYZE afterwards)"
    started=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$work/seed-rss.txt" target/release/examples/seed \
        --database-url "$ENROLL_DATABASE_URL" --users "$users" --desk-accounts 32 --no-analyze \
        > "$work/deep-cursor.txt"
    echo "$(date +%s.%N) - $started" | bc > "$work/seed-summary.txt"
    if [ -n "${BENCH_KEEP:-}" ]; then
        cp "$work/deep-cursor.txt" "$work/seed-rss.txt" "$data/"
        cp "$work/seed-summary.txt" "$data/seeded-$users.txt"
    fi
fi
seed_seconds=$(cat "$work/seed-summary.txt")
deep_cursor="$(cat "$work/deep-cursor.txt")"
if [ "$engine" = sqlite ]; then
    size=$(du -b "$data/enroll.db" | awk '{ print $1 }')
else
    size=$(psql "$ENROLL_DATABASE_URL" -Atc "SELECT pg_database_size(current_database())")
fi
printf '   seeded in %.0f s; database %.0f MB; seeder peak RSS %.0f MB\n' \
    "$seed_seconds" "$(echo "$size / 1048576" | bc -l)" "$(echo "$(cat "$work/seed-rss.txt") / 1024" | bc -l)"

# 20,000 distinct views of the Users page.
python3 - "$work/urls.txt" <<'EOF'
import random, sys
random.seed(13)
first = "Ada Alan Grace Edsger Barbara Donald Frances John Margaret Dennis Ken Radia Tim Vint Hedy Katherine Dorothy Mary Linus Guido Bjarne James Anders Yukihiro Larry Rasmus Brendan Sophie Ruth Karen Leslie Niklaus Tony Robin Shafi Silvio Whitfield Martin Adi Ron".split()
last = "Lovelace Turing Hopper Dijkstra Liskov Knuth Allen McCarthy Hamilton Ritchie Thompson Perlman Berners-Lee Cerf Lamarr Johnson Vaughan Jackson Torvalds Rossum Stroustrup Gosling Hejlsberg Matsumoto Wall Lerdorf Eich Wilson Teitelman Jones Lamport Wirth Hoare Milner Goldwasser Micali Diffie Hellman Shamir Rivest Adleman Kay Engelbart Sutherland Backus Codd Gray Stonebraker Cook Karp".split()
statuses = ["pending", "expired", "delivery_failed", "sending", "enrolled", "expiring_soon"]
urls = {}  # URL: its kind (for BENCH_CLASSES)
while len(urls) < 20000:
    kind = random.random()
    if kind < 0.4:    # part of a name, 3 to 6 letters
        name = random.choice(first + last).lower()
        n = random.randint(3, min(6, len(name)))
        start = random.randint(0, len(name) - n)
        q = name[start:start + n]
        what = "name part"
    elif kind < 0.7:  # a number in an address
        q = str(random.randint(0, 99999))[: random.randint(3, 5)]
        what = f"number of {len(q)} digits"
    else:             # a whole name, or a name and part of the address
        q = f"{random.choice(first)} {random.choice(last)}".lower()
        what = "whole name"
        if random.random() < 0.3:
            q = f"{q.split()[0]}.{q.split()[1]}.{random.randint(0, 999)}"
            what = "name and number"
    params = [("q", q)]
    if random.random() < 0.3:
        params.append(("status", random.choice(statuses)))
    if random.random() < 0.1:
        params.append(("sort", random.choice(["email", "invited", "status"])))
        what += ", sorted otherwise"
    if random.random() < 0.1:
        params.append(("per_page", random.choice(["25", "100"])))
    urls["/users?" + "&".join(f"{k}={v.replace(' ', '+')}" for k, v in params)] = what
open(sys.argv[1], "w").write("\n".join(sorted(urls)) + "\n")
kinds = {}
for url, what in urls.items():
    kinds.setdefault(what, []).append(url)
with open(sys.argv[1] + ".kinds", "w") as out:
    for what in sorted(kinds):
        if len(kinds[what]) >= 100:  # numbers of one or two digits are a handful
            out.write(f"{what}\t{len(kinds[what])}\t{' '.join(sorted(kinds[what]))}\n")
EOF

cat > "$work/mix.lua" <<'EOF'
-- Each request: a random view (BENCH_URLS file, or BENCH_PATH) and a random session.
local urls, cookies = {}, {}
local path = os.getenv("BENCH_PATH")
if path == nil or path == "" then
    for line in io.lines(os.getenv("BENCH_URLS")) do urls[#urls + 1] = line end
else
    urls[1] = path
end
for line in io.lines(os.getenv("BENCH_COOKIES")) do cookies[#cookies + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
request = function()
    return wrk.format("GET", urls[math.random(#urls)], { ["Cookie"] = cookies[math.random(#cookies)] })
end
done = function(summary, latency, requests)
    local e = summary.errors
    -- Answered with 2xx per second: a 503 (refused at once, or past its deadline) is
    -- counted apart, not as throughput.
    io.write(string.format("STATS %.1f %.2f %.2f %.2f %d %d\n",
        (summary.requests - e.status) / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
        e.status, e.connect + e.read + e.write + e.timeout))
end
EOF

base="http://127.0.0.1:$port"
start_server() {
    if [ -n "$server" ]; then
        awk '/VmHWM/ { print $2 }' "/proc/$server/status" >> "${rss_of_last:-$work/rss.txt}"
        kill "$server"; wait "$server" 2>/dev/null || true
    fi
    ENROLL_LISTEN="127.0.0.1:$port" ENROLL_LOG=warn target/release/enroll serve >> "$work/enroll.log" 2>&1 &
    server=$!
    for _ in $(seq 1 300); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
    # 24 help-desk people and the administrator, each signed in once (sign-in allows 30
    # attempts from one address in a burst).
    : > "$work/cookies.txt"
    for who in bench $(seq -f 'desk%g' 0 23); do
        jar="$work/jar"; rm -f "$jar"
        token=$(curl -s -c "$jar" "$base/login" | grep -o 'name="csrf_token" value="[^"]*' | head -1 | sed 's/.*value="//')
        curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "email=$who@example.com" \
            --data-urlencode "password=benchmark passphrase" --data-urlencode "csrf_token=$token" "$base/login"
        awk '$6 ~ /^enroll_/ { printf "%s%s=%s", sep, $6, $7; sep = "; " } END { print "" }' "$jar" >> "$work/cookies.txt"
    done
    grep -c enroll_session "$work/cookies.txt" | grep -qx 25 || { echo "could not sign in"; exit 1; }
    # The search index is built in the background at start; until then the database
    # answers searches. Measured once it answers (enroll_users_searches_total).
    local since=$SECONDS
    until curl -s -o /dev/null -b "$(head -1 "$work/cookies.txt")" "$base/users?q=zqx" \
        && curl -s "$base/metrics" | grep -q 'enroll_users_searches_total{by="index"}'; do
        [ $((SECONDS - since)) -lt 600 ] || { echo "the search index was not built in 600 s"; exit 1; }
        sleep 1
    done
    printf '   search index answering %d s after the sign-ins; server RSS then %.1f MB\n' \
        "$((SECONDS - since))" "$(awk '/VmRSS/ { print $2 / 1024 }' "/proc/$server/status")"
}

# measure NAME [PATH]: wrk with the mix (or one path), appended to results.tsv; the mix
# is $urls_file's.
urls_file="$work/urls.txt"
measure() {
    local name="$1" path="${2:-}" out
    out=$(BENCH_URLS="$urls_file" BENCH_COOKIES="$work/cookies.txt" BENCH_PATH="$path" \
        wrk -t2 -c"$connections" -d"$duration" -s "$work/mix.lua" "$base" | grep '^STATS')
    # shellcheck disable=SC2086
    set -- $out
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$2" "$3" "$4" "$5" "$6" "$7" >> "$work/results.tsv"
    printf '   %-44s %9.0f 2xx/s  p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  non-2xx %s  socket errors %s\n' \
        "$name" "$2" "$3" "$4" "$5" "$6" "$7"
}

: > "$work/results.tsv"
echo "== as shipped (rendered views shared for up to a second), $connections connections, $duration each"
echo "   load before measuring: $(cut -d' ' -f1-3 /proc/loadavg)"
start_server
measure "GET /livez (reference)" /livez
livez=$(awk -F'\t' 'NR == 1 { print $2 }' "$work/results.tsv")
for round in $(seq 1 "$rounds"); do
    measure "varied views, round $round"
done
# Issue 15: the plain Users page while 64 connections run searches and filters (the
# varied mix, in the background); 4 connections of the administrator read /users
# meanwhile, and their p95 is what a person opening the console then sees.
head -1 "$work/cookies.txt" > "$work/admin-cookie.txt"
BENCH_URLS="$work/urls.txt" BENCH_COOKIES="$work/cookies.txt" BENCH_PATH="" \
    wrk -t1 -c"$connections" -d"$duration" -s "$work/mix.lua" "$base" > "$work/flood.txt" &
flood=$!
probe=$(BENCH_COOKIES="$work/admin-cookie.txt" BENCH_PATH=/users \
    wrk -t1 -c4 -d"$duration" -s "$work/mix.lua" "$base" | grep '^STATS')
wait "$flood"
# shellcheck disable=SC2086
set -- $probe
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "/users while $connections connections search" "$2" "$3" "$4" "$5" "$6" "$7" >> "$work/results.tsv"
printf '   %-44s %9.0f 2xx/s  p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  (searches meanwhile: %.0f 2xx/s)\n' \
    "/users while $connections connections search" "$2" "$3" "$4" "$5" "$(awk '/^STATS/ { print $2 }' "$work/flood.txt")"
for round in $(seq 1 "$rounds"); do
    measure "cached: first page, round $round" /users
    measure "cached: filter Expired, round $round" "/users?status=expired"
    measure "cached: cursor page at row $((users / 2)), round $round" "/users?after=$deep_cursor"
done

if [ -n "${BENCH_AGAINST:-}" ]; then
    other_users=$(find "$BENCH_AGAINST" -maxdepth 1 -name 'seeded-*.txt' | head -1 | sed 's/.*seeded-//; s/\.txt$//')
    [ -n "$other_users" ] || { echo "no database kept in $BENCH_AGAINST (seed it with BENCH_KEEP)"; exit 1; }
    echo "== the varied mix as shipped, alternately on these $users users and on the $other_users of $BENCH_AGAINST"
    here=("$ENROLL_DATA_DIR" "$ENROLL_DATABASE_URL")
    for round in $(seq 1 "$rounds"); do
        export ENROLL_DATA_DIR="$BENCH_AGAINST" ENROLL_DATABASE_URL="$(database_of "$BENCH_AGAINST")"
        rss_of_last="$work/rss.txt" start_server
        measure "varied views, $other_users users, alternating $round"
        export ENROLL_DATA_DIR="${here[0]}" ENROLL_DATABASE_URL="${here[1]}"
        # The other database's server: its memory is not this one's.
        rss_of_last="$work/rss-other.txt" start_server
        measure "varied views, $users users, alternating $round"
    done
    awk -F'\t' -v here="$users users" '
        index($1, "alternating") { if (index($1, ", " here ",")) { h[++n] = $2 } else { o[++m] = $2 } }
        END { for (i = 1; i <= n; i++) printf "   round %d: %.0f against %.0f 2xx/s, ratio %.2f\n", i, h[i], o[i], (h[i] > o[i] ? h[i] / o[i] : o[i] / h[i]) }
    ' "$work/results.tsv"
fi

echo "== every request rendered afresh (ENROLL_USERS_PAGE_CACHE_MS=0)"
export ENROLL_USERS_PAGE_CACHE_MS=0
start_server
measure "uncached varied views"
measure "uncached search \"ove\" (broad)" "/users?q=ove"
measure "uncached search \"an\" (too short: not run)" "/users?q=an"
measure "uncached search \"grace hopper\"" "/users?q=grace+hopper"
measure "uncached search \"123\"" "/users?q=123"
measure "uncached search \"ove\" + Pending" "/users?q=ove&status=pending"
measure "uncached first page" /users
if [ -n "${BENCH_CLASSES:-}" ]; then
    while IFS=$'\t' read -r what count list; do
        urls_file="$work/kind.txt"
        tr ' ' '\n' <<<"$list" > "$urls_file"
        measure "uncached mix: $what ($count views)"
    done < "$work/urls.txt.kinds"
    urls_file="$work/urls.txt"
fi
unset ENROLL_USERS_PAGE_CACHE_MS
awk '/VmHWM/ { print $2 }' "/proc/$server/status" >> "$work/rss.txt"

echo
echo "| request ($engine, $users users) | 2xx/s | of /livez | p50 | p95 | p99 | non-2xx (503) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
while IFS=$'\t' read -r name rps p50 p95 p99 non2xx _; do
    printf '| %s | %.0f | %.2f%% | %.1f ms | %.1f ms | %.1f ms | %s |\n' \
        "$name" "$rps" "$(echo "100 * $rps / $livez" | bc -l)" "$p50" "$p95" "$p99" "$non2xx"
done < "$work/results.tsv"
echo
printf 'seed: %.0f s, database %.0f MB; server peak RSS %.1f MB; machine: %s cores, load %s\n' \
    "$seed_seconds" "$(echo "$size / 1048576" | bc -l)" \
    "$(sort -n "$work/rss.txt" | tail -1 | awk '{ print $1 / 1024 }')" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
grep -c "ran past its deadline\|refused an expensive read" "$work/enroll.log" | sed 's/^/deadline or admission log lines: /' || true
