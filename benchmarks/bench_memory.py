"""Memory held by full vs checkpointed BPTT: LSTM/GRU/RNN, T=2000, H=256, B=8.

Prints `BPTTResult.memory_bytes` (activations kept for the backward pass) and the peak traced
by tracemalloc (everything NumPy allocated during the call), plus the time of each mode.

    python benchmarks/bench_memory.py [-T 2000] [-H 256] [-B 8]
"""
import argparse
import time
import tracemalloc

import numpy as np

import core


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-T", type=int, default=2000)
    ap.add_argument("-H", type=int, default=256)
    ap.add_argument("-B", type=int, default=8)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.T, a.B, 4))
    y = rng.standard_normal((a.T, a.B, 1))
    print(f"T={a.T} H={a.H} B={a.B} float64, loss on all steps")
    print(f"{'arch':5s} {'mode':11s} {'memory_bytes':>14s} {'tracemalloc peak':>17s} {'time':>8s}")
    for arch in ("rnn", "lstm", "gru"):
        m = core.build(arch, input_size=4, hidden_size=a.H, output_size=1)
        for ckpt in (False, True):
            tracemalloc.start()
            t0 = time.perf_counter()
            res = core.bptt(m, x, y, checkpoint=ckpt)
            dt = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            mode = "checkpoint" if ckpt else "full"
            print(f"{arch:5s} {mode:11s} {res.memory_bytes / 2**20:11.1f} MiB {peak / 2**20:14.1f} MiB {dt:7.2f}s")


if __name__ == "__main__":
    main()
