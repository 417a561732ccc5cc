"""Cora as Loom loads it (data/citation.c, loom_citation_load) and Loom's seeded split
(data/split.c, loom_split_per_class), in numpy, so the peers train on the same graph and rows.

    import cora
    d = cora.load()                  # $LOOM_DATA/cora.npz, else the cache, like loom_data_find
    d["rowptr"], d["col"]            # int64 CSR: A + A^T over nonzero entries, no self loops, no
                                     # repeats, each row sorted; values 1
    d["x"]                           # float32 [N, F], each row divided by its sum (zero rows kept)
    d["y"]                           # int64 [N]
    train, val, test = cora.split_per_class(d["y"], d["classes"], 20, 500, 1000, seed=0)

Run as a script it prints the figures tests/test_citation.c holds for the real file.
"""

import os
import sys

import numpy as np

from loomrand import GOLDEN, M64, mix64


def find(name="cora.npz"):
    """$LOOM_DATA/name, then $XDG_CACHE_HOME/loom/name (when absolute), else ~/.cache/loom/name."""
    looked = []
    env = os.environ.get("LOOM_DATA")
    if env:
        looked.append(os.path.join(env, name))
    xdg, home = os.environ.get("XDG_CACHE_HOME", ""), os.environ.get("HOME", "")
    if xdg.startswith("/"):
        looked.append(os.path.join(xdg, "loom", name))
    elif home:
        looked.append(os.path.join(home, ".cache", "loom", name))
    for p in looked:
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"{name} not found: looked in {', '.join(looked) or '$LOOM_DATA (unset)'}; "
                            f"set LOOM_DATA to a directory holding {name}")


def _csr_parts(z, p, nrows, ncols, path):
    ptr = z[f"{p}_indptr"].astype(np.int64)
    ind = z[f"{p}_indices"].astype(np.int64)
    val = z[f"{p}_data"].astype(np.float64)
    if ptr.shape != (nrows + 1,) or ptr[0] != 0 or (np.diff(ptr) < 0).any() or ptr[-1] != ind.size:
        raise ValueError(f"{path}: {p}_indptr is not a CSR row pointer of {nrows} rows")
    if ind.size and (ind.min() < 0 or ind.max() >= ncols):
        raise ValueError(f"{path}: {p}_indices holds a column outside [0, {ncols})")
    if val.shape != ind.shape or not np.isfinite(val).all():
        raise ValueError(f"{path}: {p}_data does not match {p}_indices or is not finite")
    return ptr, ind, val


def load(path=None):
    path = path or find()
    with np.load(path) as z:
        n, n2 = (int(v) for v in z["adj_shape"])
        if n != n2:
            raise ValueError(f"{path}: adj_shape is ({n}, {n2}): expected a square matrix")
        ptr, ind, val = _csr_parts(z, "adj", n, n, path)
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(ptr))
        keep = (ind != rows) & (val != 0)
        r, c = rows[keep], ind[keep]
        # A + A^T, then one entry per (row, col), rows sorted by column
        key = np.unique(np.concatenate([r * n + c, c * n + r]))
        row, col = key // n, key % n
        rowptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(row, minlength=n), out=rowptr[1:])

        if "attr_data" not in z.files and "attr_matrix" in z.files:
            x = z["attr_matrix"].astype(np.float32)
        else:
            fr, f = (int(v) for v in z["attr_shape"])
            aptr, aind, aval = _csr_parts(z, "attr", n, f, path)
            x = np.zeros((n, f), dtype=np.float32)
            arow = np.repeat(np.arange(n, dtype=np.int64), np.diff(aptr))
            np.add.at(x, (arow, aind), aval.astype(np.float32))  # duplicates add up, as in scipy
        # row sums in double, each value divided in double and rounded to float, as citation.c does
        s = x.astype(np.float64).sum(axis=1)
        nz = s != 0
        x[nz] = (x[nz].astype(np.float64) / s[nz, None]).astype(np.float32)
        y = z["labels"].astype(np.int64)
    if y.shape != (n,) or (y < 0).any():
        raise ValueError(f"{path}: labels must be [{n}] classes >= 0")
    return {"nodes": n, "features": x.shape[1], "classes": int(y.max()) + 1, "rowptr": rowptr, "col": col,
            "x": x, "y": y, "path": path}


def _splitmix64(state):
    state = (state + GOLDEN) & M64
    return state, mix64(state)


def _below(state, n):
    limit = M64 - M64 % n
    while True:
        state, x = _splitmix64(state)
        if x < limit:
            return state, x % n


def split_per_class(y, classes, per_class, num_val, num_test, seed):
    """loom_split_per_class: bool masks (train, val, test), the same nodes for the same seed."""
    n = len(y)
    state = seed & M64
    order = list(range(n))
    for i in range(n - 1, 0, -1):  # Fisher-Yates from the back
        state, j = _below(state, i + 1)
        order[i], order[j] = order[j], order[i]
    taken = [0] * classes
    train = np.zeros(n, dtype=bool)
    rest = []
    for v in order:
        c = int(y[v])
        if taken[c] < per_class:
            taken[c] += 1
            train[v] = True
        else:
            rest.append(v)
    if min(taken) < per_class:
        raise ValueError(f"split: a class has fewer than per_class {per_class} nodes")
    if num_val + num_test > len(rest):
        raise ValueError(f"split: {len(rest)} nodes remain after training, fewer than {num_val} + {num_test}")
    val = np.zeros(n, dtype=bool)
    test = np.zeros(n, dtype=bool)
    val[rest[:num_val]] = True
    test[rest[num_val:num_val + num_test]] = True
    return train, val, test


def main():
    d = load(sys.argv[1] if len(sys.argv) > 1 else None)
    deg = np.diff(d["rowptr"])
    train, val, test = split_per_class(d["y"], d["classes"], 20, 500, 1000, 0)
    print(f"{d['path']}: nodes {d['nodes']} features {d['features']} classes {d['classes']} "
          f"entries {d['col'].size} max degree {deg.max()} row 0 degree {deg[0]} "
          f"class counts {np.bincount(d['y']).tolist()} train {int(train.sum())} val {int(val.sum())} "
          f"test {int(test.sum())}")


if __name__ == "__main__":
    main()
