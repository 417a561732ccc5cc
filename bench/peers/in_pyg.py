"""The interaction network of examples/hep_tracks.c and bench/balance.c in PyTorch Geometric, on the
same events (the files bench/balance --write-events DIR wrote, read by events.py) and the same
batches (each sampler's steps, bench/balance --write-steps FILE), so that bench/gpu.sh can set the
two side by side: epoch time and torch.cuda.max_memory_allocated against Loom's plan.

    python3 in_pyg.py --events DIR --steps FILE [--device cuda:0] [--hidden 32] [--rounds 3]
                      [--lr 0.003] [--seed 1]

The same work as Loom's: node and edge encoders (two Linear layers with ReLU between and after),
`rounds` times e += mlp([h[src], h[dst], e]) and h += mlp([h, sum of e into each node, sum of e out
of it]) (PyG's scatter), an edge score mlp([h[src], h[dst], e]) -> 1, BCEWithLogitsLoss, Adam;
weights Glorot-uniform and biases zero, as loom_nn_linear makes them. A step's graphs are joined
by PyG's Batch (its DataLoader with the steps as batch_sampler) on the host and moved to the
device, as Loom's batch source collates on the host and copies. One JSON line per sampler, with
the fields of bench/balance.c's lines."""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch_geometric
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.utils import scatter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import events  # noqa: E402


def dataset(path):
    s = events.read_samples(path)
    out = []
    for i in range(s["count"]):
        n0, n1 = s["node_off"][i], s["node_off"][i + 1]
        e0, e1 = s["edge_off"][i], s["edge_off"][i + 1]
        ei = np.stack([s["src"][e0:e1], s["dst"][e0:e1]]).astype(np.int64)
        out.append(Data(x=torch.from_numpy(s["x"][n0:n1].copy()), edge_index=torch.from_numpy(ei),
                        edge_attr=torch.from_numpy(s["edge_attr"][e0:e1].copy()),
                        y=torch.from_numpy(s["edge_y"][e0:e1].copy())))
    return out


def mlp2(i, h, o):
    m = torch.nn.Sequential(torch.nn.Linear(i, h), torch.nn.ReLU(), torch.nn.Linear(h, o))
    for layer in (m[0], m[2]):
        torch.nn.init.xavier_uniform_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    return m


class InteractionNetwork(torch.nn.Module):
    def __init__(self, f, fe, hidden, rounds):
        super().__init__()
        self.node_enc = mlp2(f, hidden, hidden)
        self.edge_enc = mlp2(fe, hidden, hidden)
        self.edge = torch.nn.ModuleList([mlp2(3 * hidden, hidden, hidden) for _ in range(rounds)])
        self.node = torch.nn.ModuleList([mlp2(3 * hidden, hidden, hidden) for _ in range(rounds)])
        self.score = mlp2(3 * hidden, hidden, 1)

    def forward(self, x, edge_index, edge_attr):
        src, dst = edge_index
        n = x.size(0)
        h = torch.relu(self.node_enc(x))
        e = torch.relu(self.edge_enc(edge_attr))
        for em, nm in zip(self.edge, self.node):
            e = e + em(torch.cat([h[src], h[dst], e], dim=1))
            agg_in = scatter(e, dst, dim=0, dim_size=n, reduce="sum")
            agg_out = scatter(e, src, dim=0, dim_size=n, reduce="sum")
            h = h + nm(torch.cat([h, agg_in, agg_out], dim=1))
        return self.score(torch.cat([h[src], h[dst], e], dim=1)).view(-1)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", required=True, help="the directory bench/balance --write-events wrote")
    ap.add_argument("--steps", required=True, help="the file bench/balance --write-steps wrote")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    dev = torch.device(a.device if (a.device == "cpu" or torch.cuda.is_available()) else "cpu")
    train = dataset(os.path.join(a.events, "train.bin"))
    test = dataset(os.path.join(a.events, "test.bin"))
    runs = {}
    with open(a.steps) as f:
        for line in f:
            r = json.loads(line)
            runs.setdefault(r["sampler"], []).append(r["steps"])
    for sampler, epochs in runs.items():
        torch.manual_seed(a.seed)
        model = InteractionNetwork(train[0].x.size(1), train[0].edge_attr.size(1), a.hidden, a.rounds).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=a.lr)
        lossf = torch.nn.BCEWithLogitsLoss()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        secs, steps, most_n, most_e = 0.0, 0, 0, 0
        line = {"bench": "balance", "impl": "pyg", "sampler": sampler, "placement": str(dev), "events": len(train),
                "epochs": len(epochs), "torch": torch.__version__, "pyg": torch_geometric.__version__}
        try:
            for batches in epochs:
                loader = DataLoader(train, batch_sampler=batches)
                sync(dev)
                t0 = time.perf_counter()
                for b in loader:
                    b = b.to(dev, non_blocking=True)
                    most_n, most_e = max(most_n, b.num_nodes), max(most_e, b.num_edges)
                    opt.zero_grad(set_to_none=True)
                    loss = lossf(model(b.x, b.edge_index, b.edge_attr), b.y)
                    loss.backward()
                    opt.step()
                sync(dev)
                secs += time.perf_counter() - t0
                steps += len(batches)
            peak = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None
            tp = fp = tn = fn = 0
            model.eval()
            with torch.no_grad():
                for b in DataLoader(test, batch_size=16):
                    b = b.to(dev)
                    pred = model(b.x, b.edge_index, b.edge_attr) > 0
                    truth = b.y > 0.5
                    tp += int((pred & truth).sum())
                    fp += int((pred & ~truth).sum())
                    tn += int((~pred & ~truth).sum())
                    fn += int((~pred & truth).sum())
            line.update({"steps_per_epoch": steps / len(epochs), "largest_nodes": most_n, "largest_edges": most_e,
                         "peak_bytes": peak, "step_ms": 1e3 * secs / max(steps, 1), "epoch_s": secs / len(epochs),
                         "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
                         "accuracy": (tp + tn) / max(tp + fp + tn + fn, 1), "oom": False})
        except torch.cuda.OutOfMemoryError as e:
            line.update({"oom": True, "error": str(e).splitlines()[0]})
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
