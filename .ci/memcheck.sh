#!/usr/bin/env bash
# valgrind memcheck over the stress test binary (tests/tests/rt_stress.rs: rings of wakes
# across workers, masks, aborts): any invalid access, or a definite leak, fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind > /dev/null; then
    echo "memcheck: valgrind is not installed (Debian package valgrind)" >&2
    exit 1
fi
bin=$(cargo test -q -p pinwheel-tests --test rt_stress --no-run --message-format=json \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "rt_stress":
        print(m["executable"])')
echo "memcheck: $bin"
PINWHEEL_TASK_POOLS=off valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
    "$bin" --test-threads=1
