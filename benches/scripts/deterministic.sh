#!/usr/bin/env bash
# Server-side figures that do not wobble with what else the machine runs, for the network rows
# (tcp_echo, tcp_echo_1k, http_hello): each server alone in its process (`net_server`), the
# load generator in another (`net_load`).
#
#   - system calls per round trip: `strace -f -c` on the server process;
#   - user-space instructions per round trip: `valgrind --tool=callgrind` on the server
#     process, as the difference between a run of 3 iterations and one of 1 (so start-up,
#     connection set-up and exit cancel out): 2 x 64 connections x 200 round trips.
#
# Usage: benches/scripts/deterministic.sh [WORKERS (default 2)] [RUNTIMES (default "pinwheel tokio tokio-tpc")]
# Installs nothing: it says which Debian package to install when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "deterministic.sh: needs $1 (Debian package $2: apt-get install $2)" >&2
        exit 2
    }
}
need strace strace
need valgrind valgrind

workers=${1:-2}
runtimes=${2:-pinwheel tokio tokio-tpc}
cargo build --release -q -p pinwheel-benches --bin net_server --bin net_load
bin=target/release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs `net_server ROW RUNTIME` under the wrapper command given after `--`, drives it with
# ITERS iterations, closes its stdin and waits for it. Prints net_load's line.
serve_and_load() {
    local row=$1 runtime=$2 iters=$3
    shift 4
    rm -f "$tmp/in" "$tmp/out"
    mkfifo "$tmp/in"
    "$@" "$bin/net_server" "$row" "$runtime" --workers "$workers" <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
    local pid=$!
    exec 3>"$tmp/in"
    local addr=""
    for _ in $(seq 1 600); do
        addr=$(sed -n 's/^listening //p' "$tmp/out" 2>/dev/null || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    if [ -z "$addr" ]; then
        echo "deterministic.sh: the $runtime server did not start:" >&2
        cat "$tmp/err" >&2
        exit 1
    fi
    local out=""
    if [ "$iters" -gt 0 ]; then
        out=$("$bin/net_load" "$addr" "$row" "$iters")
    fi
    exec 3>&-
    wait "$pid"
    echo "$out"
}

printf '# %s workers; server process only; %s\n' "$workers" "$(date -u +%Y-%m-%d)"
printf '%-12s %-10s %14s %16s\n' row runtime syscalls/rt instructions/rt
for row in tcp_echo tcp_echo_1k http_hello; do
    for rt in $runtimes; do
        # System calls: one run of 5 iterations (64,000 round trips).
        serve_and_load "$row" "$rt" 5 -- strace -f -c -o "$tmp/strace" >/dev/null
        calls=$(awk '$NF == "total" { print $(NF-2) }' "$tmp/strace")
        sc=$(awk -v c="$calls" 'BEGIN { printf "%.2f", c / (5 * 64 * 200) }')
        # Instructions: 3 iterations minus 1 iteration.
        serve_and_load "$row" "$rt" 1 -- valgrind --tool=callgrind --callgrind-out-file="$tmp/cg1" >/dev/null 2>&1
        serve_and_load "$row" "$rt" 3 -- valgrind --tool=callgrind --callgrind-out-file="$tmp/cg3" >/dev/null 2>&1
        i1=$(awk '/^totals:/ { print $2 }' "$tmp/cg1")
        i3=$(awk '/^totals:/ { print $2 }' "$tmp/cg3")
        ir=$(awk -v a="$i1" -v b="$i3" 'BEGIN { printf "%.0f", (b - a) / (2 * 64 * 200) }')
        printf '%-12s %-10s %14s %16s\n' "$row" "$rt" "$sc" "$ir"
    done
done
