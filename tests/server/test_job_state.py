"""Job state held by the browser (status, checkpoint, steps) may be forged: a message, never a failed job."""
from __future__ import annotations

import base64
import io
import zipfile

import numpy as np
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from visualizer import ids, storage, training, training_ui
from visualizer.urlstate import Params

SMALL = Params(arch=("rnn",), seq_len=8, hidden=4, batch=2)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("BPTTLAB_REDIS_URL", raising=False)
    context_value.set(AttributeDict(triggered_inputs=[{"prop_id": f"{ids.TRAIN_PLAY}.n_clicks", "value": 1}]))


def npz_with_header(shape, dtype="<f8", data=b"\0" * 8) -> str:
    """A stored (uncompressed) checkpoint whose one member's header declares ``shape``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
        zf.writestr("rnn/step.npy", header.getvalue() + data)
    return base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize("shape", [(10**6, 10**6), (2**62,), (10**9, 10**9, 10**9)])
def test_a_checkpoint_header_declaring_a_huge_shape_is_refused_before_allocating(shape):
    configs = {"rnn": training.train_config(SMALL, "rnn", 10)}
    assert training.decode_checkpoint(npz_with_header(shape), configs) is None


def test_a_checkpoint_with_object_dtype_or_short_data_is_refused():
    configs = {"rnn": training.train_config(SMALL, "rnn", 10)}
    assert training.decode_checkpoint(npz_with_header((1,), "|O"), configs) is None
    assert training.decode_checkpoint(npz_with_header((3,), data=b"\0" * 8), configs) is None


def test_a_real_checkpoint_still_decodes():
    configs = {"rnn": training.train_config(SMALL, "rnn", 10)}
    states = {"rnn": training.initial_state(configs["rnn"])}
    decoded = training.decode_checkpoint(training.encode_checkpoint(states), configs)
    assert decoded is not None and decoded["rnn"].step == 0


@pytest.mark.parametrize("step", ["x", None, [], {}, 1e300, float("nan"), -5, 2.5, 10**400, True])
def test_a_forged_status_step_starts_over(step):
    steps = 20
    status = {"key": training.run_key(SMALL, steps), "step": step, "run": "r1", "done": False}
    where = training_ui.plan(ids.TRAIN_PLAY, SMALL, steps, status, None)
    assert where["start"] == 0 and where["target"] == steps


def test_a_forged_run_id_is_not_reused():
    steps = 20
    status = {"key": training.run_key(SMALL, steps), "step": 4, "run": {"x": 1}, "done": False}
    assert training_ui.plan(ids.TRAIN_PLAY, SMALL, steps, status, None)["run_id"] is None


@pytest.mark.parametrize("steps", [10**400, "x", -3, 1e999, 2.5])
def test_forged_steps_train_with_a_note(steps):
    out = training_ui.train_job(None, 1, 0, SMALL.to_dict(), steps, None, None, "u" * 16)
    assert "error" not in out, out
    n = training.clamp_steps(steps)
    assert out["note"].startswith("steps: ") and out["note"].endswith(f"trained {n} step{'s' if n != 1 else ''}.")
    assert out["archs"]["rnn"]["step"] == n


def test_forged_state_and_huge_checkpoint_together_give_a_result():
    steps = 10
    status = {"key": training.run_key(SMALL, steps), "step": "x", "run": "r1", "done": False}
    checkpoint = {"run": "r1", "data": npz_with_header((10**6, 10**6))}
    out = training_ui.train_job(None, 1, 0, SMALL.to_dict(), steps, status, checkpoint, "u" * 16)
    assert out["status"] == "done" and out["archs"]["rnn"]["step"] == steps
