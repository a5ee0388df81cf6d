"""The app's resumable training loop equals core.train_iter; checkpoints resume exactly."""
import base64
import io
import json
from dataclasses import replace

import numpy as np
import pytest

import core
from tests.visualizer.clock import Clock
from visualizer import training
from visualizer.urlstate import Params

SMALL = Params(arch=("rnn", "lstm", "gru"), seq_len=12, hidden=6, batch=3)


@pytest.mark.parametrize("params", [
    SMALL,
    replace(SMALL, arch=("rnn-relu",), optimizer="sgd", lr=0.5, clip=0.1, init="identity"),
    replace(SMALL, arch=("lstm",), layers=2, forget_bias=1.0, truncate=5, task="sine", loss_on="all"),
    replace(SMALL, arch=("gru",), task="copy", seq_len=16, match_params=True),
])
def test_train_step_equals_core_train_iter(params):
    for arch in params.arch:
        config = training.train_config(params, arch, 8)
        snaps = list(core.train_iter(replace(config, snapshot_every=1)))
        state, model = training.initial_state(config), core.build_model(config)
        for snap in snaps:
            state = training.train_step(config, model, state)
            assert state.step == snap.step
            np.testing.assert_array_equal(state.losses, snap.losses)
            np.testing.assert_array_equal(state.grad_norms, snap.grad_norms)
            np.testing.assert_array_equal(state.clip_flags, snap.clip_flags)
            np.testing.assert_array_equal(state.hidden_grad_norms, snap.hidden_grad_norms)
        assert training.finished(config, state)


def test_diverging_run_stops_like_core():
    p = replace(SMALL, arch=("rnn-relu",), init="identity", scale=1.0, optimizer="sgd", lr=10.0, seq_len=50)
    config = training.train_config(p, "rnn-relu", 50)
    last = list(core.train_iter(config))[-1]
    assert last.diverged
    state, model = training.initial_state(config), core.build_model(config)
    while not training.finished(config, state):
        state = training.train_step(config, model, state)
    assert state.diverged and state.step == last.step
    again = training.train_step(config, model, state)
    np.testing.assert_array_equal(state.params["weight_hh_l0"], again.params["weight_hh_l0"])


def test_train_config_follows_the_app_params():
    p = replace(Params(), clip=2.0, truncate=500, forget_bias=1.5, init="pytorch", scale=3.0, optimizer="sgd")
    c = training.train_config(p, "lstm", 5000)
    assert (c.clip, c.truncate, c.forget_bias, c.init_scale, c.steps) == (2.0, None, 1.5, 1.0, training.MAX_STEPS)
    assert training.train_config(p, "gru", 10).forget_bias is None
    assert training.clamp_steps("x") == training.DEFAULT_STEPS and training.clamp_steps(-3) == 1
    assert training.clamp_steps(float("nan")) == training.DEFAULT_STEPS
    assert training.record_every(300) == 3 and training.record_every(50) == 1
    assert training.run_key(p, 10) != training.run_key(replace(p, lr=0.5), 10)
    assert training.run_key(p, 10) == training.run_key(replace(p, view="spectra", loss_on="all"), 10)


def test_json_floats_round_trip_with_non_finite_values():
    a = np.array([[1.0, np.inf, -np.inf, np.nan, 0.0, -2.5e-300, 123456789.0]])
    out = training.jlist(a)
    json.dumps(out, allow_nan=False)  # strict JSON
    back = training.unjson(out)
    np.testing.assert_allclose(back, a, rtol=10.0 ** (1 - training.DIGITS), equal_nan=True)
    assert training.jfloat(np.nan) == "nan" and training.jfloat(3) == 3.0


def test_a_checkpoint_over_the_limit_is_known_from_its_sizes_before_encoding(monkeypatch):
    small = {a: training.initial_state(training.train_config(SMALL, a, 6)) for a in SMALL.arch}
    text = training.encode_checkpoint(small)
    assert training.encode_checkpoint(small, training.CHECKPOINT_MAX_CHARS) == text
    assert training.encode_checkpoint(small, len(text) - 1) is None  # the exact length is checked too
    big_params = replace(SMALL, arch=("lstm",), hidden=256, layers=2)  # ~0.8M parameters, x3 with Adam's buffers
    big = {"lstm": training.initial_state(training.train_config(big_params, "lstm", 6))}
    big["lstm"] = training.train_step(training.train_config(big_params, "lstm", 6),
                                      core.build_model(training.train_config(big_params, "lstm", 6)), big["lstm"])

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoded a checkpoint that cannot be sent")
    monkeypatch.setattr(training.np, "savez", no_encoding)
    assert training.encode_checkpoint(big, training.CHECKPOINT_MAX_CHARS) is None
    out = training.run_job(None, big_params, 1, 1)
    assert out["status"] == "done" and out["checkpoint"] is None


