#!/bin/bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each from its seed corpus.
#   scripts/fuzz.sh                 every target, 1,000,000 executions each
#   scripts/fuzz.sh -runs=20000     every target, a short run (CI)
#   scripts/fuzz.sh npz -max_total_time=600
# Seeds live in tests/fuzz/corpus/<name>/ and are only read; new inputs go to build-fuzz/corpus/.
set -euo pipefail
cd "$(dirname "$0")/.."
only=""
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then only=$1; shift; fi
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-runs=1000000)
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DLOOM_FUZZ=ON -DLOOM_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    short=${name#fuzz_}
    [ -z "$only" ] || [ "$only" = "$short" ] || continue
    mkdir -p "build-fuzz/corpus/$short"
    echo "fuzz: $short ${args[*]}"
    start=$(date +%s)
    log="build-fuzz/$short.log"
    if ! "build-fuzz/tests/$name" "${args[@]}" -print_final_stats=1 "build-fuzz/corpus/$short" \
        "tests/fuzz/corpus/$short" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $short FAILED (log: $log)"
        exit 1
    fi
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log" || true
    echo "fuzz: $short ok in $(($(date +%s) - start)) s"
done
