"""Ratios of Loom against its peers from the JSON lines of one side-by-side run.

    python3 bench/peers/compare.py OUTDIR/*.jsonl

Every line with "impl" is a measurement; Loom's lines ("impl": "loom") are paired with each peer
line of the same case and sizes. A speed ratio is peer time / Loom time (above 1: Loom is faster);
the memory ratio is Loom's plan_bytes (its static plan's total, or peak_bytes where a benchmark
measures one) over the peer's peak_bytes (torch.cuda.max_memory_allocated). Only Loom's actor
executor is compared; its other executors are listed for reference. A pair on different devices
is shown but marked, since a ratio means something only on the same GPU in the same run.
"""

import json
import sys

# what makes two lines the same work; those a line lacks are not compared
KEYS = ("case", "nodes", "edges", "features", "hidden", "heads", "classes", "train_rows", "epochs",
        "rows", "cols", "nnz", "m", "n", "k", "dtype", "bench", "sampler", "events", "model", "batch", "math")
# the time of a line: the first of these it has
TIMES = ("ms_per_epoch", "ms_per_iter", "step_ms", "ms")


def read(paths):
    lines = []
    for p in paths:
        with open(p) as f:
            for no, text in enumerate(f, 1):
                text = text.strip()
                if not text.startswith("{"):
                    continue
                try:
                    rec = json.loads(text)
                except json.JSONDecodeError as e:
                    print(f"compare: {p}:{no}: not JSON ({e}); skipped", file=sys.stderr)
                    continue
                if "impl" in rec or "skipped" in rec:
                    rec["_file"] = p
                    lines.append(rec)
    return lines


def time_of(r):
    for k in TIMES:
        if r.get(k) is not None:
            return float(r[k])
    return None


def mem_of(r):
    for k in ("peak_bytes", "plan_bytes", "plan_peak_bytes"):
        if r.get(k) is not None:
            return float(r[k])
    return None


def same_work(a, b):
    return (all(a[k] == b[k] for k in KEYS if k in a and k in b) and a.get("case") == b.get("case")
            and a.get("bench") == b.get("bench"))


def case_of(r):
    """A line's case: its "case", or its benchmark and sampler (bench/balance.c, peers/in_pyg.py)."""
    return r.get("case") or "/".join(str(r[k]) for k in ("bench", "sampler") if r.get(k) is not None) or "?"


def variant(r):
    """What distinguishes lines of one impl: the executor, the adjacency form."""
    return "/".join(str(r[k]) for k in ("executor", "adj", "variant") if r.get(k) is not None) or "-"


def size(r):
    return " ".join(f"{k}={r[k]}" for k in KEYS[1:] if k in r and k not in ("train_rows", "epochs"))


def fmt_ms(t):
    return "-" if t is None else f"{t:.3f}"


def fmt_gb(b):
    return "-" if b is None else f"{b / 1e9:.2f}"


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    lines = read(argv[1:])
    skipped = [r for r in lines if "skipped" in r]
    lines = [r for r in lines if "skipped" not in r and "impl" in r]
    loom = [r for r in lines if r["impl"] == "loom"]
    peers = [r for r in lines if r["impl"] != "loom"]
    rows = []
    for p in peers:
        mine = [r for r in loom if same_work(r, p) and r.get("executor", "actors") == "actors"]
        if not mine:
            rows.append((p, None))
        for r in mine:
            rows.append((p, r))
    head = ("case", "size", "peer", "loom", "peer ms", "loom ms", "speedup", "peer GB", "loom GB", "mem ratio", "note")
    table = []
    for p, r in rows:
        tp, tl = time_of(p), time_of(r) if r else None
        mp, ml = mem_of(p), mem_of(r) if r else None
        notes = []
        if p.get("oom"):
            notes.append("peer out of memory")
        elif p.get("error"):
            notes.append("peer failed: " + str(p["error"])[:60])
        if r is not None and r.get("oom"):
            notes.append("loom out of memory")
        if r is not None and r.get("error") and not r.get("oom"):
            notes.append("loom failed: " + str(r["error"])[:60])
        if r is None:
            notes.append("no loom line")
        elif r.get("device") != p.get("device"):
            notes.append(f"devices differ ({r.get('device')} vs {p.get('device')})")
        speed = f"{tp / tl:.2f}x" if tp and tl else "-"
        mem = f"{ml / mp:.2f}" if mp and ml else "-"
        table.append((case_of(p), size(p), f"{p['impl']}/{variant(p)}", variant(r) if r else "-",
                      fmt_ms(tp), fmt_ms(tl), speed,
                      fmt_gb(mp), fmt_gb(ml), mem, "; ".join(notes)))
    others = [r for r in loom if r.get("executor", "actors") != "actors" or not any(same_work(r, p) for p in peers)]
    for r in others:
        table.append((case_of(r), size(r), "-", variant(r), "-", fmt_ms(time_of(r)), "-", "-",
                      fmt_gb(mem_of(r)), "-", "loom only" + (": out of memory" if r.get("oom") else
                                                           ": failed: " + str(r["error"])[:60] if r.get("error") else "")))
    for r in skipped:
        print(f"compare: skipped in {r['_file']}: {r.get('case', '?')} {r.get('impl', '')}: {r['skipped']}",
              file=sys.stderr)
    if not table:
        print("compare: no measurements found in " + ", ".join(argv[1:]), file=sys.stderr)
        return 1
    widths = [max(len(str(row[i])) for row in [head] + table) for i in range(len(head))]
    for row in [head, tuple("-" * w for w in widths)] + table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    print("\nspeedup = peer ms / loom ms (above 1: Loom faster); mem ratio = loom plan (or peak) bytes / peer peak bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
