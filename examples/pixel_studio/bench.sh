#!/usr/bin/env bash
# The README's load figures: one cached read route of pixel_studio under
# `loadgen`, with caching off (the oracle computing the same path from
# SQLite), the in-memory cache, Redis, and the local tier in front of
# Redis. Everything on loopback; needs redis-server on PATH.
#
#   examples/pixel_studio/bench.sh                 # 10 s per configuration
#   DURATION=5s CONCURRENCY=16 examples/pixel_studio/bench.sh
set -euo pipefail

DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-32}
ROUTE=${ROUTE:-/users/1/profile?page=1&page_size=10}

cd "$(dirname "$0")/../.."
cargo build --release -p pixel_studio --bins
bin=${CARGO_TARGET_DIR:-target}/release

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.05
done

# Starts the app on CACHE_URL=$1 with a fresh database; sets $app_url.
start_app() {
    local db="$work/db-$RANDOM.sqlite"
    PIXEL_STUDIO_ADDR=127.0.0.1:0 PIXEL_STUDIO_DB="$db" CACHE_URL="$1" RUST_LOG=error \
        "$bin/pixel_studio" >"$work/app.out" 2>"$work/app.err" &
    app_pid=$!
    pids+=("$app_pid")
    app_url=
    for _ in $(seq 200); do
        app_url=$(sed -n 's/^listening on //p' "$work/app.out" | head -n 1)
        [ -n "$app_url" ] && break
        sleep 0.05
    done
    [ -n "$app_url" ] || { cat "$work/app.err"; echo "the app did not start" >&2; exit 1; }
    # Seed the world (users 1..8 with sets, likes, follows) with a short
    # checker run; its verdict is printed, not required (exit 2: no run).
    local rc=0
    "$bin/freshness_check" --instance "$app_url" --duration 1s --clients 4 >"$work/check.out" || rc=$?
    [ "$rc" -le 1 ] || { cat "$work/check.out"; exit 1; }
    echo "  (seeded; checker: $(head -n 1 "$work/check.out"))"
}

stop_app() {
    kill "$app_pid" 2>/dev/null || true
    wait "$app_pid" 2>/dev/null || true
}

measure() {
    local name=$1
    shift
    printf '%-28s ' "$name"
    "$bin/loadgen" --duration "$DURATION" --concurrency "$CONCURRENCY" "$@"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "route: GET $ROUTE, concurrency $CONCURRENCY, $DURATION each"

start_app "memory://"
measure "caching off (oracle)" --url "$app_url/db/snapshot" --body "{\"paths\":[\"$ROUTE\"]}"
measure "in-memory cache" --url "$app_url$ROUTE"
stop_app

redis-cli -p "$redis_port" flushall >/dev/null
start_app "redis://127.0.0.1:$redis_port"
measure "Redis" --url "$app_url$ROUTE"
stop_app

redis-cli -p "$redis_port" flushall >/dev/null
start_app "redis://127.0.0.1:$redis_port?local_capacity=10000"
measure "local tier + Redis" --url "$app_url$ROUTE"
stop_app
