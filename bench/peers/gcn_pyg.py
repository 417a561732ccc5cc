"""The peer of bench/gcn.c: the same GCN or GAT training in PyTorch Geometric, timed the same way.

    python3 bench/peers/gcn_pyg.py [--model gcn|gat] --graph cora|synthetic [--edge-index] [--epochs 200]
        [--warmup 20] [--nodes 1000000 --edges 20000000 --features 64 --hidden 128 --heads 8 --classes 16
        --seed 0] [--device cuda] [--cached]

gcn (the default) is loom_nn_gcn's model: dropout 0.5 on the input, GCNConv(hidden) (normalize,
self loops, bias), relu, dropout 0.5, GCNConv(classes); Adam lr 0.01. gat is loom_nn_gat's, PyG's
GAT example: dropout 0.6, GATConv(hidden, heads 8, dropout 0.6 on the attention), ELU, dropout
0.6, GATConv(classes, one head, concat=False, dropout 0.6); GATConv's self loops (remove, then one
per node, as loom_csr_edges makes them); always edge_index; hidden 8 unless --hidden; Adam lr 0.005
with weight decay 5e-4 on every parameter on Cora. float32; full-batch cross-entropy.

- cora: $LOOM_DATA/cora.npz read as data/citation.c reads it (bench/peers/cora.py: symmetrised
  adjacency without self loops, row-normalised features), the loss over the 140 training rows of
  loom_split_per_class(20 per class, seed 0), the same rows as bench/gcn; weight decay 5e-4 on
  the first layer only, as in PyG's example and bench/gcn; hidden 16 unless --hidden.
- synthetic: loom_synthetic_graph's graph, made bit for bit by bench/peers/synthetic.py; the loss
  over every node; no weight decay.

The adjacency is a torch sparse CSR adj_t (row = target, column = source: Loom's CSR), PyG's
sparse path; with --edge-index it is edge_index [2, E] and PyG's default message passing (which
adds self loops only where a node has none, where the sparse path and Loom add one to each node;
a uniform random graph has about E / N self loops, too few to change a timing). GCNConv is not
cached unless --cached: Loom computes the degree normalisation in every step too.

Timing: the warm-up epochs, then torch.cuda.synchronize(), N epochs with no host synchronisation
inside (no .item(), so the GPU queue stays full), torch.cuda.synchronize(); ms_per_epoch is the
total over N. peak_bytes is torch.cuda.max_memory_allocated over the run, counted from the moment
the graph and features were on the device (the graph's construction there is not counted;
the resident graph is). An out-of-memory error gives a line with "oom": true. One JSON line per
run on stdout; progress on stderr.
"""

import argparse
import gc
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cora as cora_data  # noqa: E402
import synthetic  # noqa: E402


def log(*a):
    print("gcn_pyg:", *a, file=sys.stderr, flush=True)


def build_model(torch, conv1, conv2, act, dropout):
    """dropout, conv1, act, dropout, conv2: the GCN and the GAT alike."""
    F = torch.nn.functional

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = conv1, conv2

        def forward(self, x, adj):
            x = F.dropout(x, p=dropout, training=self.training)
            x = act(self.conv1(x, adj))
            x = F.dropout(x, p=dropout, training=self.training)
            return self.conv2(x, adj)

    return Net()


def to_device(torch, a, device, dtype=None):
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.to(device=device, dtype=dtype) if dtype is not None else t.to(device)


def adjacency(torch, args, device, n, src, dst):
    """adj_t as torch sparse CSR (rows = destinations, in edge order), or edge_index [2, E]."""
    src = to_device(torch, src, device, torch.int64)
    dst = to_device(torch, dst, device, torch.int64)
    if args.edge_index:
        return torch.stack([src, dst])
    # a stable sort by destination: each row's entries in edge order, as loom_synthetic_graph has them
    dst_sorted, order = torch.sort(dst, stable=True)
    col = src[order]
    del src, order
    rowptr = torch.zeros(n + 1, dtype=torch.int64, device=device)
    rowptr[1:] = torch.cumsum(torch.bincount(dst_sorted, minlength=n), 0)
    del dst_sorted, dst
    values = torch.ones(col.numel(), dtype=torch.float32, device=device)
    return torch.sparse_csr_tensor(rowptr, col, values, size=(n, n), check_invariants=False)


def load_graph(args):
    """Host arrays: n, src, dst, x, y, the training rows (None: all) and the first layer's weight decay."""
    if args.graph == "cora":
        d = cora_data.load()
        rows = np.repeat(np.arange(d["nodes"], dtype=np.int64), np.diff(d["rowptr"]))
        train, _, _ = cora_data.split_per_class(d["y"], d["classes"], 20, 500, 1000, seed=0)
        # entry (row r, column c) of Loom's CSR is the edge c -> r
        return d["nodes"], d["col"], rows, d["x"], d["y"], np.nonzero(train)[0], 5e-4
    t0 = time.perf_counter()
    g = synthetic.graph(args.nodes, args.edges, args.features, args.classes, args.seed)
    log(f"synthetic graph {args.nodes} nodes, {args.edges} edges made in {time.perf_counter() - t0:.1f} s")
    ei = g["edge_index"]
    return args.nodes, ei[0], ei[1], g["x"], g["y"], None, 0.0


