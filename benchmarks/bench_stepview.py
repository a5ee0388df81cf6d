"""The step-by-step view's cost: the (loss step x step) map against one bptt, the whole payload, the figure.

The map runs one backward pass per loss step (R rows), so its cost is about R/2 bptt runs (a chunk of
rows stops at its last loss step); the view bounds R by MAP_ROWS and a work budget. Prints seconds
(median of --repeats) and the stepped figure's JSON size (what the browser receives once).

    python benchmarks/bench_stepview.py [--repeats 3]
"""
import argparse
import json

import numpy as np

import core
from visualizer import stepview, unrolled
from visualizer.urlstate import Params
from timing import median_time

CASES = [("rnn", 12, 4, 8), ("lstm", 30, 8, 32), ("lstm", 64, 8, 128), ("gru", 120, 8, 32)]  # arch, T, B, H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'case':28s} {'bptt':>8s} {'map':>8s} {'rows':>5s} {'payload':>8s} {'figure':>8s} {'JSON':>9s}")
    for arch, T, B, H in CASES:
        m = core.build(arch, input_size=2, hidden_size=H, output_size=1, seed=0)
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((T, B, 2)), rng.standard_normal((T, B, 1))
        rows, _ = stepview.map_rows(T, B, H, 1, m.config.gates, "all")
        t_bptt = median_time(lambda m=m, x=x, y=y: core.bptt(m, x, y), args.repeats)
        t_map = median_time(lambda m=m, x=x, y=y, r=rows: core.whh_contribution_map(m, x, y, rows=r), args.repeats)
        p = Params(arch=(arch,), seq_len=T, batch=B, hidden=H, task="sine", loss_on="all")

        def payload(p=p):
            stepview.walk.cache_clear()
            return stepview.payload(p)
        t_payload = median_time(payload, args.repeats)
        pl = stepview.payload(p)
        t_fig = median_time(lambda pl=pl: unrolled.step_figure(pl), args.repeats)
        size = len(json.dumps(unrolled.step_figure(pl)))
        print(f"{arch} T={T} B={B} H={H}".ljust(28) + f" {t_bptt:8.4f} {t_map:8.3f} {rows.size:5d} {t_payload:8.3f}"
              f" {t_fig:8.3f} {size / 1e6:7.2f}MB")


if __name__ == "__main__":
    main()
