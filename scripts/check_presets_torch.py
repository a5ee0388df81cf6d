"""Recompute the numbers each preset's explanation quotes with PyTorch autograd in float64.

Run by hand (needs ``torch``, which the project does not depend on; the tests never import it):
    python scripts/check_presets_torch.py        # about 4 minutes on a loaded 2-core machine
    python scripts/check_presets_torch.py grad   # without the autograd Jacobians: seconds
For every preset and architecture it rebuilds the app's model and batch, runs the network step by
step with ``torch.nn.*Cell`` in float64 and compares with :mod:`visualizer.facts`:
||dL/dh_0|| / ||dL/dh_{T-1}|| (view 1), ||ds_{T-1}/ds_0|| (the Jacobians tab's last lag, batch
median), rho(W_hh) and the mean tanh' (plain RNNs), and the share of saturated sigmoid gates
(LSTM, GRU). Prints one line per quantity with the relative difference; exits 1 above TOL or when
the three digits an explanation prints differ.
"""
from __future__ import annotations

import sys

import numpy as np
import torch

from visualizer import compute, facts, presets
from visualizer.fmt import num

torch.set_default_dtype(torch.float64)
TOL = 1e-4  # an exploding network amplifies rounding: ~1e-6 apart after growing 1e10 (both float64)


def _cell(key, model):
    """A torch cell holding the model's (float64) weights."""
    H, I = key.hidden, model.config.input_size
    cls = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}.get(key.arch, torch.nn.RNNCell)
    kw = {} if key.arch in ("lstm", "gru") else {"nonlinearity": "relu" if key.arch == "rnn-relu" else "tanh"}
    cell = cls(I, H, **kw)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(torch.from_numpy(np.asarray(model.params[f"{name}_l0"], np.float64)))
    return cell


def _run(cell, arch, x, h0):
    """States h_t (t = 0..T-1) from h0 (and c for the LSTM); each h_t keeps its gradient."""
    h, c, hs, cs = h0, torch.zeros_like(h0), [], []
    for t in range(x.shape[0]):
        if arch == "lstm":
            h, c = cell(x[t], (h, c))
            cs.append(c)
        else:
            h = cell(x[t], h)
        h.retain_grad()
        hs.append(h)
    return hs, cs


def grad_ratio(key, model, task):
    """||dL/dh_0|| / ||dL/dh_{T-1}|| for a loss at the last step (the presets' setting)."""
    x = torch.from_numpy(np.asarray(task.x, np.float64))
    cell = _cell(key, model)
    hs, _ = _run(cell, key.arch, x, torch.zeros(x.shape[1], key.hidden))
    W, b = (torch.from_numpy(np.asarray(model.params[k], np.float64)) for k in ("readout.weight", "readout.bias"))
    y = torch.from_numpy(np.asarray(compute.targets(task, "last")[0], np.float64))
    loss = torch.nn.functional.mse_loss(hs[-1] @ W.T + b, y) if task.loss == "mse" else \
        torch.nn.functional.cross_entropy(hs[-1] @ W.T + b, y.long())
    loss.backward()
    return float(hs[0].grad.norm() / hs[-1].grad.norm())


def jacobian_last_lag(key, model, task):
    """Median over the analysed sequences of ||ds_{T-1}/ds_0|| (s = h, or [h; c] for the LSTM)."""
    x = torch.from_numpy(np.asarray(task.x, np.float64))[:, : compute.jacobian_batch(key)]
    cell = _cell(key, model)
    H, out = key.hidden, []
    for b in range(x.shape[1]):
        hs, cs = _run(cell, key.arch, x[:, b:b + 1], torch.zeros(1, H))
        s0 = torch.cat([hs[0], cs[0]], 1) if key.arch == "lstm" else hs[0]

        def step(s, b=b):
            h, c = (s[:, :H], s[:, H:]) if key.arch == "lstm" else (s, None)
            for t in range(1, x.shape[0]):
                if key.arch == "lstm":
                    h, c = cell(x[t, b:b + 1], (h, c))
                else:
                    h = cell(x[t, b:b + 1], h)
            return torch.cat([h, c], 1) if key.arch == "lstm" else h

        J = torch.autograd.functional.jacobian(step, s0.detach())[0, :, 0, :]
        out.append(float(torch.linalg.matrix_norm(J, 2)))
    return float(np.median(out))


def gate_share(key, model, task):
    """Share of sigmoid gate values beyond 0.05/0.95 (i, f, o or r, z)."""
    x = torch.from_numpy(np.asarray(task.x, np.float64))
    p = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in model.params.items()}
    H, h, c, sat = key.hidden, torch.zeros(x.shape[1], key.hidden), torch.zeros(x.shape[1], key.hidden), []
    for t in range(x.shape[0]):
        gi, gh = x[t] @ p["weight_ih_l0"].T + p["bias_ih_l0"], h @ p["weight_hh_l0"].T + p["bias_hh_l0"]
        if key.arch == "lstm":
            a = gi + gh
            i, f, g, o = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H]), torch.tanh(a[:, 2 * H:3 * H]), \
                torch.sigmoid(a[:, 3 * H:])
            c = f * c + i * g
            h = o * torch.tanh(c)
            gates = torch.stack([i, f, o])
        else:
            r, z = torch.sigmoid(gi[:, :H] + gh[:, :H]), torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            h = (1 - z) * n + z * h
            gates = torch.stack([r, z])
        sat.append(((gates < 0.05) | (gates > 0.95)).double().mean(dim=(1, 2)))
    return float(torch.stack(sat).mean())


def main(only=None) -> int:
    worst = 0.0
    for pkey, preset in presets.PRESETS.items():
        if preset.train_steps or preset.params.truncate:
            continue  # training and truncation quote settings and exact zeros, checked by the tests
        for arch in preset.params.arch:
            key = compute.run_key(preset.params, arch)
            model, task = compute.get_model(key), compute.get_task(key.data)
            checks = [("grad ratio", facts.grad_facts(key).ratio, grad_ratio(key, model, task))]
            if only != "grad":
                checks.append(("||ds_T-1/ds_0||", facts.jacobian_facts(key).at_last_lag,
                               jacobian_last_lag(key, model, task)))
            w = facts.weight_facts(key)
            if w.plain:
                W = torch.from_numpy(np.asarray(model.params["weight_hh_l0"], np.float64))
                checks.append(("rho(W_hh)", w.rho, float(torch.linalg.eigvals(W).abs().max())))
                checks.append(("sigma_1(W_hh)", w.sigma1, float(torch.linalg.matrix_norm(W, 2))))
            else:
                checks.append(("saturated gates", facts.gate_facts(key).total, gate_share(key, model, task)))
            for name, ours, theirs in checks:
                rel = abs(ours - theirs) / max(abs(theirs), 1e-300)
                worst = max(worst, rel if theirs != 0 else abs(ours))
                if num(ours) != num(theirs):
                    worst = max(worst, 1.0)
                    print(f"printed differently: {num(ours)} (core) against {num(theirs)} (torch)")
                print(f"{pkey:17s} {arch:8s} {name:16s} core {ours:.10g}  torch {theirs:.10g}  rel {rel:.1e}")
    print(f"worst relative difference {worst:.1e} (tolerance {TOL:g})")
    return 0 if worst <= TOL else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
