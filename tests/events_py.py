"""The C samples file and bench/peers/events.py agree: tests/events_writer writes two files and
prints the CRC-32 of each of their arrays; the numpy reader must read the same arrays, and refuse a
flipped byte, another magic and a truncated file as Loom does. Exits 77 (skipped) without numpy.

    python3 tests/events_py.py BUILD/tests/events_writer WORKDIR
"""

import json
import os
import shutil
import subprocess
import sys

try:
    import numpy  # noqa: F401  (the reader needs it)
except ImportError:
    print("events_py: numpy is not installed: skipped")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "peers"))
import events  # noqa: E402


def refused(path, data, at, needle):
    with open(path, "wb") as f:
        f.write(data)
    try:
        events.read_samples(path)
    except ValueError as e:
        msg = str(e)
        if f"{path}: byte {at}: " not in msg or needle not in msg:
            sys.exit(f"events_py: '{msg}' lacks 'byte {at}' or '{needle}'")
        return
    sys.exit(f"events_py: {path} was read, expected a refusal ({needle})")


def main():
    writer, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    out = subprocess.run([writer, work], check=True, capture_output=True, text=True).stdout
    lines = [json.loads(l) for l in out.splitlines()]
    if len(lines) != 2:
        sys.exit(f"events_py: expected 2 lines from {writer}, got: {out}")
    for want in lines:
        path = os.path.join(work, want.pop("file"))
        s = events.read_samples(path)
        got = events.summary(s)
        if got != want:
            diff = {k: (want[k], got.get(k)) for k in want if want[k] != got.get(k)}
            sys.exit(f"events_py: {path}: the numpy reader differs from the C writer (C, numpy): {diff}")
        if s["x"].shape != (s["node_off"][-1], s["node_features"]):
            sys.exit(f"events_py: {path}: x has shape {s['x'].shape}")
        print(f"events_py: {path}: {s['count']} samples, {s['node_off'][-1]} nodes, {s['edge_off'][-1]} edges agree")

    with open(os.path.join(work, "events.bin"), "rb") as f:
        good = f.read()
    bad = os.path.join(work, "bad.bin")
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    refused(bad, bytes(flipped), 80, "CRC-32")
    refused(bad, b"PK\3\4" + good[4:], 0, "not a Loom samples file")
    refused(bad, good[:-1], len(good) - 1, f"truncated: the file ends at byte {len(good) - 1}, expected {len(good)}")
    refused(bad, good[:40], 40, "expected the 80-byte header")
    refused(bad, good[:8] + (2).to_bytes(4, "little") + good[12:], 8, "version 2")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
