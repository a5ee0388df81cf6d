"""Optimisers (torch.optim formulas), global-norm clipping, parameter matching and the loop."""

import numpy as np
import pytest

import core


def _params(rng, scale=1.0):
    return {"w": scale * rng.standard_normal((3, 4)), "b": scale * rng.standard_normal(5)}


# ----------------------------------------------------------------------------- SGD
def test_sgd_momentum_by_hand():
    p, s = {"w": np.array([1.0])}, None
    p, s = core.sgd_step(p, {"w": np.array([0.5])}, s, lr=0.1, momentum=0.9)
    assert p["w"][0] == pytest.approx(0.95)  # buf = g = 0.5
    p, s = core.sgd_step(p, {"w": np.array([0.25])}, s, lr=0.1, momentum=0.9)
    assert p["w"][0] == pytest.approx(0.88)  # buf = 0.9 * 0.5 + 0.25 = 0.7
    assert s.step == 2 and s.buffers["momentum_buffer"]["w"][0] == pytest.approx(0.7)


@pytest.mark.parametrize("kw", [
    dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.5, dampening=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
])
def test_sgd_matches_torch_formulas(rng, kw):
    lr, mu = kw["lr"], kw.get("momentum", 0.0)
    tau, wd, nesterov = kw.get("dampening", 0.0), kw.get("weight_decay", 0.0), kw.get("nesterov", False)
    params = _params(rng)
    ref, bufs, state = {k: v.copy() for k, v in params.items()}, {}, None
    for t in range(4):
        grads = _params(rng)
        before = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in grads.items()}
        params, state = core.sgd_step(params, grads, state, **kw)
        for k in ref:  # torch.optim.SGD documentation, step t
            g = grads[k] + wd * ref[k]
            if mu != 0:
                bufs[k] = g if t == 0 else mu * bufs[k] + (1 - tau) * g
                g = g + mu * bufs[k] if nesterov else bufs[k]
            ref[k] = ref[k] - lr * g
            np.testing.assert_allclose(params[k], ref[k], rtol=1e-14, atol=1e-15)
            np.testing.assert_array_equal(grads[k], before[1][k])  # inputs untouched
    assert state.step == 4


# ----------------------------------------------------------------------------- Adam
def test_adam_first_step_moves_by_lr_times_sign():
    p = {"w": np.array([1.0, -2.0, 3.0])}
    g = {"w": np.array([0.3, -5.0, 1e-3])}
    new, s = core.adam_step(p, g, None, lr=0.01)
    # m_hat = g, v_hat = g^2: update = lr * g / (|g| + eps)
    np.testing.assert_allclose(new["w"], p["w"] - 0.01 * g["w"] / (np.abs(g["w"]) + 1e-8), rtol=1e-14)
    np.testing.assert_allclose(s.buffers["exp_avg"]["w"], 0.1 * g["w"], rtol=1e-14)
    np.testing.assert_allclose(s.buffers["exp_avg_sq"]["w"], 0.001 * g["w"] ** 2, rtol=1e-12)
    assert p["w"][0] == 1.0 and s.step == 1


