"""Loom's counter-based generator (loom__rand64 in graphs/core/op.h) in Python and numpy, bit for bit.

The peers make the data Loom makes (synthetic.py: loom_synthetic_graph; spmm_torch.py: bench/spmm.c's
matrices; cora.py: the split's splitmix64), so they share this one transcription:

    rand64(key, counter) = mix64(mix64(key + GOLDEN) ^ (counter * 0xD1B54A32D192ED03))

mix64 being splitmix64's finaliser; value i of a stream is rand64(its key, i). numpy's uint64
arithmetic wraps modulo 2^64 as C's does, and a counter-based draw needs no state, so whole arrays
are computed at once (in chunks, to bound the temporaries).

    import loomrand
    k = loomrand.rand64_int(seed, stream)                  # a key, as a Python int
    r = loomrand.rand64(k, np.arange(n, dtype=np.uint64))  # its first n draws
    x = loomrand.stream(k, n, loomrand.unit_f32, np.float32, 1 << 22)
"""

import numpy as np

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment


def mix64(z):
    """splitmix64's finaliser on a Python int (for keys: no numpy overflow warnings)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def rand64_int(key, counter):
    """loom__rand64(key, counter) for Python ints."""
    a = mix64((key + GOLDEN) & M64)
    return mix64(a ^ ((counter * 0xD1B54A32D192ED03) & M64))


def rand64(key, counters):
    """loom__rand64(key, c) for a uint64 array of counters c (overwritten and returned)."""
    a = np.uint64(mix64((key + GOLDEN) & M64))
    z = counters
    z *= np.uint64(0xD1B54A32D192ED03)
    z ^= a
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def unit_f32(r):
    """The top 24 bits as float32 in [0, 1): exact."""
    return (r >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)


def stream(key, count, fn, dtype, chunk):
    """fn(rand64(key, i)) for i in [0, count), as dtype, `chunk` draws at a time."""
    out = np.empty(count, dtype=dtype)
    for lo in range(0, count, chunk):
        hi = min(count, lo + chunk)
        out[lo:hi] = fn(rand64(key, np.arange(lo, hi, dtype=np.uint64)))
    return out
