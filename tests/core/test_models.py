"""Models: PyTorch-compatible state dicts, initialisation options and input validation."""
from pathlib import Path

import numpy as np
import pytest

import core
from core.models import parameter_count

FIXTURE = Path(__file__).with_name("data") / "torch_trained.npz"


def load_fixture(name):
    d = np.load(FIXTURE, allow_pickle=False)
    state = {k.split("/", 2)[2]: d[k] for k in d.files if k.startswith(f"{name}/state/")}
    grads = {k.split("/", 2)[2]: d[k] for k in d.files if k.startswith(f"{name}/grad/")}
    loss, loss_on, nonlinearity = (str(s) for s in d[f"{name}/meta"])
    return state, grads, d[f"{name}/x"], d[f"{name}/y"], float(d[f"{name}/loss"]), loss, loss_on, nonlinearity


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_pytorch_trained_state_dict_loads_and_gives_the_same_loss_and_grads(name):
    state, grads, x, y, torch_loss, loss, loss_on, nonlinearity = load_fixture(name)
    arch = name.split("_")[0]
    H, I = state["weight_hh_l0"].shape[1], state["weight_ih_l0"].shape[1]
    model = core.build(arch, input_size=I, hidden_size=H, output_size=state["readout.bias"].shape[0],
                       num_layers=2, nonlinearity=nonlinearity, seed=99)
    model.load_state_dict(state)
    res = core.bptt(model, x, y, loss=loss, loss_on=loss_on)
    assert res.loss == pytest.approx(torch_loss, rel=1e-12)
    assert set(grads) == set(res.grads)
    for k, g in grads.items():
        np.testing.assert_allclose(res.grads[k], g, rtol=1e-9, atol=1e-14)


def test_state_dict_round_trip_and_copy_semantics():
    m = core.LSTM(input_size=3, hidden_size=16, output_size=1, num_layers=2, seed=0, dtype=np.float64)
    sd = m.state_dict()
    assert list(sd) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
                        "readout.weight", "readout.bias"]
    assert sd["weight_ih_l0"].shape == (64, 3) and sd["weight_hh_l1"].shape == (64, 16)
    assert sd["weight_ih_l1"].shape == (64, 16) and sd["readout.weight"].shape == (1, 16)
    sd["weight_hh_l0"][:] = 0.0  # a copy: the model is unchanged
    assert np.any(m.params["weight_hh_l0"] != 0)
    m2 = core.LSTM(input_size=3, hidden_size=16, output_size=1, num_layers=2, seed=1)
    m2.load_state_dict(m.state_dict())
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(m2.params[k], v)


