"""Training throughput (steps per second) of core.train_iter for RNN, LSTM and GRU.

The app's default size: adding problem, T=100, hidden 32, batch 32, 1 layer, Adam. Columns:
plain training (no Jacobians), live mode (a snapshot every 10 steps with the batch-mean
Jacobian norms of 4 sequences, as the app runs it), float32, and PyTorch CPU doing the same
step (nn.RNN/LSTM/GRU + Linear + Adam, float64, 1 thread; skipped without torch). Median of a few runs.

    python benchmarks/bench_train.py [--steps 100] [--repeats 3] [--seq-len 100] [--clock cpu]

``--clock cpu`` divides by process CPU time instead of wall time: steadier on a loaded
machine (run with OPENBLAS_NUM_THREADS=1 so that CPU time is one core's time).
"""
import argparse
import dataclasses
import statistics
import time
from functools import partial

import core

try:
    import torch
except ImportError:  # the benchmark runs without torch too
    torch = None


def steps_per_second(cfg, repeats, clock=time.perf_counter):
    """Median steps/s of running ``cfg`` to the end through train_iter."""
    rates = []
    for _ in range(repeats):
        t0 = clock()
        for _snap in core.train_iter(cfg):
            pass
        rates.append(cfg.steps / (clock() - t0))
    return statistics.median(rates)


def torch_steps_per_second(cfg, repeats, clock=time.perf_counter):
    """The same training step in PyTorch (float64), steps/s; data drawn by core.make_task."""
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)  # on this shared 2-core box, 2 threads oversubscribe (10x slower)
    arch = cfg.arch.split("-")[0]
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[arch]
    rnn, head = cls(2, cfg.hidden_size, cfg.num_layers), torch.nn.Linear(cfg.hidden_size, 1)
    opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=cfg.lr)
    batches = [core.make_task("adding", cfg.seq_len, cfg.batch_size, seed=(0, s)) for s in range(cfg.steps)]
    data = [(torch.from_numpy(b.x), torch.from_numpy(b.y)) for b in batches]
    rates = []
    for _ in range(repeats):
        t0 = clock()
        for x, y in data:
            opt.zero_grad()
            out, _ = rnn(x)
            loss = torch.nn.functional.mse_loss(head(out[-1]), y)
            loss.backward()
            opt.step()
        rates.append(cfg.steps / (clock() - t0))
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rate = partial(steps_per_second, repeats=args.repeats, clock=clock)
    print(f"adding problem, T={args.seq_len}, H={args.hidden}, B={args.batch}, 1 layer, Adam; "
          f"{args.steps} steps, median of {args.repeats}, {args.clock} clock")
    print(f"{'arch':6} {'params':>7} {'steps/s':>9} {'live':>9} {'float32':>9} {'torch':>9}")
    for arch in ("rnn", "lstm", "gru"):
        cfg = core.TrainConfig(task="adding", arch=arch, hidden_size=args.hidden, batch_size=args.batch,
                               seq_len=args.seq_len, steps=args.steps, snapshot_every=args.steps,
                               jacobians=False)
        plain = rate(cfg)
        live = rate(dataclasses.replace(cfg, snapshot_every=10, jacobians=True))
        f32 = rate(dataclasses.replace(cfg, dtype="float32"))
        ref = f"{torch_steps_per_second(cfg, args.repeats, clock):9.1f}" if torch is not None else f"{'-':>9}"
        n = core.build_model(cfg).num_parameters()
        print(f"{arch:6} {n:7d} {plain:9.1f} {live:9.1f} {f32:9.1f} {ref}")


if __name__ == "__main__":
    main()
