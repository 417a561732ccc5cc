"""SpMM in PyTorch on the matrices of bench/spmm.c: torch.sparse CSR x dense on the GPU, timed
with CUDA events, one JSON line per case with bench/spmm.c's fields and "impl": "torch"; with
--device cpu, on the CPU with --threads threads (torch.set_num_threads), the median wall time of
reps products, with bench/spmm_cpu.c's fields and cases.

    python3 bench/peers/spmm_torch.py [--reps 20] [--warmup 3] [--dtype f32|f64]
                                      [--cases all|large|small] [--seed 1] [--device cuda:0]
                                      [--threads 2]

The matrices are bench/spmm.c's, bit for bit (see the top of that file):
    rand64(key, i) = loom__rand64 of graphs/core/op.h (splitmix64's finaliser over a key and a counter)
    rowptr[i]      = floor(i E / N), i in [0, N]
    col[k]         = rand64(rand64(seed, 0), k) mod M
    val[k]         = 1 / (degree of k's row), rounded once to the dtype
    x[j]           = (rand64(rand64(seed, 1), j) >> 40) * 2^-24, j in [0, M F), row-major
The generator is loomrand.py's; whole arrays are computed at once, in chunks to bound the
temporaries. Cases: N = M = 1M, E = 20M with F = 64 and 128, and N = M = 2708, E = 10556, F = 16
(reps x 50), on a GPU; N = M = 100k, E = 2M with F = 64 and the Cora-sized case on the CPU
(bench/spmm_cpu.c's); "spmm" is A x and "spmm_t" A^T x (torch's transposed CSR, a CSC view). Without torch
or a GPU it prints one line {"case": "spmm", "impl": "torch", "skipped": ...} and exits 0.
"""

import argparse
import json
import sys

import numpy as np

import loomrand

_CHUNK = 1 << 23


