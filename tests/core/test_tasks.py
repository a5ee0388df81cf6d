"""Synthetic tasks: shapes, dtypes, determinism, value ranges, exact targets, baselines, errors."""
import numpy as np
import pytest

import core

SIZES = {"adding": (2, 1), "copy": (10, 9), "sine": (1, 1)}


def test_task_names():
    assert core.TASKS == ("adding", "copy", "sine", "chars")


@pytest.mark.parametrize("name", core.TASKS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_shapes_and_dtypes(name, dtype):
    T, B = 24, 5
    t = core.make_task(name, T, B, seed=3, dtype=dtype)
    assert t.name == name and (t.seq_len, t.batch_size) == (T, B)
    assert t.x.shape == (T, B, t.input_size) and t.x.dtype == dtype
    if name in SIZES:
        assert (t.input_size, t.output_size) == SIZES[name]
    if t.loss == "mse":
        lead = (B,) if t.loss_on == "last" else (T, B)
        assert t.y.shape == (*lead, t.output_size) and t.y.dtype == dtype
    else:
        assert t.y.shape == (T, B) and t.y.dtype == np.int64
        assert t.y.min() >= 0 and t.y.max() < t.output_size
    assert np.all(np.isfinite(t.x))
    assert t.baseline_loss > 0 and isinstance(t.description, str) and t.description


@pytest.mark.parametrize("name", core.TASKS)
def test_bptt_accepts_every_task(name):
    t = core.make_task(name, 12, 3, seed=0)
    m = core.build("gru", input_size=t.input_size, hidden_size=4, output_size=t.output_size)
    res = core.bptt(m, t.x, t.y, t.loss, t.loss_on)
    assert np.isfinite(res.loss)


@pytest.mark.parametrize("name", core.TASKS)
def test_deterministic_by_seed(name):
    a = core.make_task(name, 30, 4, seed=7)
    b = core.make_task(name, 30, 4, seed=7)
    c = core.make_task(name, 30, 4, seed=8)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)


@pytest.mark.parametrize("name", core.TASKS)
def test_sample_keeps_settings_and_draws_fresh_data(name):
    a = core.make_task(name, 30, 4, seed=1)
    b = a.sample((1, 5))
    ref = core.make_task(name, 30, 4, a.lag, seed=(1, 5), **{k: v for k, v in a.options.items()})
    assert (b.name, b.seq_len, b.batch_size, b.lag, b.options) == (a.name, a.seq_len, a.batch_size, a.lag, a.options)
    np.testing.assert_array_equal(b.x, ref.x)
    assert not np.array_equal(a.x, b.x)
    g1, g2 = np.random.default_rng(4), np.random.default_rng(4)
    np.testing.assert_array_equal(a.sample(g1).x, a.sample(g2).x)


# ----------------------------------------------------------------------------- adding
@pytest.mark.parametrize("T,lag", [(10, None), (20, 7), (50, 2), (9, 9)])
def test_adding_markers_and_exact_targets(T, lag):
    t = core.make_task("adding", T, 64, lag=lag, seed=2)
    lag = T if lag is None else lag
    values, markers = t.x[:, :, 0], t.x[:, :, 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers)) <= {0.0, 1.0}
    assert np.all(markers.sum(axis=0) == 2)
    start, half = T - lag, lag // 2
    for b in range(64):
        first, second = np.flatnonzero(markers[:, b])
        assert start <= first < start + half <= second < T
        assert t.y[b, 0] == values[first, b] + values[second, b]  # exactly
    assert (t.loss, t.loss_on, t.lag) == ("mse", "last", lag)


def test_adding_baseline_is_target_variance():
    t = core.make_task("adding", 10, 20000, seed=0)
    assert t.baseline_loss == pytest.approx(1 / 6)
    assert np.mean((t.y - 1.0) ** 2) == pytest.approx(1 / 6, rel=0.03)