@pytest.mark.parametrize("kw", [dict(lr=0.01), dict(lr=0.003, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)])
def test_adam_matches_torch_formulas(rng, kw):
    lr, (b1, b2) = kw["lr"], kw.get("betas", (0.9, 0.999))
    eps, wd = kw.get("eps", 1e-8), kw.get("weight_decay", 0.0)
    params = _params(rng)
    ref = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in ref.items()}
    v = {k: np.zeros_like(x) for k, x in ref.items()}
    state = None
    for t in range(1, 6):
        grads = _params(rng)
        params, state = core.adam_step(params, grads, state, **kw)
        for k in ref:  # torch.optim.Adam documentation (amsgrad=False, maximize=False)
            g = grads[k] + wd * ref[k]
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            m_hat, v_hat = m[k] / (1 - b1 ** t), v[k] / (1 - b2 ** t)
            ref[k] = ref[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
            np.testing.assert_allclose(params[k], ref[k], rtol=1e-12, atol=1e-14)
    assert state.step == 5


# ----------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_clip_matches_direct_global_norm(rng, scale):
    grads = _params(rng, scale)
    orig = {k: v.copy() for k, v in grads.items()}
    total = np.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
    max_norm = 2.0
    out, norm, clipped = core.clip_grad_norm(grads, max_norm)
    assert norm == pytest.approx(total, rel=1e-14)
    assert core.global_norm(grads) == pytest.approx(total, rel=1e-14)
    for k in grads:
        np.testing.assert_array_equal(grads[k], orig[k])  # never in place
        assert out[k] is not grads[k]
    if total > max_norm:
        assert clipped
        for k in grads:
            np.testing.assert_allclose(out[k], grads[k] * max_norm / (total + 1e-6), rtol=1e-14)
        assert core.global_norm(out) == pytest.approx(max_norm, rel=1e-6)
    else:
        assert not clipped
        for k in grads:
            np.testing.assert_array_equal(out[k], grads[k])


def test_clip_at_threshold_and_nonfinite():
    g = {"w": np.array([3.0, 4.0])}
    assert core.clip_grad_norm(g, 5.0)[2] is True  # torch: scale 5 / (5 + 1e-6) < 1 is applied
    assert core.clip_grad_norm(g, 5.1)[2] is False
    _out, norm, clipped = core.clip_grad_norm({"w": np.array([np.nan, 1.0])}, 1.0)
    assert np.isnan(norm) and not clipped
    with pytest.raises(ValueError, match="max_norm"):
        core.clip_grad_norm(g, 0.0)


# ----------------------------------------------------------------------------- parameter matching
@pytest.mark.parametrize("arch", ["rnn", "rnn-relu", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("target", [50, 1000, 12345])
def test_hidden_size_for_params_is_closest(arch, layers, target):
    count = lambda H: core.build(arch, input_size=3, hidden_size=H, output_size=2, num_layers=layers).num_parameters()  # noqa: E731
    H = core.hidden_size_for_params(arch, target, 3, 2, layers)
    # the count grows with H, so the closest is H itself when its neighbours are no closer
    assert abs(count(H) - target) <= abs(count(H + 1) - target)
    assert H == 1 or abs(count(H) - target) < abs(count(H - 1) - target)


def test_match_params_builds_comparable_models():
    counts = {}
    for arch in ("rnn", "lstm", "gru"):
        cfg = core.TrainConfig(arch=arch, match_params=3000, seq_len=20)
        m = core.build_model(cfg)
        counts[arch] = m.num_parameters()
    assert max(counts.values()) - min(counts.values()) < 0.1 * 3000
    with pytest.raises(ValueError, match="target"):
        core.hidden_size_for_params("lstm", 0, 2, 1)


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("field,value", [
    ("task", "nope"), ("arch", "transformer"), ("init", "zeros"), ("optimizer", "rmsprop"),
    ("dtype", "float16"), ("hidden_size", 0), ("num_layers", 1.5), ("steps", 0), ("batch_size", -1),
    ("seq_len", 0), ("snapshot_every", 0), ("jacobian_batch", 0), ("match_params", 0),
    ("truncate", 0), ("lag", 0), ("seed", -1), ("lr", 0.0), ("lr", float("nan")), ("momentum", 1.0),
    ("betas", (0.9,)), ("eps", 0.0), ("clip", -1.0), ("init_scale", -1.0), ("forget_bias", float("inf")),
    ("snapshot_params", 1), ("jacobians", "yes"), ("task_options", {"noise": 1}),
])
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        core.TrainConfig(**{field: value})


def test_config_checks_task_settings():
    with pytest.raises(ValueError, match="lag"):
        core.TrainConfig(task="adding", seq_len=10, lag=20)
    with pytest.raises(ValueError, match="noise"):
        core.TrainConfig(task="sine", task_options=(("noise", -1.0),))
    with pytest.raises(ValueError, match="forget_bias"):
        core.TrainConfig(arch="gru", forget_bias=1.0)
    core.TrainConfig(arch="lstm", forget_bias=1.0)


# ----------------------------------------------------------------------------- loop
def _small(**kw):
    base = dict(task="adding", arch="gru", hidden_size=6, seq_len=8, batch_size=4, steps=7, snapshot_every=3)
    return core.TrainConfig(**{**base, **kw})


def test_one_training_step_is_bptt_plus_optimiser():
    cfg = _small(steps=2, optimizer="sgd", lr=0.1, momentum=0.5, clip=0.5)
    model, state = core.build_model(cfg), None
    for step in (1, 2):
        t = core.make_task("adding", 8, 4, seed=(cfg.seed, step))
        res = core.bptt(model, t.x, t.y, t.loss, t.loss_on)
        grads, _, _ = core.clip_grad_norm(res.grads, 0.5)
        model.params, state = core.sgd_step(model.params, grads, state, lr=0.1, momentum=0.5)
    r = core.train(cfg)
    for k, v in model.params.items():
        np.testing.assert_array_equal(r.params[k], v)
    assert r.losses.shape == (2,) and r.losses[1] == res.loss


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_is_deterministic_by_seed(optimizer):
    a = core.train(_small(optimizer=optimizer, task="copy", seq_len=12))
    b = core.train(_small(optimizer=optimizer, task="copy", seq_len=12))
    c = core.train(_small(optimizer=optimizer, task="copy", seq_len=12, seed=1))
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.grad_norms, b.grad_norms)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(a.losses, c.losses)


@pytest.mark.parametrize("task", core.TASKS)
@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_snapshots_every_k_steps(task, arch):
    cfg = _small(task=task, arch=arch, num_layers=2, seq_len=12, snapshot_params=True)
    snaps = list(core.train_iter(cfg))
    assert [s.step for s in snaps] == [3, 6, 7]
    assert [s.done for s in snaps] == [False, False, True]
    for s in snaps:
        assert s.steps == 7 and not s.diverged
        assert s.losses.shape == s.grad_norms.shape == s.clip_flags.shape == (s.step,)
        assert s.loss == s.losses[-1] and s.grad_norm == s.grad_norms[-1]
        assert s.hidden_grad_norms.shape == (2, 12)
        assert (s.cell_grad_norms is not None) == (arch == "lstm")
        assert set(s.params) == set(core.build_model(cfg).params)
        if hasattr(core, "jacobian_norms"):
            assert s.jacobian_norms.shape == (2, 12) and np.all(s.jacobian_norms[:, -1] == pytest.approx(1.0))
        else:
            assert s.jacobian_norms is None
    full = core.train(cfg)
    np.testing.assert_array_equal(snaps[-1].losses, full.losses)
    np.testing.assert_array_equal(snaps[1].losses, full.losses[:6])
    assert snaps[-1].baseline_loss == full.baseline_loss > 0


def test_generator_stops_early_and_options_off():
    gen = core.train_iter(_small(steps=1000, snapshot_every=2, jacobians=False))
    first = next(gen)
    assert first.step == 2 and first.jacobian_norms is None and first.params is None
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)


def test_clip_flags_and_start_model():
    cfg = _small(clip=1e-3, steps=3, snapshot_every=1)
    start = core.build_model(cfg)
    before = start.state_dict()
    snaps = list(core.train_iter(cfg, start))
    assert all(s.clipped for s in snaps) and snaps[-1].clip_flags.tolist() == [True] * 3
    for k, v in start.params.items():
        np.testing.assert_array_equal(v, before[k])  # the given model is copied, not trained
    with pytest.raises(ValueError, match="input_size"):
        next(core.train_iter(cfg, core.build("gru", input_size=3, hidden_size=4)))


def test_truncation_changes_gradients():
    full = core.train(_small(seq_len=12, steps=2))
    trunc = core.train(_small(seq_len=12, steps=2, truncate=3))
    assert full.losses[0] == trunc.losses[0] and full.grad_norms[0] != trunc.grad_norms[0]


@pytest.mark.parametrize("kw,step", [
    # relu RNN with W_hh = 10 I: h grows like 10^t and overflows at the first step
    (dict(arch="rnn-relu", init="identity", init_scale=10.0, seq_len=400, steps=5), 1),
    # a huge SGD learning rate blows the weights up after a few updates
    (dict(task="sine", arch="rnn-relu", optimizer="sgd", lr=50.0, momentum=0.0, seq_len=30,
          hidden_size=8, steps=50, snapshot_every=5), 4),
])
def test_divergence_ends_gracefully(kw, step):
    snaps = list(core.train_iter(_small(**kw)))
    last = snaps[-1]
    assert last.diverged and last.done and last.step == step
    assert not np.isfinite(last.loss) or not np.isfinite(last.grad_norm)
    assert all(not s.diverged for s in snaps[:-1])
    r = core.train(_small(**kw))
    assert r.diverged_step == step and r.losses.shape == (step,)
    assert all(np.all(np.isfinite(v)) for v in r.params.values())  # the bad update was skipped


# ----------------------------------------------------------------------------- learning
@pytest.mark.slow
@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_adding_problem_is_learned(arch):
    cfg = core.TrainConfig(task="adding", arch=arch, hidden_size=16, seq_len=20, batch_size=32,
                           steps=1000, optimizer="adam", lr=0.01, clip=1.0, seed=0, jacobians=False)
    r = core.train(cfg)
    assert r.diverged_step is None
    model = core.build_model(cfg)
    model.load_state_dict(r.params)
    test = core.make_task("adding", 20, 500, seed=12345)  # fresh sequences
    loss = core.bptt(model, test.x, test.y, test.loss, test.loss_on).loss
    assert loss < 0.1 * test.baseline_loss  # baseline 1/6
    assert r.losses[:10].mean() > test.baseline_loss


def test_train_step_resumes_exactly():
    cfg = _small(steps=6, clip=0.5)
    model, state = core.build_model(cfg), None
    for step in range(1, 4):
        r = core.train_step(cfg, model, state, step)
        assert r.step == step and not r.diverged
        model = model.copy()
        model.params, state = r.params, r.opt_state
    snapshot = (model.state_dict(), state)  # stop here, continue from the stored state later
    resumed = model.copy()
    resumed.params, state = snapshot
    for step in range(4, 7):
        r = core.train_step(cfg, resumed, state, step)
        resumed.params, state = r.params, r.opt_state
    full = core.train(cfg)
    for k, v in full.params.items():
        np.testing.assert_array_equal(resumed.params[k], v)
    assert r.loss == full.losses[-1] and state.step == 6
