"""Time and memory of one gradient: full BPTT, sqrt(T) checkpointing, budgets of states, truncation by
windows (k=20, a different gradient) and RTRL.

For each architecture, T and H prints the wall time of one call (the fastest of ``--repeat``), the
bytes the method reports holding (``memory_bytes``) and the peak traced by tracemalloc (everything
NumPy allocated during the call, in a separate traced run). RTRL is skipped where its cost model
exceeds ``--rtrl-flops``.

    python benchmarks/bench_cost.py [-T 50 200 1000] [-H 16 64] [-B 8] [--archs lstm gru rnn]
"""
import argparse
import functools
import time
import tracemalloc

import numpy as np

import core
from core import checkpointing
from core.rtrl import flops_model
from core.rtrl import memory_model as rtrl_memory_model


def measure(fn, repeat):
    """(fastest of ``repeat`` untraced calls in seconds, result, tracemalloc peak bytes of one traced call)."""
    dt = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        dt = min(dt, time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dt, res, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-T", type=int, nargs="+", default=[50, 200, 1000])
    ap.add_argument("-H", type=int, nargs="+", default=[16, 64])
    ap.add_argument("-B", type=int, default=8)
    ap.add_argument("--archs", nargs="+", default=["rnn", "lstm", "gru"])
    ap.add_argument("--repeat", type=int, default=3, help="time the fastest of this many calls")
    ap.add_argument("--rtrl-flops", type=float, default=3e10, help="skip RTRL above this many multiply-adds")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"B={a.B} float64, loss on every step, one thread; MiB = 2**20 bytes")
    print(f"{'arch':5s} {'T':>5s} {'H':>4s} {'method':14s} {'time':>8s} {'memory_bytes':>13s} {'traced peak':>12s} "
          f"{'recomputed':>10s} {'max rel diff':>12s}")
    for arch in a.archs:
        for H in a.H:
            model = core.build(arch, input_size=4, hidden_size=H, output_size=1)
            for T in a.T:
                x = rng.standard_normal((T, a.B, 4))
                y = rng.standard_normal((T, a.B, 1))
                c = int(np.ceil(np.sqrt(T)))
                runs = [("bptt", core.bptt, {}), ("bptt sqrt ckpt", core.bptt, {"checkpoint": True}),
                        (f"budget {c}", core.checkpointed_bptt, {"budget_states": c}),
                        ("budget 4", core.checkpointed_bptt, {"budget_states": 4}),
                        ("window 20", core.windowed_bptt, {"window": 20})]
                if flops_model(model.config, T, a.B) <= a.rtrl_flops:
                    runs.append(("rtrl", core.rtrl, {}))
                ref = None
                for name, fn, kw in runs:
                    dt, res, peak = measure(functools.partial(fn, model, x, y, **kw), a.repeat)
                    if ref is None:
                        ref = res.grads
                    diff = max(np.max(np.abs(res.grads[k] - ref[k])) / max(np.max(np.abs(ref[k])), 1e-300)
                               for k in ref)
                    rec = getattr(res, "recomputed_steps", T if name == "bptt sqrt ckpt" else 0)
                    print(f"{arch:5s} {T:5d} {H:4d} {name:14s} {dt:7.3f}s {res.memory_bytes / 2**20:9.3f} MiB "
                          f"{peak / 2**20:8.2f} MiB {rec:10d} {diff:12.1e}", flush=True)
                if flops_model(model.config, T, a.B) > a.rtrl_flops:
                    print(f"{arch:5s} {T:5d} {H:4d} {'rtrl':14s} skipped: {flops_model(model.config, T, a.B):.1e} "
                          f"multiply-adds by its cost model (memory model "
                          f"{rtrl_memory_model(model.config, a.B) / 2**20:.1f} MiB)")
            print(f"  state bytes {checkpointing.state_bytes(model.config, a.B)}, "
                  f"step bytes {checkpointing.step_bytes(model.config, a.B)} ({arch}, H={H})")


if __name__ == "__main__":
    main()