def problem(n, m, e, f, dtype, seed):
    """rowptr (int32 [n + 1]), col (int32 [e]), val (dtype [e]) and x (dtype [m, f])."""
    kcol, kx = loomrand.rand64_int(seed, 0), loomrand.rand64_int(seed, 1)
    rowptr = (np.arange(n + 1, dtype=np.uint64) * np.uint64(e) // np.uint64(n)).astype(np.int32)
    col = loomrand.stream(kcol, e, lambda r: (r % np.uint64(m)).astype(np.int32), np.int32, _CHUNK)
    deg = np.diff(rowptr).astype(np.float64)
    with np.errstate(divide="ignore"):
        per_row = np.where(deg > 0, 1.0 / np.maximum(deg, 1.0), 0.0)
    val = np.repeat(per_row.astype(dtype), np.diff(rowptr))
    x = loomrand.stream(kx, m * f, loomrand.unit_f32, dtype, _CHUNK)
    return rowptr, col, val, x.reshape(m, f)


def time_ms(torch, fn, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    t0 = torch.cuda.Event(enable_timing=True)
    t1 = torch.cuda.Event(enable_timing=True)
    t0.record()
    for _ in range(reps):
        fn()
    t1.record()
    t1.synchronize()
    return t0.elapsed_time(t1) / reps


def time_cpu_ms(fn, warmup, reps):
    """The median wall time of reps calls, after warmup calls."""
    import time
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    ms.sort()
    return ms[len(ms) // 2]


def cpu_line(rec, n, m, e, f, dtype_name, reps, ms, y, threads):
    rec.update({"device": "cpu", "threads": threads, "dtype": dtype_name, "rows": n, "cols": m, "nnz": e,
                "features": f, "reps": reps, "ms": round(ms, 5), "gflops": round(2.0 * e * f / (ms * 1e-3) / 1e9, 3),
                "checksum": float(f"{y.double().sum().item():.10g}")})
    print(json.dumps(rec), flush=True)


def run_cpu(torch, args, npdt, tdt):
    """The CPU cases of bench/spmm_cpu.c: A x and A^T x, torch.sparse CSR (and its CSC view)."""
    torch.set_num_threads(args.threads)
    cases = []
    if args.cases != "small":
        cases += [(100000, 2000000, 64, args.reps)]
    if args.cases != "large":
        cases += [(2708, 10556, 16, args.reps * 50)]
    for n, e, f, reps in cases:
        rowptr, col, val, x = problem(n, n, e, f, npdt, args.seed)
        a = torch.sparse_csr_tensor(torch.from_numpy(rowptr), torch.from_numpy(col), torch.from_numpy(val),
                                    size=(n, n), dtype=tdt)
        xt = torch.from_numpy(x)
        for kase, mat, variant in (("spmm", a, "sparse_csr"), ("spmm_t", a.t(), "sparse_csc")):
            try:
                ms = time_cpu_ms(lambda: torch.sparse.mm(mat, xt), args.warmup, reps)
                y = torch.sparse.mm(mat, xt)
            except (RuntimeError, NotImplementedError) as err:
                print(json.dumps({"case": kase, "impl": "torch", "device": "cpu", "rows": n, "nnz": e, "features": f,
                                  "skipped": str(err).splitlines()[0]}), flush=True)
                continue
            cpu_line({"case": kase, "impl": "torch", "variant": variant}, n, n, e, f, args.dtype, reps, ms, y,
                     args.threads)
    return 0


def line(rec, n, m, e, f, dtype_name, reps, ms, y, copy_bps, device, gpu):
    es = 4 if dtype_name == "f32" else 8
    nbytes = (n + 1) * 4 + e * (4 + es) + n * f * es + e * f * es
    bps = nbytes / (ms * 1e-3)
    rec.update({"device": device, "gpu": gpu, "dtype": dtype_name, "rows": n, "cols": m, "nnz": e, "features": f,
                "reps": reps, "ms": round(ms, 5), "gflops": round(2.0 * e * f / (ms * 1e-3) / 1e9, 2),
                "bytes_per_s": float(f"{bps:.4g}"), "frac_of_copy": round(bps / copy_bps, 3) if copy_bps else 0.0,
                "checksum": float(f"{y.double().sum().item():.10g}")})
    print(json.dumps(rec), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--dtype", choices=("f32", "f64"), default="f32")
    ap.add_argument("--cases", choices=("all", "large", "small"), default="all")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (with --device cpu)")
    args = ap.parse_args()
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"case": "spmm", "impl": "torch", "skipped": f"no torch ({e})"}), flush=True)
        return 0
    npdt = np.float32 if args.dtype == "f32" else np.float64
    tdt = torch.float32 if args.dtype == "f32" else torch.float64
    if args.device == "cpu":
        return run_cpu(torch, args, npdt, tdt)
    if not torch.cuda.is_available():
        print(json.dumps({"case": "spmm", "impl": "torch", "skipped": "no CUDA device"}), flush=True)
        return 0
    dev = torch.device(args.device)
    gpu = torch.cuda.get_device_name(dev).replace('"', "")

    # the ceiling, as bench/spmm.c measures it: a 1 GiB device-to-device copy, bytes read + written
    nb = 1 << 30
    src = torch.zeros(nb, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    ms = time_ms(torch, lambda: dst.copy_(src), args.warmup, args.reps)
    copy_bps = 2.0 * nb / (ms * 1e-3)
    print(json.dumps({"case": "copy", "device": args.device, "gpu": gpu, "bytes": nb,
                      "reps": args.reps, "ms": round(ms, 4), "bytes_per_s": float(f"{copy_bps:.4g}")}), flush=True)
    del src, dst

    cases = []
    if args.cases != "small":
        cases += [(1000000, 20000000, 64, args.reps), (1000000, 20000000, 128, args.reps)]
    if args.cases != "large":
        cases += [(2708, 10556, 16, args.reps * 50)]
    for n, e, f, reps in cases:
        m = n
        rowptr, col, val, x = problem(n, m, e, f, npdt, args.seed)
        a = torch.sparse_csr_tensor(torch.from_numpy(rowptr).to(dev), torch.from_numpy(col).to(dev),
                                    torch.from_numpy(val).to(dev), size=(n, m), dtype=tdt, device=dev)
        xd = torch.from_numpy(x).to(dev)
        # the product as torch makes it (it allocates the output each time, from its cache)
        ms = time_ms(torch, lambda: torch.sparse.mm(a, xd), args.warmup, reps)
        y = torch.sparse.mm(a, xd)
        line({"case": "spmm", "impl": "torch", "variant": "sparse_csr"}, n, m, e, f, args.dtype, reps, ms, y,
             copy_bps, args.device, gpu)
        try:
            at = a.t()  # a CSC view of A^T
            ms = time_ms(torch, lambda: torch.sparse.mm(at, xd), args.warmup, reps)
            y = torch.sparse.mm(at, xd)
            line({"case": "spmm_t", "impl": "torch", "variant": "sparse_csc"}, n, m, e, f, args.dtype, reps, ms, y,
                 copy_bps, args.device, gpu)
        except (RuntimeError, NotImplementedError) as err:
            print(json.dumps({"case": "spmm_t", "impl": "torch", "rows": n, "cols": m, "nnz": e, "features": f,
                              "skipped": str(err).splitlines()[0]}), flush=True)
        del a, xd, y
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
