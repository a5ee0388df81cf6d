"""Property-based: the binary payloads a client can send (an uploaded .npz, a training
checkpoint sent back from the browser) never raise anything but their own error, and are
never decompressed without a bound.
"""
from __future__ import annotations

import base64
import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import core
from tests.uploads import peak_mb
from visualizer import ids, training, training_ui, weights
from visualizer.urlstate import Params

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow],
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])
PARAMS = Params(arch=("rnn", "gru"), seq_len=6, hidden=3, batch=2)
CONFIGS = {a: training.train_config(PARAMS, a, 20) for a in PARAMS.arch}


def valid_npz() -> bytes:
    m = core.build("lstm", input_size=2, hidden_size=3, output_size=1, seed=0)
    buf = io.BytesIO()
    np.savez(buf, **m.state_dict())
    return buf.getvalue()


def valid_checkpoint() -> str:
    states = {a: training.initial_state(c) for a, c in CONFIGS.items()}
    return training.encode_checkpoint(states)


def mutated(data: bytes, flips, cut):
    """``data`` with some bytes replaced and maybe truncated."""
    b = bytearray(data)
    for pos, value in flips:
        b[pos % len(b)] = value
    return bytes(b[: cut % (len(b) + 1)] if cut is not None else b)


flips = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6)


@SETTINGS
@given(data=st.one_of(st.binary(max_size=2000), st.builds(mutated, st.just(valid_npz()), flips,
                                                          st.none() | st.integers(0, 10**6))))
def test_any_bytes_as_weights(data):
    try:
        up = weights.load_weights(data, "x.npz")
    except weights.WeightsError as e:
        assert str(e)
    else:
        assert up.model.num_parameters() > 0


@SETTINGS
@given(text=st.one_of(st.none(), st.integers(), st.text(max_size=200), st.binary(max_size=300).map(
    lambda b: base64.b64encode(b).decode()), st.builds(
    lambda flips_, cut: base64.b64encode(mutated(base64.b64decode(valid_checkpoint()), flips_, cut)).decode(),
    flips, st.none() | st.integers(0, 10**6))))
def test_any_checkpoint_text(text):
    states = training.decode_checkpoint(text, CONFIGS)
    assert states is None or set(states) == set(CONFIGS)


def test_a_checkpoint_with_an_unknown_zip_version():
    data = bytearray(base64.b64decode(valid_checkpoint()))
    central = data.rfind(b"PK\x01\x02")  # the last central-directory entry: "version needed" = 6.4
    data[central + 6] = 64
    assert training.decode_checkpoint(base64.b64encode(bytes(data)).decode(), CONFIGS) is None


@SETTINGS
@given(status=st.one_of(st.none(), st.integers(), st.text(max_size=10), st.dictionaries(
           st.sampled_from(["key", "step", "done", "run"]),
           st.one_of(st.none(), st.integers(-5, 10**9), st.text(max_size=5), st.booleans()), max_size=4)),
       checkpoint=st.one_of(st.none(), st.text(max_size=10), st.dictionaries(
           st.sampled_from(["run", "data", "step"]), st.one_of(st.none(), st.text(max_size=5)), max_size=3)),
       steps=st.one_of(st.none(), st.integers(-10**9, 10**9), st.floats(), st.text(max_size=6)),
       trigger=st.sampled_from([ids.TRAIN_PLAY, ids.TRAIN_STEP, None, "x"]))
def test_any_training_plan(status, checkpoint, steps, trigger):
    """Where a job would start and stop, for any status / checkpoint / steps a client sends."""
    try:
        plan = training_ui.plan(trigger, PARAMS, training.clamp_steps(steps), status, checkpoint)
    except (ValueError, TypeError) as e:  # a rejected value must say which
        pytest.fail(f"plan raised {e!r}")
    assert 1 <= plan["target"] <= training.MAX_STEPS


def deflate_bomb(member: str, megabytes: int) -> bytes:
    """A zip whose one .npy member inflates to ``megabytes`` MB of zeros."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        header = io.BytesIO()
        n = megabytes * 2**20 // 8
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (n,)})
        with zf.open(member, "w", force_zip64=True) as f:
            f.write(header.getvalue())
            chunk = bytes(2**20)
            for _ in range(megabytes):
                f.write(chunk)
    return buf.getvalue()


def test_an_uploaded_deflate_bomb_is_not_inflated():
    data = deflate_bomb("weight_hh_l0.npy", 300)
    assert len(data) < weights.MAX_BYTES

    def load():
        with pytest.raises(weights.WeightsError):
            weights.load_weights(data, "x.npz")

    assert peak_mb(load) < 50


def test_a_checkpoint_deflate_bomb_is_not_inflated():
    text = base64.b64encode(deflate_bomb("rnn/losses.npy", 300)).decode()
    assert len(text) < training.CHECKPOINT_MAX_CHARS
    assert peak_mb(lambda: training.decode_checkpoint(text, CONFIGS)) < 50
