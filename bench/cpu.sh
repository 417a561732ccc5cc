#!/bin/bash
# Loom against PyG on the CPU, side by side: the same GCN (and GAT) training at equal thread counts, Loom and
# the peer interleaved REPEATS times (the machine may be shared: medians of interleaved runs), one
# JSON-lines file per program in OUTDIR, then the medians and ratios. See bench/README.md.
#
#     bench/cpu.sh OUTDIR
#
# Environment: LOOM_DATA (a directory holding cora.npz), LOOM_BUILD (default build), THREADS
# (default 2: Loom's --threads, torch.set_num_threads, OMP/OpenBLAS threads), REPEATS (3), EPOCHS
# and WARMUP (Cora 100 / 10; the synthetic graph a fifth of them), PYTHON (python3, with torch and
# torch_geometric). Cases: Cora with dropout 0.5 and 0; GAT on Cora (PyG's recipe, dropout 0.6);
# the 100k-node, 2M-edge synthetic graph on cpu:0 with THREADS threads and with one, against
# cpu:0-THREADS-1 with one thread per device (data parallel), and PyG; then SpMM (bench/spmm_cpu
# against spmm_torch.py --device cpu, THREADS each); then the CNNs (bench/cnn on cpu:0 against
# cnn_torch.py --device cpu, eager; CNN=0 leaves them out, CNN_STEPS (default 10) sets the steps
# timed).
set -uo pipefail

out=${1:?usage: bench/cpu.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 1
build=${LOOM_BUILD:-$root/build}
py=${PYTHON:-python3}
th=${THREADS:-2}
reps=${REPEATS:-3}
epochs=${EPOCHS:-100}
warmup=${WARMUP:-10}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=$th OPENBLAS_NUM_THREADS=$th MKL_NUM_THREADS=$th
failed=0
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

cmake --build "$build" --target bench_gcn bench_spmm_cpu bench_cnn >"$out/build.log" 2>&1 || { note "build failed: $out/build.log"; exit 1; }
rm -f "$out"/*.jsonl "$out"/*.log
gcn=("$build/bench/gcn" --executor actors)
pyg=("$py" "$root/bench/peers/gcn_pyg.py" --device cpu --threads "$th")
syn=(--graph synthetic --nodes 100000 --edges 2000000 --features 64 --hidden 128 --classes 16
     --epochs $((epochs / 5 > 0 ? epochs / 5 : 1)) --warmup $((warmup / 5 > 0 ? warmup / 5 : 1)))
last=$((th - 1))
for r in $(seq "$reps"); do
    note "repeat $r of $reps"
    for p in 0.5 0; do
        run loom "${gcn[@]}" --graph cora --epochs "$epochs" --warmup "$warmup" --threads "$th" --dropout "$p"
        run pyg "${pyg[@]}" --graph cora --epochs "$epochs" --warmup "$warmup" --dropout "$p"
    done
    run loom "${gcn[@]}" --model gat --graph cora --epochs "$epochs" --warmup "$warmup" --threads "$th"
    run pyg "${pyg[@]}" --model gat --graph cora --epochs "$epochs" --warmup "$warmup"
    run loom "${gcn[@]}" "${syn[@]}" --placement cpu:0 --threads "$th"
    if [ "$th" -gt 1 ]; then
        run loom "${gcn[@]}" "${syn[@]}" --placement cpu:0 --threads 1
        run loom "${gcn[@]}" "${syn[@]}" --placement "cpu:0-$last" --threads 1
    fi
    run pyg "${pyg[@]}" "${syn[@]}"
    run spmm_loom "$build/bench/spmm_cpu" --threads "$th"
    run spmm_torch "$py" "$root/bench/peers/spmm_torch.py" --device cpu --threads "$th"
    if [ "${CNN:-1}" = 1 ]; then
        cs=${CNN_STEPS:-10}
        run cnn_loom "$build/bench/cnn" --placement cpu:0 --threads "$th" --steps "$cs" --warmup 2
        run cnn_torch "$py" "$root/bench/peers/cnn_torch.py" --device cpu --variants eager --steps "$cs" --warmup 2
    fi
done

"$py" - "$out"/*.jsonl <<'PY' | tee "$out/summary.txt"
import json, statistics, sys
runs, spmm, cnn = {}, {}, {}
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        if r.get("case") == "cnn":
            if "images_per_s" in r:
                cnn.setdefault((r["model"], r["impl"]), []).append(r["images_per_s"])
            else:
                print("failed:", line.strip())
            continue
        if r.get("case", "").startswith("spmm") and "ms" in r:
            spmm.setdefault((r["case"], r["rows"], r["nnz"], r["features"], r["impl"]), []).append(r["ms"])
            continue
        if "ms_per_epoch" not in r:
            print("failed:", line.strip()); continue
        case = r["case"] if r.get("model", "gcn") == "gcn" else f'{r["case"]}/{r["model"]}'
        key = (case, float(r.get("dropout", 0.5)), r["impl"], r["device"], r.get("threads"))
        runs.setdefault(key, []).append(r["ms_per_epoch"])
med = {k: statistics.median(v) for k, v in runs.items()}
for k in sorted(med, key=str):
    print(f"{k[0]:9} dropout {k[1]:<3} {k[2]:4} {k[3]:7} threads {k[4]}: median {med[k]:9.3f} ms/epoch over {len(runs[k])} runs")
for (case, p, impl, dev, th), ms in sorted(med.items(), key=str):
    if impl != "loom":
        continue
    for (c2, p2, i2, d2, t2), ms2 in med.items():
        if (c2, p2, i2) == (case, p, "pyg"):
            print(f"speedup {case} dropout {p} loom {dev} threads {th} vs pyg threads {t2}: {ms2 / ms:.2f}x")
        if (c2, p2, i2, d2) == (case, p, "loom", "cpu:0") and dev != "cpu:0":
            print(f"speedup {case} loom {dev} threads {th} vs cpu:0 threads {t2}: {ms2 / ms:.2f}x")
smed = {k: statistics.median(v) for k, v in spmm.items()}
for (kase, n, e, f, impl), ms in sorted(smed.items()):
    if impl == "loom" and (kase, n, e, f, "torch") in smed:
        print(f"{kase} {n} rows {e} nonzeros {f} features: loom {ms:.3f} ms, torch {smed[(kase, n, e, f, 'torch')]:.3f} ms, "
              f"speedup {smed[(kase, n, e, f, 'torch')] / ms:.2f}x")
cmed = {k: statistics.median(v) for k, v in cnn.items()}
for (model, impl), ips in sorted(cmed.items()):
    if impl == "loom" and (model, "torch") in cmed:
        print(f"cnn {model}: loom {ips:.0f} images/s, torch eager {cmed[(model, 'torch')]:.0f} images/s, "
              f"speedup {ips / cmed[(model, 'torch')]:.2f}x")
PY
exit $failed