@pytest.mark.parametrize("arch,G", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_shapes_follow_pytorch(arch, G):
    m = core.build(arch, input_size=5, hidden_size=7, output_size=2, num_layers=3)
    shapes = {k: v.shape for k, v in m.state_dict().items()}
    assert shapes["weight_ih_l0"] == (G * 7, 5)
    assert shapes["weight_ih_l2"] == (G * 7, 7)
    assert shapes["bias_hh_l1"] == (G * 7,)
    assert shapes["readout.bias"] == (2,)
    assert m.num_parameters() == sum(np.prod(s) for s in shapes.values())
    I, H, O, L = 5, 7, 2, 3
    closed_form = G * H * (I + H + 2) + (L - 1) * G * H * (2 * H + 2) + O * H + O
    assert parameter_count(m.config) == m.num_parameters() == closed_form


def test_load_state_dict_names_the_bad_key():
    m = core.GRU(input_size=2, hidden_size=4, output_size=1)
    sd = m.state_dict()
    with pytest.raises(ValueError, match="weight_hh_l0"):
        m.load_state_dict({k: v for k, v in sd.items() if k != "weight_hh_l0"})
    with pytest.raises(ValueError, match="weight_hh_l1"):
        m.load_state_dict({**sd, "weight_hh_l1": sd["weight_hh_l0"]})
    with pytest.raises(ValueError, match="bias_ih_l0"):
        m.load_state_dict({**sd, "bias_ih_l0": np.zeros(5)})
    with pytest.raises(ValueError, match=r"readout\.weight"):
        m.load_state_dict({**sd, "readout.weight": np.full((1, 4), np.nan)})


def test_pytorch_default_init_is_uniform_within_bound():
    m = core.LSTM(input_size=3, hidden_size=64, output_size=2, seed=3)
    bound = 1 / np.sqrt(64)
    for v in m.params.values():
        assert np.all(np.abs(v) <= bound)
    assert np.max(np.abs(m.params["weight_hh_l0"])) > 0.9 * bound
    again = core.LSTM(input_size=3, hidden_size=64, output_size=2, seed=3)
    np.testing.assert_array_equal(again.params["weight_hh_l0"], m.params["weight_hh_l0"])
    other = core.LSTM(input_size=3, hidden_size=64, output_size=2, seed=4)
    assert np.any(other.params["weight_hh_l0"] != m.params["weight_hh_l0"])


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_orthogonal_identity_and_normal_inits(arch):
    H = 16
    G = core.models.GATES[arch]
    m = core.build(arch, input_size=2, hidden_size=H, output_size=1, init="orthogonal", scale=1.5)
    for g in range(G):
        W = m.params["weight_hh_l0"][g * H : (g + 1) * H]
        np.testing.assert_allclose(W @ W.T, 2.25 * np.eye(H), atol=1e-12)
    m = core.build(arch, input_size=2, hidden_size=H, output_size=1, init="identity", scale=0.9)
    for g in range(G):
        np.testing.assert_array_equal(m.params["weight_hh_l0"][g * H : (g + 1) * H], 0.9 * np.eye(H))
    assert np.all(m.params["bias_hh_l0"] == 0) and np.all(m.params["bias_ih_l0"] == 0)
    m = core.build(arch, input_size=2, hidden_size=H, output_size=1, init="normal", scale=1.2)
    for g in range(G):
        rho = np.max(np.abs(np.linalg.eigvals(m.params["weight_hh_l0"][g * H : (g + 1) * H])))
        assert rho == pytest.approx(1.2, rel=1e-10)


def test_lstm_forget_bias():
    m = core.LSTM(input_size=2, hidden_size=5, output_size=1, num_layers=2, forget_bias=1.0)
    for l in range(2):
        np.testing.assert_array_equal(m.params[f"bias_ih_l{l}"][5:10], 1.0)
        np.testing.assert_array_equal(m.params[f"bias_hh_l{l}"][5:10], 0.0)


def test_float32_models():
    m = core.GRU(input_size=2, hidden_size=5, output_size=1, dtype=np.float32)
    assert all(v.dtype == np.float32 for v in m.params.values())


@pytest.mark.parametrize("kwargs,field", [
    ({"hidden_size": 0}, "hidden_size"),
    ({"hidden_size": -3}, "hidden_size"),
    ({"input_size": 2.5}, "input_size"),
    ({"num_layers": 0}, "num_layers"),
    ({"output_size": 0}, "output_size"),
    ({"init": "xavier"}, "init"),
    ({"scale": -1.0}, "scale"),
    ({"scale": float("nan")}, "scale"),
    ({"dtype": np.int32}, "dtype"),
    ({"seed": -1}, "seed"),
    ({"nonlinearity": "sigmoid"}, "nonlinearity"),
    ({"forget_bias": 1.0}, "forget_bias"),  # RNN has no forget gate
])
def test_bad_model_arguments_name_the_field(kwargs, field):
    args = {"input_size": 2, "hidden_size": 4, "output_size": 1, **kwargs}
    with pytest.raises(ValueError, match=field):
        core.RNN(**args)


def test_build_by_name():
    assert core.build("rnn-relu", input_size=1, hidden_size=2).name == "RNN-relu"
    assert core.build("RNN", input_size=1, hidden_size=2).name == "RNN"
    assert core.build("lstm", input_size=1, hidden_size=2).name == "LSTM"
    assert core.build("gru", input_size=1, hidden_size=2).name == "GRU"
    with pytest.raises(ValueError, match="arch"):
        core.build("transformer", input_size=1, hidden_size=2)
    for cls in (core.LSTM, core.GRU):
        with pytest.raises(ValueError, match="nonlinearity applies to arch='rnn' only, got 'relu'"):
            cls(input_size=1, hidden_size=2, nonlinearity="relu")


def _model():
    return core.LSTM(input_size=3, hidden_size=4, output_size=2)


@pytest.mark.parametrize("x,y,kw,field", [
    (np.zeros((5, 2, 4)), np.zeros((5, 2, 2)), {}, "x"),  # wrong input size
    (np.zeros((5, 2)), np.zeros((5, 2, 2)), {}, "x"),  # wrong ndim
    (np.zeros((0, 2, 3)), np.zeros((0, 2, 2)), {}, "x"),  # T = 0
    (np.full((5, 2, 3), np.nan), np.zeros((5, 2, 2)), {}, "x"),
    (np.array([[["a", "b", "c"]]]), np.zeros((1, 1, 2)), {}, "x"),
    (np.zeros((5, 2, 3)), np.zeros((5, 2, 1)), {}, "y"),
    (np.zeros((5, 2, 3)), np.full((5, 2, 2), np.inf), {}, "y"),
    (np.zeros((5, 2, 3)), np.zeros((5, 2, 2)), {"loss_on": "last"}, "y"),
    (np.zeros((5, 2, 3)), np.zeros((5, 2)), {"loss": "cross_entropy"}, "y"),  # floats
    (np.zeros((5, 2, 3)), np.full((5, 2), 2), {"loss": "cross_entropy"}, "y"),  # id out of range
    (np.zeros((5, 2, 3)), np.full((5, 2), -1), {"loss": "cross_entropy"}, "y"),
    (np.zeros((5, 2, 3)), np.zeros((5, 2, 2)), {"loss": "hinge"}, "loss"),
    (np.zeros((5, 2, 3)), np.zeros((5, 2, 2)), {"loss_on": "first"}, "loss_on"),
    (np.zeros((5, 2, 3)), np.zeros((5, 2, 2)), {"truncate": 0}, "truncate"),
    (np.zeros((5, 2, 3)), np.zeros((5, 2, 2)), {"truncate": 2.5}, "truncate"),
])
def test_bad_bptt_inputs_name_the_argument(x, y, kw, field):
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        core.bptt(_model(), x, y, **kw)
