"""Speed of core.jacobian_norms and core.connectivity.

1. ``core.jacobian_norms`` for an LSTM T=500, B=1, H=128 (state n = 2H = 256) against the bare
   cost it cannot avoid: 500 running products of 256x256 float64 matrices. The target:
   within 4x. Medians of several repeats (after a warm-up).
2. ``core.connectivity`` at T=100, H=32, 2 layers (interactive size, target well under 50 ms)
   and a single run at T=1000, H=256.

    python benchmarks/bench_jacobians.py [--repeats 7] [--skip-big]
"""
import argparse
import statistics
import time

import numpy as np

import core
from timing import median_time, timed


def running_products(A, T):
    P = np.eye(A.shape[0])
    for _ in range(T):
        P = P @ A
    return P


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--skip-big", action="store_true", help="skip connectivity at T=1000, H=256")
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    T, H, I = 500, 128, 8
    m = core.build("lstm", input_size=I, hidden_size=H, output_size=1, seed=0)
    x = rng.standard_normal((T, 1, I))
    A = rng.standard_normal((2 * H, 2 * H)) / np.sqrt(2 * H)
    # interleaved, so that both see the same machine load; the ratio is the median of ratios
    core.jacobian_norms(m, x), running_products(A, T)  # warm-up
    ours, ref = [], []
    for _ in range(args.repeats):
        ours.append(timed(lambda: core.jacobian_norms(m, x)))
        ref.append(timed(lambda: running_products(A, T)))
    ratio = statistics.median(o / r for o, r in zip(ours, ref, strict=False))
    print(f"jacobian_norms LSTM T={T} H={H} B=1: {statistics.median(ours) * 1e3:8.1f} ms")
    print(f"{T} products of {2 * H}x{2 * H}:       {statistics.median(ref) * 1e3:8.1f} ms")
    print(f"ratio: {ratio:.2f}x (target <= 4x)")

    for arch in ("rnn", "lstm", "gru"):
        m = core.build(arch, input_size=4, hidden_size=32, output_size=2, num_layers=2, seed=0)
        x = rng.standard_normal((100, 1, 4))
        t = median_time(lambda m=m, x=x: core.connectivity(m, x), args.repeats)
        print(f"connectivity {arch.upper():4s} T=100 H=32 L=2 O=2: {t * 1e3:8.1f} ms")

    if not args.skip_big:
        for arch in ("rnn", "lstm"):
            m = core.build(arch, input_size=4, hidden_size=256, output_size=1, num_layers=1, seed=0)
            x = rng.standard_normal((1000, 1, 4))
            t0 = time.perf_counter()
            core.connectivity(m, x)
            print(f"connectivity {arch.upper():4s} T=1000 H=256 L=1 O=1 (single run): "
                  f"{time.perf_counter() - t0:6.2f} s")


if __name__ == "__main__":
    main()
