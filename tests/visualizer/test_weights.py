"""Uploaded weights: every bad file is rejected with a message naming the problem; good ones load."""
import builtins
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

import core
from tests.uploads import as_upload
from visualizer import npz as npz_reader
from visualizer import weights

FIXTURE = Path(__file__).parent.parent / "core" / "data" / "torch_trained.npz"


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def state(arch="lstm", H=5, I=3, O=2, L=2, seed=0):
    return core.build(arch, input_size=I, hidden_size=H, output_size=O, num_layers=L, seed=seed).state_dict()


@pytest.fixture(autouse=True)
def no_disk_writes(monkeypatch):
    """Fail any attempt to open a file for writing while a test runs."""
    real = builtins.open

    def guarded(file, mode="r", *args, **kw):
        if any(c in mode for c in "wax+"):
            raise AssertionError(f"wrote to disk: {file!r} ({mode})")
        return real(file, mode, *args, **kw)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io, "open", guarded)


def reject(contents, *words, filename=None):
    with pytest.raises(weights.WeightsError) as info:
        weights.load_weights(contents, filename)
    message = str(info.value)
    for w in words:
        assert w in message, message
    return message


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_good_file_from_pytorch_loads_with_same_gradients(arch):
    key = {"rnn": "rnn_tanh", "lstm": "lstm", "gru": "gru"}[arch]
    with np.load(FIXTURE) as z:
        sd = {k.split("/state/")[1]: z[k] for k in z.files if k.startswith(f"{key}/state/")}
        x, y = z[f"{key}/x"], z[f"{key}/y"]
        grads = {k.split("/grad/")[1]: z[k] for k in z.files if k.startswith(f"{key}/grad/")}
        loss = float(z[f"{key}/loss"])
    up = weights.load_weights(as_upload(npz(**sd)), "trained.npz")
    c = up.model.config
    assert (c.arch, c.hidden_size, c.num_layers, c.input_size, c.output_size) == (arch, 8, 2, 3, 3)
    assert "H=8" in up.summary and "2 layers" in up.summary
    kind = {"rnn": ("mse", "last"), "lstm": ("mse", "all"), "gru": ("cross_entropy", "all")}[arch]
    res = core.bptt(up.model, x, y, *kind)
    assert res.loss == pytest.approx(loss, rel=1e-10)
    for k, g in grads.items():
        np.testing.assert_allclose(res.grads[k], g, rtol=1e-8, atol=1e-12)


def test_round_trip_with_arch_entry_and_prefix():
    m = core.build("rnn-relu", input_size=2, hidden_size=4, output_size=1, num_layers=1, seed=3)
    up = weights.load_weights(weights.to_npz_bytes(m))
    assert up.arch == "rnn-relu" and up.model.config.nonlinearity == "relu"
    for k, v in m.params.items():
        np.testing.assert_array_equal(up.model.params[k], v)
    sd = state("gru", L=1)
    prefixed = {("rnn." + k if not k.startswith("readout") else k): v for k, v in sd.items()}
    up = weights.load_weights(npz(**prefixed))
    assert up.arch == "gru" and "prefix 'rnn.' removed" in up.summary
    assert weights.matching_tasks(core.build("lstm", input_size=2, hidden_size=3, output_size=1).config) == ["adding"]


def test_over_size_is_rejected_before_decoding(monkeypatch):
    monkeypatch.setattr(npz_reader, "MAX_BYTES", 1000)
    reject("data:application/octet-stream;base64," + "A" * 2000, "larger than", "limit")
    reject(b"PK\x03\x04" + bytes(1200), "larger than", "limit")


def test_not_an_npz():
    reject(as_upload(b"hello, this is a text file"), "not an .npz")
    reject(as_upload(b"\x93NUMPY" + bytes(20)), "single .npy")
    reject("data:application/octet-stream;base64,@@@not-base64@@@", "not valid base64")
    reject(None, "No file")
    reject(as_upload(npz(**state())), "not an .npz", filename="model.pt")
    reject(as_upload(b"PK\x03\x04" + b"garbage" * 10), "damaged")


def test_pickled_object_arrays_are_never_loaded():
    data = npz(**state(), evil=np.array([{"a": 1}], dtype=object))
    reject(as_upload(data), "'evil'", "pickled")


def test_zip_with_other_members_or_too_large_content(monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("weight_hh_l0.npy", b"x")
        zf.writestr("run.sh", b"rm -rf /")
    reject(as_upload(buf.getvalue()), "'run.sh'", "not a .npy")
    bomb = io.BytesIO()
    np.savez_compressed(bomb, weight_hh_l0=np.zeros((3000, 3000)))  # 72 MB of zeros, a few kB packed
    monkeypatch.setattr(npz_reader, "MAX_UNCOMPRESSED", 10 * 2**20)
    reject(as_upload(bomb.getvalue()), "unpack to", "limit")


@pytest.mark.parametrize("change, words", [
    (lambda s: s.pop("weight_hh_l0"), ["Missing key 'weight_hh_l0'"]),
    (lambda s: s.pop("bias_hh_l1"), ["Missing key 'bias_hh_l1'"]),
    (lambda s: s.pop("readout.weight"), ["Missing key 'readout.weight'"]),
    (lambda s: s.pop("readout.bias"), ["Missing key 'readout.bias'"]),
    (lambda s: s.update(extra=np.zeros(3)), ["Unexpected key 'extra'"]),
    (lambda s: s.update(weight_hh_l0_reverse=np.zeros((20, 5))), ["Bidirectional"]),
    (lambda s: s.update(arch=np.array("gru")), ["'arch'", "LSTM"]),
    (lambda s: s.update(arch=np.array("transformer")), ["'arch'", "transformer"]),
])
def test_wrong_keys(change, words):
    s = state()
    change(s)
    reject(as_upload(npz(**s)), *words)


@pytest.mark.parametrize("key, shape, words", [
    ("weight_hh_l0", (20, 4), ["'weight_hh_l0'", "(20, 4)"]),
    ("weight_hh_l0", (10, 5), ["'weight_hh_l0'", "G = 1"]),
    ("weight_ih_l1", (20, 3), ["'weight_ih_l1'", "(20, 3)", "(20, 5)"]),
    ("bias_ih_l0", (19,), ["'bias_ih_l0'", "(19,)"]),
    ("readout.weight", (2, 4), ["'readout.weight'", "(2, 4)", "(2, 5)"]),
    ("readout.bias", (3,), ["'readout.bias'", "(3,)", "(2,)"]),
])
def test_wrong_shapes(key, shape, words):
    s = state()
    s[key] = np.zeros(shape)
    reject(as_upload(npz(**s)), *words)


def test_non_finite_and_non_numeric_weights():
    s = state()
    s["weight_hh_l1"][3, 2] = np.nan
    reject(as_upload(npz(**s)), "'weight_hh_l1'", "NaN", "(3, 2)")
    s = state()
    s["bias_ih_l0"][4] = -np.inf
    reject(as_upload(npz(**s)), "'bias_ih_l0'", "inf")
    s = state()
    s["readout.bias"] = s["readout.bias"].astype(complex)
    reject(as_upload(npz(**s)), "'readout.bias'", "complex")
    s = state()
    s["readout.bias"] = np.array(["a", "b"])
    reject(as_upload(npz(**s)), "'readout.bias'", "real numbers")
