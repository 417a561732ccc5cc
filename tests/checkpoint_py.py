"""Loom's checkpoints are safetensors files that Python reads as they are: tests/checkpoint_writer
writes two (loom_program_save) and prints, for each, its metadata and every tensor's dtype, shape
and values (null where the C side cannot tell them); each file is read with the safetensors
package (safetensors.numpy) when it is importable, and always with a reader of the published
layout written here (an 8-byte little-endian header length, the JSON header, the raw data), and
both must find exactly that. The other way, Python writes a checkpoint (by the layout, and with
the package when it is there) that Loom loads (checkpoint_writer --read). Exits 77 (skipped)
without numpy.

    python3 tests/checkpoint_py.py BUILD/tests/checkpoint_writer WORKDIR
"""

import json
import os
import shutil
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print("checkpoint_py: numpy is not installed: skipped")
    sys.exit(77)

DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I32": np.dtype("<i4"), "I64": np.dtype("<i8"),
          "U8": np.dtype("u1")}


def read_layout(path):
    """The tensors and metadata of a safetensors file, as https://huggingface.co/docs/safetensors lays
    it out, checking what the layout promises: the data's regions one after another from 0, no gap,
    nothing after the last."""
    with open(path, "rb") as f:
        b = f.read()
    n = int.from_bytes(b[:8], "little")
    if 8 + n > len(b):
        sys.exit(f"checkpoint_py: {path}: a header of {n} bytes in a file of {len(b)}")
    header = json.loads(b[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    data = b[8 + n:]
    if (8 + n) % 8:
        sys.exit(f"checkpoint_py: {path}: the data starts at byte {8 + n}, not a multiple of 8")
    tensors, end = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, stop = e["data_offsets"]
        if begin != end:
            sys.exit(f"checkpoint_py: {path}: '{name}' begins at {begin}, expected {end}")
        dt = DTYPES[e["dtype"]]
        count = int(np.prod(e["shape"], dtype=np.int64))
        if stop - begin != count * dt.itemsize:
            sys.exit(f"checkpoint_py: {path}: '{name}' holds {stop - begin} bytes, expected {count * dt.itemsize}")
        tensors[name] = np.frombuffer(data[begin:stop], dtype=dt).reshape(e["shape"])
        end = stop
    if end != len(data):
        sys.exit(f"checkpoint_py: {path}: {len(data) - end} bytes after the last tensor")
    return tensors, meta


def read_package(path):
    """The same through the safetensors package, or None where it is not installed."""
    try:
        from safetensors import safe_open
        from safetensors.numpy import load_file
    except ImportError:
        return None
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
    return load_file(path), meta


def write_layout(path, tensors, meta):
    """A safetensors file by the published layout, its data in the reverse order of the names and its
    header unpadded: another writer's choices, which a reader must take."""
    header, data, at = {"__metadata__": meta}, b"", 0
    for name in sorted(tensors, reverse=True):
        b = np.ascontiguousarray(tensors[name]).astype(tensors[name].dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": next(k for k, v in DTYPES.items() if v == tensors[name].dtype), "shape": list(tensors[name].shape),
                        "data_offsets": [at, at + len(b)]}
        data += b
        at += len(b)
    text = json.dumps(header).encode("utf-8")
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data)


def write_package(path, tensors, meta):
    try:
        from safetensors.numpy import save_file
    except ImportError:
        return False
    save_file(tensors, path, metadata=meta)
    return True


def check_loaded(writer, path, tensors, meta):
    """Loom loads a file Python wrote: the parameters and the step count it then holds are the file's."""
    out = subprocess.run([writer, "--read", path], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"checkpoint_py: Loom refused {path}: {out.stderr}")
    got = json.loads(out.stdout)
    if got["metadata"]["step"] != meta["step"]:
        sys.exit(f"checkpoint_py: {path}: Loom's step count is {got['metadata']['step']}, the file's {meta['step']}")
    for name, w in got["tensors"].items():
        if w["values"] is not None and not np.array_equal(np.array(w["values"], dtype=tensors[name].dtype), tensors[name].ravel()):
            sys.exit(f"checkpoint_py: {path}: Loom holds {w['values']} for '{name}', the file {tensors[name].ravel().tolist()}")
    print(f"checkpoint_py: {path}: read back by Loom")


def check(path, reader, tensors, meta, want):
    if meta != want["metadata"]:
        sys.exit(f"checkpoint_py: {path} ({reader}): metadata {meta}, expected {want['metadata']}")
    if sorted(tensors) != sorted(want["tensors"]):
        sys.exit(f"checkpoint_py: {path} ({reader}): tensors {sorted(tensors)}, expected {sorted(want['tensors'])}")
    for name, w in want["tensors"].items():
        t = tensors[name]
        if t.dtype != DTYPES[w["dtype"]] or list(t.shape) != w["shape"]:
            sys.exit(f"checkpoint_py: {path} ({reader}): '{name}' is {t.dtype} {list(t.shape)}, expected {w['dtype']} "
                     f"{w['shape']}")
        if w["values"] is None:
            if not np.all(np.isfinite(t)) or (name.endswith("exp_avg_sq") and np.any(t < 0)):
                sys.exit(f"checkpoint_py: {path} ({reader}): '{name}' holds {t}")
            continue
        v = np.array(w["values"], dtype=t.dtype).reshape(t.shape)
        if not np.array_equal(t, v):
            sys.exit(f"checkpoint_py: {path} ({reader}): '{name}' is {t.ravel().tolist()}, the C side's "
                     f"{v.ravel().tolist()}")


def main():
    writer, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    out = subprocess.run([writer, work], check=True, capture_output=True, text=True).stdout
    lines = [json.loads(l) for l in out.splitlines()]
    if len(lines) != 2:
        sys.exit(f"checkpoint_py: expected 2 lines from {writer}, got: {out}")
    package = True
    for want in lines:
        path = os.path.join(work, want["file"])
        check(path, "the layout", *read_layout(path), want)
        got = read_package(path)
        if got is None:
            package = False
        else:
            check(path, "safetensors", *got, want)
        print(f"checkpoint_py: {path}: {len(want['tensors'])} tensors agree")

    # the other way: Python writes the Adam checkpoint anew, the parameters changed and the step
    # count too, and Loom loads it
    tensors, _ = read_layout(os.path.join(work, "adam.safetensors"))
    tensors = {k: (v * 2 if k.count(".") == 1 else v.copy()) for k, v in tensors.items()}
    meta = {"optimizer": "adam", "step": "7"}
    write_layout(os.path.join(work, "py_layout.safetensors"), tensors, meta)
    check_loaded(writer, os.path.join(work, "py_layout.safetensors"), tensors, meta)
    if write_package(os.path.join(work, "py_package.safetensors"), tensors, meta):
        check_loaded(writer, os.path.join(work, "py_package.safetensors"), tensors, meta)
    if not package:
        print("checkpoint_py: the safetensors package is not installed: read and written by the layout only")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