# ----------------------------------------------------------------------------- copy
@pytest.mark.parametrize("T,lag,K", [(20, None, None), (30, 12, 4), (11, 6, 5), (40, 10, 1)])
def test_copy_layout(T, lag, K):
    kw = {} if K is None else {"num_symbols": K}
    t = core.make_task("copy", T, 16, lag=lag, seed=1, **kw)
    K, A = t.options["num_symbols"], t.options["alphabet"]
    lag = t.lag
    assert lag == (T - K if kw == {} else lag)
    assert np.all(t.x.sum(axis=2) == 1)  # one-hot
    tokens = t.x.argmax(axis=2)  # (T, B)
    start = T - K - lag
    symbols = tokens[start : start + K]
    assert np.all((symbols >= 1) & (symbols <= A))
    assert np.all(tokens[T - K - 1] == A + 1)  # delimiter
    others = np.ones(T, bool)
    others[start : start + K] = False
    others[T - K - 1] = False
    assert np.all(tokens[others] == 0)
    np.testing.assert_array_equal(t.y[T - K :], symbols)  # recalled exactly lag steps later
    assert np.all(t.y[: T - K] == 0)
    assert t.baseline_loss == pytest.approx(K * np.log(A) / T)
    assert (t.loss, t.loss_on, t.output_size, len(t.vocab)) == ("cross_entropy", "all", A + 1, A + 2)


# ----------------------------------------------------------------------------- sine
@pytest.mark.parametrize("lag", [2, 5, 16])
def test_sine_periodic_next_step(lag):
    t = core.make_task("sine", 40, 8, lag=lag, seed=4, noise=0.0)
    np.testing.assert_allclose(t.y[lag:], t.y[:-lag], atol=1e-12)  # period lag
    np.testing.assert_allclose(t.x[1:], t.y[:-1], atol=1e-15)  # y_t is the (clean) x_{t+1}
    assert np.all(np.abs(t.y) <= 3)


def test_sine_noise_and_baseline():
    t = core.make_task("sine", 60, 2000, lag=12, seed=5, noise=0.1)
    assert np.std(t.x[1:] - t.y[:-1]) == pytest.approx(0.1, rel=0.02)
    assert t.baseline_loss == pytest.approx(0.5)
    assert np.mean(t.y ** 2) == pytest.approx(0.5, rel=0.03)


# ----------------------------------------------------------------------------- chars
def test_chars_windows_come_from_the_corpus():
    text = core.load_corpus()
    assert len(text) > 3000 and text == text.lower()
    t = core.make_task("chars", 40, 6, seed=9)
    assert t.vocab == tuple(sorted(set(text))) and t.input_size == len(t.vocab) == t.output_size
    assert np.all(t.x.sum(axis=2) == 1)
    ids = t.x.argmax(axis=2)
    np.testing.assert_array_equal(t.y[:-1], ids[1:])  # next character
    for b in range(6):
        s = "".join(t.vocab[i] for i in ids[:, b]) + t.vocab[t.y[-1, b]]
        assert s in text
    freq = np.array([text.count(ch) for ch in t.vocab]) / len(text)
    assert t.baseline_loss == pytest.approx(-np.sum(freq * np.log(freq)))
    assert t.lag is None and core.make_task("chars", 40, 6, lag=5, seed=9).lag is None


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("args,kw,field", [
    (("nope", 10, 2), {}, "name"),
    (("adding", 0, 2), {}, "seq_len"),
    (("adding", 10, 0), {}, "batch_size"),
    (("adding", 10, 2.0), {}, "batch_size"),
    (("adding", 10, 2), {"lag": 11}, "lag"),
    (("adding", 10, 2), {"lag": 1}, "lag"),
    (("copy", 10, 2), {"lag": 8, "num_symbols": 3}, "seq_len"),
    (("copy", 10, 2), {"lag": 10}, "lag"),
    (("copy", 10, 2), {"lag": 3, "num_symbols": 3}, "lag"),
    (("copy", 2, 2), {}, "seq_len"),
    (("copy", 10, 2), {"alphabet": 0}, "alphabet"),
    (("sine", 10, 2), {"lag": 10}, "lag"),
    (("sine", 10, 2), {"noise": -1.0}, "noise"),
    (("chars", 10**6, 2), {}, "seq_len"),
    (("adding", 10, 2), {"noise": 0.1}, "option"),
    (("adding", 10, 2), {"seed": -1}, "seed"),
    (("adding", 10, 2), {"seed": 1.5}, "seed"),
    (("adding", 10, 2), {"dtype": np.int32}, "dtype"),
])
def test_errors_name_the_argument(args, kw, field):
    with pytest.raises(ValueError, match=field):
        core.make_task(*args, **kw)
