#!/usr/bin/env bash
# Real HTTP clients against the http_hello server of each runtime (`net_server http_hello`:
# hyper's HTTP/1.1 hello world, the same handler on pinwheel's net::serve and on tokio):
# wrk and h2load (in HTTP/1.1 mode), 64 connections, 10 s, three runs each; requests per second
# and p99 latency.
#
# Usage: benches/scripts/http_clients.sh [WORKERS (default 2)] [SECONDS (default 10)] [RUNS (default 3)]
# Installs nothing: it says which Debian package to install when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "http_clients.sh: needs $1 (Debian package $2: apt-get install $2)" >&2
        exit 2
    }
}
need wrk wrk
need h2load nghttp2-client

workers=${1:-2}
secs=${2:-10}
runs=${3:-3}
cargo build --release -q -p pinwheel-benches --bin net_server
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT

start() {
    rm -f "$tmp/in" "$tmp/out"
    mkfifo "$tmp/in"
    target/release/net_server http_hello "$1" --workers "$workers" <"$tmp/in" >"$tmp/out" &
    pid=$!
    exec 3>"$tmp/in"
    addr=""
    for _ in $(seq 1 100); do
        addr=$(sed -n 's/^listening //p' "$tmp/out" 2>/dev/null || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "http_clients.sh: the $1 server did not start" >&2; exit 1; }
}

stop() {
    exec 3>&-
    wait "$pid"
    pid=""
}

printf '# http_hello, %s workers, 64 connections, %s s per run, %s\n' "$workers" "$secs" "$(date -u +%Y-%m-%d)"
printf '%-8s %-9s %4s %12s %10s\n' client runtime run req/s p99
for rt in pinwheel tokio; do
    start "$rt"
    for run in $(seq 1 "$runs"); do
        out=$(wrk -t1 -c64 -d"${secs}s" --latency "http://$addr/")
        rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
        p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
        printf '%-8s %-9s %4s %12s %10s\n' wrk "$rt" "$run" "$rps" "$p99"
    done
    for run in $(seq 1 "$runs"); do
        rm -f "$tmp/h2log"
        out=$(h2load --h1 -t1 -c64 -D"$secs" --log-file="$tmp/h2log" "http://$addr/")
        rps=$(echo "$out" | awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i ~ /req\/s/) print $(i-1) }' | tr -d ',')
        # The log's third column is each request's time in microseconds.
        p99=$(sort -n -k3 "$tmp/h2log" | awk '{ t[NR] = $3 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2fms", t[i] / 1000 }')
        printf '%-8s %-9s %4s %12s %10s\n' h2load "$rt" "$run" "$rps" "$p99"
    done
    stop
done
