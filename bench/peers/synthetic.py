"""Loom's synthetic graph (data/synthetic.c, loom_synthetic_graph) in numpy, bit for bit.

The peers train on the graph Loom trains on, so this is a transcription, not a look-alike: value i
of each stream is rand64(key of the stream, i), Loom's counter-based generator (loom__rand64 in
graphs/core/op.h, the splitmix64 finaliser over key and counter; loomrand.py), with the key
rand64(seed, stream). Whole arrays are computed at once (in chunks, to bound the temporaries at
100M edges).

    import synthetic
    g = synthetic.graph(nodes, edges, features, classes, seed)
    g["edge_index"]  # int64 [2, edges]: row 0 the sources, row 1 the destinations, in edge order
    g["x"]           # float32 [nodes, features] in [0, 1)
    g["y"]           # int64 [nodes] in [0, classes)
    rowptr, col = synthetic.csr(nodes, g["edge_index"])   # Loom's adjacency: row = destination

Run as a script it prints the first entries of a small graph (the figures tests/test_synthetic.c
checks) or, with --out FILE.npz, saves a graph.
"""

import argparse

import numpy as np

import loomrand

# The streams of data/synthetic.c: each keyed by rand64(seed, stream).
SRC, DST, X, Y = 0, 1, 2, 3

_CHUNK = 1 << 22


def key(seed, stream):
    """rand64(seed, stream): the key of one stream, as a Python int."""
    return loomrand.rand64_int(seed, stream)


def below(r, n):
    """floor(r * n / 2^64) for n < 2^32, from 32-bit halves (data/synthetic.c's below())."""
    n = np.uint64(n)
    lo = (r & np.uint64(0xFFFFFFFF)) * n
    lo >>= np.uint64(32)
    hi = r >> np.uint64(32)
    hi *= n
    hi += lo
    hi >>= np.uint64(32)
    return hi


def _stream(seed, stream, count, fn, dtype):
    """fn(rand64(key, i)) for i in [0, count), as dtype, a chunk at a time."""
    return loomrand.stream(key(seed, stream), count, fn, dtype, _CHUNK)


def check_sizes(nodes, edges, features, classes):
    """The limits loom_synthetic_graph enforces, with its messages."""
    if not 1 <= nodes <= 2**31 - 1:
        raise ValueError(f"nodes is {nodes}: expected 1 to 2^31 - 1 (int32 CSR indices)")
    if not 0 <= edges <= 2**31 - 1:
        raise ValueError(f"edges is {edges}: expected 0 to 2^31 - 1 (int32 CSR row pointers)")
    if features < 1:
        raise ValueError(f"features is {features}: expected at least 1")
    if not 1 <= classes <= 2**31 - 1:
        raise ValueError(f"classes is {classes}: expected 1 to 2^31 - 1 (i32 labels)")


def edge_index(nodes, edges, seed):
    """int64 [2, edges]: sources, then destinations, in edge order."""
    ei = np.empty((2, edges), dtype=np.int64)
    ei[0] = _stream(seed, SRC, edges, lambda r: below(r, nodes), np.int64)
    ei[1] = _stream(seed, DST, edges, lambda r: below(r, nodes), np.int64)
    return ei


def features(nodes, nfeatures, seed):
    """float32 [nodes, features], element (i, j) at counter i * features + j."""
    return _stream(seed, X, nodes * nfeatures, loomrand.unit_f32, np.float32).reshape(nodes, nfeatures)


def labels(nodes, classes, seed):
    """int64 [nodes] in [0, classes) (Loom holds them as int32; the values are the same)."""
    return _stream(seed, Y, nodes, lambda r: below(r, classes), np.int64)


def graph(nodes, edges, nfeatures, classes, seed):
    """The graph of loom_synthetic_graph(nodes, edges, features, classes, seed)."""
    check_sizes(nodes, edges, nfeatures, classes)
    return {
        "edge_index": edge_index(nodes, edges, seed),
        "x": features(nodes, nfeatures, seed),
        "y": labels(nodes, classes, seed),
    }


def csr(nodes, ei):
    """Loom's CSR of the graph: row = destination, each row's entries in edge order (a stable sort
    by destination), duplicates kept. Returns int32 rowptr [nodes + 1] and col [edges]."""
    dst = ei[1]
    rowptr = np.zeros(nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=nodes), out=rowptr[1:])
    order = np.argsort(dst, kind="stable")
    return rowptr.astype(np.int32), ei[0][order].astype(np.int32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--edges", type=int, default=40)
    ap.add_argument("--features", type=int, default=3)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", help="save edge_index, x, y, rowptr and col to this .npz")
    ap.add_argument("--show", type=int, default=12, help="entries of each array to print")
    a = ap.parse_args()
    g = graph(a.nodes, a.edges, a.features, a.classes, a.seed)
    rowptr, col = csr(a.nodes, g["edge_index"])
    if a.out:
        np.savez(a.out, rowptr=rowptr, col=col, **g)
        return
    k = a.show
    np.set_printoptions(floatmode="unique")
    print(f"graph nodes {a.nodes} edges {a.edges} features {a.features} classes {a.classes} seed {a.seed}")
    print("src    ", g["edge_index"][0][:k].tolist())
    print("dst    ", g["edge_index"][1][:k].tolist())
    print("rowptr ", rowptr[: k + 1].tolist())
    print("col    ", col[:k].tolist())
    print("y      ", g["y"][:k].tolist())
    # floats as the exact multiples of 2^-24 they are, so C can state them without rounding
    print("x*2^24 ", [int(v) for v in (g["x"].reshape(-1)[:k] * np.float32(2**24)).astype(np.int64)])
    print("x      ", [float(v) for v in g["x"].reshape(-1)[:k]])


if __name__ == "__main__":
    main()
