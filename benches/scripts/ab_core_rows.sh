#!/usr/bin/env bash
# A/B of the compare runner's core rows (scheduler, mailbox, timers) between two builds of
# `compare`, alternating base, new, new, base per row in one run, so both see the same machine.
#
#   cargo build --release -p pinwheel-benches --bin compare   # at each of the two commits,
#   cp target/release/compare /tmp/compare-base               # copying the binary aside
#   benches/scripts/ab_core_rows.sh /tmp/compare-base /tmp/compare-new
#
# Prints `base|new ROW...` lines as `compare` prints them (pinwheel median, tokio median,
# ratio, context switches of each runtime).
set -euo pipefail
if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
    echo "usage: $0 BASE_COMPARE_BINARY NEW_COMPARE_BINARY (two builds of the compare bench)" >&2
    exit 2
fi
rows="spawn_many_local spawn_many_worker spawn_many_remote_idle yield_many ping_pong chained_spawn mailbox timeout_cancel sleep_fire timer_reset"
for name in $rows; do
    for which in base new new base; do
        bin=$1
        [ "$which" = new ] && bin=$2
        "$bin" "$name" 2>/dev/null | awk -v b="$which" -v n="$name" '$1 == n { print b, $0 }'
    done
done
