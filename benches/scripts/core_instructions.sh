#!/usr/bin/env bash
# User-space instructions per iteration of the core workloads on pinwheel, with task profiling
# off and on: `valgrind --tool=callgrind` over `core_instructions ROW N`, as the difference
# between N=3 and N=1 iterations divided by 2 (start-up and exit cancel out). One worker, so
# the count does not depend on which thread valgrind runs when.
#
# Usage: benches/scripts/core_instructions.sh [vs-tokio] [BINARY (default: build it, see below)]
#   vs-tokio: pinwheel (profiling off) and tokio side by side instead, one worker each, and
#   the geometric mean of the ratios over the ten rows.
# Installs nothing: says which Debian package to install when valgrind is missing.
#
# The binary is built in the release profile with one codegen unit (in target/cgu1), as the
# `bench` profile is: with the default 16 units, moving code between files changes how rustc
# splits the crate, and with it what gets inlined, by a few percent either way on rows whose
# code did not change (issue 24: yield_many +3.7% at 16 units, +0.0% at one, same code).
# CODEGEN_UNITS=16 measures the default split instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null 2>&1 || {
    echo "core_instructions.sh: needs valgrind (Debian package valgrind)" >&2
    exit 2
}
vs=
if [ "${1:-}" = vs-tokio ]; then
    vs=tokio
    shift
fi
bin=${1:-}
if [ -z "$bin" ]; then
    units=${CODEGEN_UNITS:-1}
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=$units CARGO_TARGET_DIR=target/cgu$units \
        cargo build --release -q -p pinwheel-benches --bin core_instructions
    bin=target/cgu$units/release/core_instructions
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ir() { # MODE ROW ITERS [RUNTIME] -> total instructions
    PINWHEEL_BENCH_PROFILING=$1 valgrind --tool=callgrind --callgrind-out-file="$tmp/out" \
        "$bin" "$2" "$3" 1 "${4:-pinwheel}" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    sed -n 's/^summary: //p' "$tmp/out"
}
rows="spawn_many_local spawn_many_worker spawn_many_remote_idle yield_many ping_pong chained_spawn mailbox timeout_cancel sleep_fire timer_reset"
if [ -n "$vs" ]; then
    logs=
    printf '%-24s %16s %16s %8s\n' row "pinwheel instr" "tokio instr" "pw/tk"
    for row in $rows; do
        pw=$(( ($(ir off "$row" 3) - $(ir off "$row" 1)) / 2 ))
        tk=$(( ($(ir off "$row" 3 tokio) - $(ir off "$row" 1 tokio)) / 2 ))
        ratio=$(awk -v a="$pw" -v b="$tk" 'BEGIN { print a / b }')
        printf '%-24s %16d %16d %8.4f\n' "$row" "$pw" "$tk" "$ratio"
        logs="$logs $ratio"
    done
    awk -v r="$logs" 'BEGIN { n = split(r, x, " "); for (i = 1; i <= n; i++) s += log(x[i]); printf "geometric mean of pinwheel/tokio: %.4f\n", exp(s / n) }'
    exit 0
fi
logs=
printf '%-24s %16s %16s %8s\n' row "off instr/iter" "on instr/iter" "on/off"
for row in $rows; do
    off=$(( ($(ir off "$row" 3) - $(ir off "$row" 1)) / 2 ))
    on=$(( ($(ir on "$row" 3) - $(ir on "$row" 1)) / 2 ))
    ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { print a / b }')
    printf '%-24s %16d %16d %8.4f\n' "$row" "$off" "$on" "$ratio"
    logs="$logs $ratio"
done
awk -v r="$logs" 'BEGIN { n = split(r, x, " "); for (i = 1; i <= n; i++) s += log(x[i]); printf "geometric mean of on/off: %.4f\n", exp(s / n) }'