def run(args):
    import warnings

    import torch
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
    from torch_geometric.nn import GATConv, GCNConv
    import torch_geometric

    torch.manual_seed(args.seed)
    if args.threads > 0:  # intra-op threads on the CPU, as Loom's --threads
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    n, src, dst, x_np, y_np, train_rows, wd1 = load_graph(args)
    gat = args.model == "gat"
    if gat:
        args.edge_index = True
    hidden = args.hidden or (8 if gat else 16 if args.graph == "cora" else 128)
    heads = args.heads if gat else 1
    dropout = args.dropout if args.dropout is not None else 0.6 if gat else 0.5
    classes = int(y_np.max()) + 1 if args.graph == "cora" else args.classes
    rec = {
        "case": args.graph, "impl": "pyg", "model": args.model, "adj": "edge_index" if args.edge_index else "torch_csr",
        # spelt as Loom's placements are: cuda:0, cpu:0
        "device": f"{device.type}:{device.index if device.index is not None else torch.cuda.current_device() if cuda else 0}",
        "nodes": int(n), "edges": int(len(src)), "features": int(x_np.shape[1]), "hidden": hidden,
        "heads": heads, "classes": classes, "train_rows": int(n if train_rows is None else len(train_rows)),
        "epochs": args.epochs, "warmup": args.warmup, "threads": torch.get_num_threads(), "cached": args.cached, "dropout": dropout,
        "ms_per_epoch": None, "peak_bytes": None, "final_loss": None, "oom": False,
        "torch": torch.__version__, "pyg": torch_geometric.__version__,
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
    }
    try:
        adj = adjacency(torch, args, device, n, src, dst)
        del src, dst
        x = to_device(torch, x_np, device)
        y = to_device(torch, y_np, device, torch.int64)
        idx = None if train_rows is None else to_device(torch, train_rows, device, torch.int64)
        del x_np, y_np
        if cuda:
            torch.cuda.synchronize()
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        F = torch.nn.functional
        if gat:
            model = build_model(torch, GATConv(x.shape[1], hidden, heads=heads, dropout=dropout),
                                GATConv(hidden * heads, classes, heads=1, concat=False, dropout=dropout),
                                F.elu, dropout).to(device)
            optimizer = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=wd1)
        else:
            model = build_model(torch, GCNConv(x.shape[1], hidden, cached=args.cached),
                                GCNConv(hidden, classes, cached=args.cached), F.relu, dropout).to(device)
            optimizer = torch.optim.Adam([
                dict(params=model.conv1.parameters(), weight_decay=wd1),
                dict(params=model.conv2.parameters(), weight_decay=0.0),
            ], lr=0.01)
        model.train()

        def step():
            optimizer.zero_grad(set_to_none=True)
            out = model(x, adj)
            # index_select on precomputed rows: a boolean mask would make the host wait (nonzero)
            if idx is not None:
                out, target = out.index_select(0, idx), y.index_select(0, idx)
            else:
                target = y
            loss = F.cross_entropy(out, target)
            loss.backward()
            optimizer.step()
            return loss

        for _ in range(args.warmup):
            step()
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.epochs):
            loss = step()
        if cuda:
            torch.cuda.synchronize()
        rec["ms_per_epoch"] = round((time.perf_counter() - t0) * 1e3 / args.epochs, 4)
        rec["final_loss"] = round(float(loss.item()), 6)
        rec["peak_bytes"] = int(torch.cuda.max_memory_allocated(device)) if cuda else None
    except (torch.cuda.OutOfMemoryError, RuntimeError) as e:
        # cuSPARSE and some kernels report a failed allocation as a RuntimeError
        if not isinstance(e, torch.cuda.OutOfMemoryError) and "out of memory" not in str(e).lower() \
                and "ALLOC_FAILED" not in str(e):
            raise
        rec["oom"] = True
        rec["peak_bytes"] = int(torch.cuda.max_memory_allocated(device)) if cuda else None
        rec["error"] = str(e).split("\n")[0][:300]
    print(json.dumps(rec), flush=True)
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["gcn", "gat"], default="gcn")
    ap.add_argument("--graph", choices=["cora", "synthetic"], default="cora")
    ap.add_argument("--edge-index", action="store_true", help="edge_index message passing instead of sparse adj_t")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--edges", type=int, default=20_000_000)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=0, help="default 16 for cora, 128 for synthetic (gat: 8 per head)")
    ap.add_argument("--heads", type=int, default=8, help="gat's attention heads in the first layer")
    ap.add_argument("--classes", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0, help="the synthetic graph's seed (and torch's)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--cached", action="store_true", help="GCNConv(cached=True): normalise once")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads on the CPU (0: torch's default)")
    ap.add_argument("--dropout", type=float, default=None,
                    help="0.5 as in loom_nn_gcn, 0.6 as in loom_nn_gat; other values for checks only")
    args = ap.parse_args()
    if args.epochs < 1 or args.warmup < 0 or args.hidden < 0 or args.heads < 1:
        ap.error("--epochs and --heads must be >= 1, --warmup and --hidden >= 0")
    if args.graph == "synthetic":
        try:
            synthetic.check_sizes(args.nodes, args.edges, args.features, args.classes)
        except ValueError as e:
            ap.error(str(e))
    try:
        run(args)
    except Exception as e:  # a line for the table (no GPU, no torch, a PyG error), then the traceback
        print(json.dumps({"case": args.graph, "impl": "pyg", "model": args.model,
                          "adj": "edge_index" if args.edge_index or args.model == "gat" else "torch_csr",
                          "oom": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}),
              flush=True)
        raise


if __name__ == "__main__":
    main()
