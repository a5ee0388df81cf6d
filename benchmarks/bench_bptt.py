"""core.bptt forward+backward vs PyTorch CPU, side by side in one run.

LSTM T=256, B=32, input 16, H=128, readout 1, MSE on all steps (the targets:
core <= 1.0x PyTorch in float64, <= 1.5x in float32). Without torch, prints our numbers only.

    python benchmarks/bench_bptt.py [--repeats 15] [--arch lstm|gru|rnn]
"""
import argparse

import numpy as np

import core
from timing import median_time

try:
    import torch
except ImportError:  # the benchmark runs without torch too
    torch = None


def ours(arch, T, B, I, H, dtype, repeats, diagnostics=False):
    """Forward + backward; ``diagnostics`` also reads the lazily computed whh_grad_norms."""
    m = core.build(arch, input_size=I, hidden_size=H, output_size=1, seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    y = rng.standard_normal((T, B, 1)).astype(dtype)
    if diagnostics:
        return median_time(lambda: core.bptt(m, x, y).whh_grad_norms, repeats)
    return median_time(lambda: core.bptt(m, x, y), repeats)


def theirs(arch, T, B, I, H, dtype, repeats):
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[arch]
    net = cls(I, H).to(tdtype)
    ro = torch.nn.Linear(H, 1).to(tdtype)
    x = torch.randn(T, B, I, dtype=tdtype)
    y = torch.randn(T, B, 1, dtype=tdtype)

    def step():
        net.zero_grad(set_to_none=True)
        ro.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(ro(net(x)[0]), y)
        loss.backward()

    return median_time(step, repeats)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--arch", default="lstm", choices=["rnn", "lstm", "gru"])
    ap.add_argument("-T", type=int, default=256)
    ap.add_argument("-B", type=int, default=32)
    ap.add_argument("-I", type=int, default=16)
    ap.add_argument("-H", type=int, default=128)
    a = ap.parse_args()
    if torch is not None:
        torch.set_num_threads(2)
    print(f"{a.arch.upper()} T={a.T} B={a.B} I={a.I} H={a.H}, forward+backward, median of {a.repeats}")
    for dtype, target in [(np.float64, 1.0), (np.float32, 1.5)]:
        t_ours = ours(a.arch, a.T, a.B, a.I, a.H, dtype, a.repeats)
        line = f"  {np.dtype(dtype).name}: core.bptt {t_ours * 1e3:8.1f} ms"
        if torch is not None:
            t_torch = theirs(a.arch, a.T, a.B, a.I, a.H, dtype, a.repeats)
            ratio = t_ours / t_torch
            line += f"   torch {t_torch * 1e3:8.1f} ms   ratio {ratio:.2f}x (target <= {target}x)"
        print(line)
        t_diag = ours(a.arch, a.T, a.B, a.I, a.H, dtype, a.repeats, diagnostics=True)
        line = f"           + whh_grad_norms read {t_diag * 1e3:8.1f} ms"
        if torch is not None:
            line += f"   ratio {t_diag / t_torch:.2f}x"
        print(line)


if __name__ == "__main__":
    main()
