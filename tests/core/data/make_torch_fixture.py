"""Regenerate torch_trained.npz: small PyTorch models trained a few Adam steps, saved with np.savez.

Run once by hand (needs torch; the tests never import it):
    python tests/core/data/make_torch_fixture.py
Stores, per model, its state dict (PyTorch keys + readout.*), the batch it was evaluated on, and
PyTorch's loss and gradients on that batch.
"""
from pathlib import Path

import numpy as np
import torch

CASES = [  # name, module, kwargs, loss, loss_on
    ("lstm", torch.nn.LSTM, {}, "mse", "all"),
    ("gru", torch.nn.GRU, {}, "cross_entropy", "all"),
    ("rnn_tanh", torch.nn.RNN, {"nonlinearity": "tanh"}, "mse", "last"),
    ("rnn_relu", torch.nn.RNN, {"nonlinearity": "relu"}, "cross_entropy", "last"),
]
T, B, I, H, O, L = 12, 4, 3, 8, 3, 2


def main():
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)
    out = {}
    for name, cls, kw, loss, loss_on in CASES:
        rnn, readout = cls(I, H, L, **kw), torch.nn.Linear(H, O)
        params = list(rnn.parameters()) + list(readout.parameters())
        opt = torch.optim.Adam(params, lr=1e-2)
        x = torch.randn(T, B, I)
        if loss == "mse":
            y = torch.randn(T, B, O) if loss_on == "all" else torch.randn(B, O)
        else:
            y = torch.randint(0, O, (T, B) if loss_on == "all" else (B,))

        def objective(rnn=rnn, readout=readout, x=x, y=y, loss=loss, loss_on=loss_on):
            z = readout(rnn(x)[0])
            z = z if loss_on == "all" else z[-1]
            if loss == "mse":
                return torch.nn.functional.mse_loss(z, y)
            return torch.nn.functional.cross_entropy(z.reshape(-1, O), y.reshape(-1))

        for _ in range(20):
            opt.zero_grad()
            objective().backward()
            opt.step()
        opt.zero_grad()
        value = objective()
        value.backward()
        sd = {k: v.detach().numpy() for k, v in rnn.state_dict().items()}
        sd.update({f"readout.{k}": v.detach().numpy() for k, v in readout.state_dict().items()})
        for k, v in sd.items():
            out[f"{name}/state/{k}"] = v
        named = dict(rnn.named_parameters()) | {f"readout.{k}": v for k, v in readout.named_parameters()}
        for k, v in named.items():
            out[f"{name}/grad/{k}"] = v.grad.numpy()
        out[f"{name}/x"] = x.numpy()
        out[f"{name}/y"] = y.numpy()
        out[f"{name}/loss"] = np.array(value.item())
        out[f"{name}/meta"] = np.array([loss, loss_on, str(kw.get("nonlinearity", "tanh"))])
    np.savez(Path(__file__).with_name("torch_trained.npz"), **out)


if __name__ == "__main__":
    main()
