"""Loom's samples file (data/samples_file.c: loom_samples_write, loom_samples_read) in numpy, so
that the peers train on the events Loom generated, read from the file Loom wrote.

    import events
    s = events.read_samples("events.bin")
    s["count"], s["node_features"], s["edge_features"], s["num_classes"]   # ints
    s["node_off"], s["edge_off"]   # int64 [count + 1]: sample i owns nodes node_off[i] ..
                                   # node_off[i+1]-1 and edges edge_off[i] .. edge_off[i+1]-1
    s["src"], s["dst"]             # int32 [edges]: endpoints numbered within their sample
    s["x"]                         # float32 [nodes, node_features]
    s["edge_attr"]                 # float32 [edges, edge_features], or None
    s["edge_y"]                    # float32 [edges] of 0 and 1, or None
    s["graph_y"]                   # int32 [count], or None

The names are those of the C struct loom_samples. The reader checks what Loom's does that can be
told from the bytes alone (magic, version, header size, counts against the file size, the CRC-32
of the payload, the offsets) and raises ValueError naming the file and the byte, as Loom does.

Run as a script it prints one JSON line of a file's counts and a CRC-32 of each array
(tests/events_py.py compares those with what the C side wrote).
"""

import json
import sys
import zlib

import numpy as np

MAGIC = b"LOOMSMP1"
VERSION = 1
HEADER = 80
EDGE_ATTR, EDGE_Y, GRAPH_Y = 1, 2, 4

# (name, dtype, header field whose count sizes it, flag that makes it present or 0)
_ARRAYS = [
    ("node_off", "<i8", "count+1", 0),
    ("edge_off", "<i8", "count+1", 0),
    ("src", "<i4", "edges", 0),
    ("dst", "<i4", "edges", 0),
    ("x", "<f4", "nodes*node_features", 0),
    ("edge_attr", "<f4", "edges*edge_features", EDGE_ATTR),
    ("edge_y", "<f4", "edges", EDGE_Y),
    ("graph_y", "<i4", "count", GRAPH_Y),
]


def _bad(path, at, what):
    return ValueError(f"{path}: byte {at}: {what}")


def _padded(n, size):
    return (n * size + 7) // 8 * 8


def read_samples(path):
    """The arrays of the samples file at path, by the names of loom_samples' fields."""
    with open(path, "rb") as f:
        data = f.read()
    size = len(data)
    if data[:8] != MAGIC[: min(size, 8)]:
        raise _bad(path, 0, f"not a Loom samples file: expected the magic {MAGIC.decode()!r}")
    if size >= 12:
        version = int.from_bytes(data[8:12], "little")
        if version != VERSION:
            raise _bad(path, 8, f"version {version}, this reader reads version {VERSION}")
    if size < HEADER:
        raise _bad(path, size, f"truncated: the file ends at byte {size}, expected the {HEADER}-byte header")
    h = np.frombuffer(data, dtype="<i8", count=10)  # bytes 0 .. 79 as int64 words
    header_bytes = int.from_bytes(data[12:16], "little")
    if header_bytes != HEADER:
        raise _bad(path, 12, f"header of {header_bytes} bytes: version {VERSION} has {HEADER}")
    c = {"count": int(h[2]), "node_features": int(h[3]), "edge_features": int(h[4]), "num_classes": int(h[5]),
         "nodes": int(h[6]), "edges": int(h[7])}
    for at, name, least in [(16, "count", 0), (24, "node_features", 1), (32, "edge_features", 0),
                            (40, "num_classes", 0), (48, "nodes", 0), (56, "edges", 0)]:
        if c[name] < least:
            raise _bad(path, at, f"{name} is {c[name]}: expected at least {least}")
    flags = int.from_bytes(data[64:68], "little")
    crc = int.from_bytes(data[68:72], "little")
    payload = int.from_bytes(data[72:80], "little")
    if flags & ~7:
        raise _bad(path, 64, f"flags {flags:#x}: expected only 0x1 (edge_attr), 0x2 (edge_y) and 0x4 (graph_y)")
    # Python integers do not overflow: sizes past the file are refused by the comparisons below
    counts = {"count+1": c["count"] + 1, "count": c["count"], "edges": c["edges"],
              "nodes*node_features": c["nodes"] * c["node_features"],
              "edges*edge_features": c["edges"] * c["edge_features"]}
    present = [(n, t, counts[k]) for n, t, k, flag in _ARRAYS if not flag or flags & flag]
    want = sum(_padded(n, np.dtype(t).itemsize) for _, t, n in present)
    if payload != want:
        raise _bad(path, 72, f"payload of {payload} bytes: the counts give {want}")
    if size < HEADER + payload:
        raise _bad(path, size, f"truncated: the file ends at byte {size}, expected {HEADER + payload} bytes")
    if size > HEADER + payload:
        raise _bad(path, HEADER + payload, f"{size - HEADER - payload} bytes past the end of the arrays: expected "
                                           "the file to end here")
    got = zlib.crc32(memoryview(data)[HEADER:])
    if got != crc:
        raise _bad(path, HEADER, f"the payload's CRC-32 is {got:#010x}, expected {crc:#010x} (the header's, byte 68): "
                                 "the file is corrupt")
    out = {k: c[k] for k in ("count", "node_features", "edge_features", "num_classes")}
    out.update(edge_attr=None, edge_y=None, graph_y=None)
    at = HEADER
    for name, t, n in present:
        a = np.frombuffer(data, dtype=t, count=n, offset=at).astype(np.dtype(t).newbyteorder("="))
        out[name] = a
        at_offsets = at
        at += _padded(n, a.itemsize)
        if name in ("node_off", "edge_off"):
            total = c["nodes"] if name == "node_off" else c["edges"]
            bad = np.flatnonzero((np.diff(a) < 0) | (a[1:] > total))
            if a[0] != 0:
                raise _bad(path, at_offsets, f"{name}[0] is {a[0]}: expected 0")
            if bad.size:
                i = int(bad[0]) + 1
                raise _bad(path, at_offsets + 8 * i, f"{name}[{i}] is {a[i]}: offsets never decrease and end at the "
                                                     "header's total")
            if a[-1] != total:
                raise _bad(path, at_offsets + 8 * c["count"], f"{name}[{c['count']}] is {a[-1]}: expected {total}")
    out["x"] = out["x"].reshape(c["nodes"], c["node_features"])
    if out["edge_attr"] is not None:
        out["edge_attr"] = out["edge_attr"].reshape(c["edges"], c["edge_features"])
    return out


def summary(s):
    """Counts and a CRC-32 of each array's little-endian bytes (None for an absent one)."""
    line = {k: s[k] for k in ("count", "node_features", "edge_features", "num_classes")}
    for name, t, _, _ in _ARRAYS:
        a = s[name]
        line[name] = None if a is None else zlib.crc32(np.ascontiguousarray(a, dtype=t).tobytes())
    return line


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: events.py FILE")
    print(json.dumps(summary(read_samples(sys.argv[1]))))
