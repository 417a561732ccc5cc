#!/bin/bash
# Loom against its peers, side by side on one GPU machine: builds Loom with CUDA, runs each Loom
# benchmark and its peer script on the same GPU, one JSON-lines file per run in OUTDIR, then prints
# the ratios (bench/peers/compare.py). See bench/README.md.
#
#     bench/gpu.sh OUTDIR
#
# Environment: LOOM_DATA (a directory holding cora.npz; default ./shared/data or ../shared/data when
# there), LOOM_GPU_ENV (a script to source first, e.g. one that puts concurrencykit and Check where
# the build finds them on a machine without their packages), LOOM_BUILD (default
# /tmp/b), EPOCHS and WARMUP (default 200 and 20), PYTHON (default python3), LARGE=1 (adds the 2M-node,
# 100M-edge, 128-feature graph), QUICK=1 (a few epochs on a small synthetic graph: checks the
# script, not the speed), BALANCE=0 (leaves out the event-graph samplers), CNN=0 (leaves out the CNNs).
set -uo pipefail

out=${1:?usage: bench/gpu.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 1
build=${LOOM_BUILD:-/tmp/b}
py=${PYTHON:-python3}
epochs=${EPOCHS:-200}
warmup=${WARMUP:-20}
syn=(--nodes 1000000 --edges 20000000 --features 64 --hidden 128 --classes 16)
if [ "${QUICK:-0}" = 1 ]; then
    epochs=5 warmup=2 syn=(--nodes 20000 --edges 200000 --features 16 --hidden 32 --classes 4)
fi
export PYTHONUNBUFFERED=1
# never NVLink multicast on the shared GPU machines (one GPU here, but a library may still try it)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
if [ -n "${LOOM_GPU_ENV:-}" ]; then
    # shellcheck disable=SC1090
    . "$LOOM_GPU_ENV" || { echo "gpu.sh: sourcing $LOOM_GPU_ENV failed" >&2; exit 1; }
fi
failed=0
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
find_data
run_detail=1 # a failed run's note gives its exit status and the end of its log

# The benchmarks and the CLI only: a warning in a test that only -O3 sees must not stop the run.
note "build: $build"
cmake -S "$root" -B "$build" -DLOOM_CUDA=ON -DCMAKE_BUILD_TYPE=Release >"$out/build.log" 2>&1 || {
    tail -n 30 "$out/build.log" >&2; note "configure failed: $out/build.log"; exit 1; }
targets=(loom-cli bench_gcn bench_balance bench_cnn)
# (grep without -q reads to the end: an early exit would break make's pipe and fail the test)
cmake --build "$build" --target help 2>/dev/null | grep ' bench_spmm$' >/dev/null && targets+=(bench_spmm)
cmake --build "$build" -j16 --target "${targets[@]}" >>"$out/build.log" 2>&1 || {
    tail -n 30 "$out/build.log" >&2; note "build failed: $out/build.log"; exit 1; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; "$build/loom" info; git -C "$root" rev-parse HEAD; } \
    >"$out/machine.txt" 2>&1
rm -f "$out"/*.jsonl "$out"/gcn_*.log "$out"/gat_*.log "$out"/spmm_*.log "$out"/balance_*.log

gcn=("$build/bench/gcn" --placement cuda:0 --executor actors --epochs "$epochs" --warmup "$warmup")
pyg=("$py" "$root/bench/peers/gcn_pyg.py" --epochs "$epochs" --warmup "$warmup")
run gcn_cora_loom "${gcn[@]}" --graph cora
run gcn_cora_pyg "${pyg[@]}" --graph cora
run gcn_cora_pyg "${pyg[@]}" --graph cora --edge-index
run gat_cora_loom "${gcn[@]}" --model gat --graph cora
run gat_cora_pyg "${pyg[@]}" --model gat --graph cora
run gcn_synthetic_loom "${gcn[@]}" --graph synthetic "${syn[@]}"
run gcn_synthetic_pyg "${pyg[@]}" --graph synthetic "${syn[@]}"
run gcn_synthetic_pyg "${pyg[@]}" --graph synthetic "${syn[@]}" --edge-index

if [ "${LARGE:-0}" = 1 ]; then
    big=(--nodes 2000000 --edges 100000000 --features 128 --hidden 128 --classes 16)
    run gcn_large_loom "${gcn[@]}" --graph synthetic "${big[@]}"
    run gcn_large_pyg "${pyg[@]}" --graph synthetic "${big[@]}"
    run gcn_large_pyg "${pyg[@]}" --graph synthetic "${big[@]}" --edge-index
fi

# SpMM, where its benchmark and peer exist: their own defaults, and the GPU when the benchmark
# takes --placement
if [ -x "$build/bench/spmm" ] && [ -f "$root/bench/peers/spmm_torch.py" ]; then
    spmm=("$build/bench/spmm")
    "$build/bench/spmm" --help 2>&1 | grep -- --placement >/dev/null && spmm+=(--placement cuda:0)
    run spmm_loom "${spmm[@]}"
    run spmm_torch "$py" "$root/bench/peers/spmm_torch.py"
else
    note "spmm: no $build/bench/spmm or bench/peers/spmm_torch.py yet; skipped"
fi

# CNNs: LeNet-5, the ConvNet and ResNet-20, the batch on the device; the peer eager and compiled;
# f32 on FMA math on both sides, then TF32
if [ "${CNN:-1}" = 1 ]; then
    cnnargs=()
    [ "${QUICK:-0}" = 1 ] && cnnargs=(--steps 5 --warmup 2)
    run cnn_loom "$build/bench/cnn" --placement cuda:0 "${cnnargs[@]}"
    run cnn_torch "$py" "$root/bench/peers/cnn_torch.py" "${cnnargs[@]}"
    # the same in TF32 (PyTorch's default for convolutions, not for matrix products)
    run cnn_loom "$build/bench/cnn" --placement cuda:0 --matmul tf32 "${cnnargs[@]}"
    run cnn_torch "$py" "$root/bench/peers/cnn_torch.py" --tf32 "${cnnargs[@]}"
fi

# Event graphs: the interaction network per sampler on generated events, and the PyG peer on the
# same events and the same steps (BALANCE_ARGS adds bench/balance options, e.g. --epochs 1)
if [ "${BALANCE:-1}" = 1 ]; then
    mkdir -p "$out/events"
    bal=("$build/bench/balance" --placements cuda:0 --write-events "$out/events" --write-steps "$out/events/steps.jsonl")
    [ "${QUICK:-0}" = 1 ] && bal+=(--events 100 --test-events 20 --epochs 1 --samplers random,balance)
    # shellcheck disable=SC2086
    run balance_loom "${bal[@]}" ${BALANCE_ARGS:-}
    run balance_pyg "$py" "$root/bench/peers/in_pyg.py" --events "$out/events" --steps "$out/events/steps.jsonl"
fi

"$py" "$root/bench/peers/compare.py" "$out"/*.jsonl | tee "$out/summary.txt"
exit $failed