def test_checkpoint_round_trip_and_rejects_tampering():
    configs = {a: training.train_config(SMALL, a, 6) for a in SMALL.arch}
    states = {}
    for arch, config in configs.items():
        s, m = training.initial_state(config), core.build_model(config)
        for _ in range(3):
            s = training.train_step(config, m, s)
        states[arch] = s
    text = training.encode_checkpoint(states)
    back = training.decode_checkpoint(text, configs)
    for arch, s in states.items():
        b = back[arch]
        assert b.step == s.step and b.opt.step == s.opt.step
        for k in s.params:
            np.testing.assert_array_equal(b.params[k], s.params[k])
        for kind in s.opt.buffers:
            for k in s.params:
                np.testing.assert_array_equal(b.opt.buffers[kind][k], s.opt.buffers[kind][k])
    bigger = {a: training.train_config(replace(SMALL, hidden=7), a, 6) for a in SMALL.arch}
    assert training.decode_checkpoint(text, bigger) is None  # shapes checked
    assert training.decode_checkpoint("not base64!", configs) is None
    assert training.decode_checkpoint(base64.b64encode(b"PK\x03\x04junk").decode(), configs) is None
    buf = io.BytesIO()
    np.savez(buf, x=np.array([{"a": 1}], dtype=object))
    assert training.decode_checkpoint(base64.b64encode(buf.getvalue()).decode(), configs) is None  # no pickle
    assert training.decode_checkpoint("A" * (training.CHECKPOINT_MAX_CHARS + 4), configs) is None
    # compressed members (a deflate bomb could hide there) and unknown zip versions are refused
    buf = io.BytesIO()
    np.savez_compressed(buf, **{"rnn/losses": np.zeros(10_000_000)})  # 80 MB of zeros in ~80 kB
    assert len(buf.getvalue()) < 200_000
    assert training.decode_checkpoint(base64.b64encode(buf.getvalue()).decode(), configs) is None
    raw = bytearray(base64.b64decode(text))
    raw[4:6] = (99).to_bytes(2, "little")  # "version needed to extract" of the first member
    raw[raw.find(b"PK\x01\x02") + 6: raw.find(b"PK\x01\x02") + 8] = (99).to_bytes(2, "little")
    assert training.decode_checkpoint(base64.b64encode(bytes(raw)).decode(), configs) is None


def test_progress_histories_stay_for_a_poll_to_read_them():
    # a poll reads only the newest payload: histories in one payload, overwritten 0.03 s later,
    # mostly never reached the browser (the loss figure stayed empty); now they stay for history_hold
    tick, hold = 0.031, 0.25
    progress = []
    training.run_job(progress.append, SMALL, 80, 80, clock=Clock(tick), history_hold=hold)
    flags = [p["full"] for p in progress]
    assert flags[0] and not all(flags)  # the first payload has them; most traffic still does not
    runs, n = [], 0
    for f in [*flags, False]:
        if f:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    assert len(runs) >= 3 and all((r - 1) * tick >= hold - tick for r in runs[:-1]), runs
    full = [p for p in progress if p["full"]]
    assert all(len(h["losses"]) == h["step"] for p in full for h in p["archs"].values())
    assert all("losses" not in h for p in progress if not p["full"] for h in p["archs"].values())


def test_job_reports_progress_and_resumes_exactly_after_a_pause():
    steps = 9
    whole = training.run_job(None, SMALL, steps, steps, clock=Clock(0.01))
    assert whole["status"] == "done" and whole["every"] == 1
    progress = []
    first = training.run_job(progress.append, SMALL, steps, 6, clock=Clock(0.7))
    assert first["status"] == "paused" and progress and all(p["status"] == "running" for p in progress)
    assert all(len(p["snaps"]) <= training.WINDOW for p in progress)
    assert first["checkpoint"]["step"] == 6
    # resume from an older checkpoint (as after a Pause): the job replays the steps after it silently
    sent = [p["checkpoint"] for p in progress if p["checkpoint"]]
    assert 0 < len(sent) <= 2 * training.CHECKPOINT_WRITES  # not in every payload
    older = next(c for c in sent if c["step"] < 6)
    rest = training.run_job(None, SMALL, steps, steps, start_step=6, checkpoint=older["data"],
                            run_id=first["run"], clock=Clock(0.01))
    assert rest["run"] == first["run"] and rest["status"] == "done"
    assert min(s["step"] for s in rest["snaps"]) == 7  # nothing before the start is re-sent
    for arch in SMALL.arch:
        assert rest["archs"][arch]["losses"] == whole["archs"][arch]["losses"]
        assert rest["archs"][arch]["grad_norms"] == whole["archs"][arch]["grad_norms"]
    merged = {(s["arch"], s["step"]): s for s in first["snaps"] + rest["snaps"]}
    assert merged == {(s["arch"], s["step"]): s for s in whole["snaps"]}
    json.dumps(rest, allow_nan=False)


def test_job_records_at_most_max_recorded_snapshots():
    p = replace(SMALL, arch=("rnn",), seq_len=5, hidden=3, batch=1)
    res = training.run_job(None, p, 250, 250, clock=Clock(0.001))
    every = training.record_every(250)
    assert [s["step"] for s in res["snaps"]] == [*range(every, 251, every), 250]  # and the last
    assert len(res["snaps"]) <= training.MAX_RECORDED + 1
    assert res["live"][0]["step"] == 250
    assert len(res["archs"]["rnn"]["losses"]) == 250
