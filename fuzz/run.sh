#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation and AddressSanitizer on the
# stable toolchain (RUSTC_BOOTSTRAP, the flags cargo-fuzz passes), and runs each for SECONDS
# (default 30). A crash fails the run and leaves its input in fuzz/artifacts/TARGET/; copy it
# to fuzz/regressions/TARGET/ so that every later run replays it first.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      (targets: timer_wheel task_state h1)
#
# With cargo-fuzz installed, `cargo fuzz run TARGET` (from the project root) works too.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(timer_wheel task_state h1)
triple=x86_64-unknown-linux-gnu
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares -Zsanitizer=address --cfg pinwheel_no_pools"
export CARGO_TARGET_DIR="$PWD/target"
cargo build --release --target "$triple" --bins
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "regressions/$t"
    bin="target/$triple/release/$t"
    if compgen -G "regressions/$t/*" > /dev/null; then
        echo "== $t: replaying regressions/$t"
        "$bin" regressions/$t/*
    fi
    echo "== $t: fuzzing for ${secs}s"
    # Seeds (fuzz/seeds/TARGET, when there are any) start it from valid inputs.
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="artifacts/$t/" "corpus/$t" "${seeds[@]}"
done
