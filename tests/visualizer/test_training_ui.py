"""The training panel's callbacks and figures, called directly."""
import base64
from dataclasses import replace

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import no_update
from dash._callback_context import context_value
from dash._utils import AttributeDict

from tests.visualizer.clock import Clock
from visualizer import figures, framing, ids, presets, training, training_ui
from visualizer.training_figures import evolution_figure, flow_figure, progress_figure
from visualizer.urlstate import Params

SMALL = Params(arch=("rnn", "lstm", "gru"), seq_len=10, hidden=5, batch=2)


@pytest.fixture(scope="module")
def result():
    return training.run_job(None, SMALL, 20, 20, clock=Clock(0.01))


def valid(fig):
    """Validate a figure dict with plotly (raises on anything plotly.js would not accept)."""
    return go.Figure(fig)


def values(y):
    """Numbers of a trace's y: a list, or a plotly.js typed array {dtype, bdata}."""
    if isinstance(y, dict):
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"]))
    return np.asarray(y, dtype=float)


def named(fig):
    return [t.get("name") for t in fig["data"] if t.get("showlegend", True) is not False]


def test_plan_new_continue_and_step():
    steps, key = 40, training.run_key(SMALL, 40)
    every = training.record_every(steps)
    fresh = training_ui.plan(ids.TRAIN_PLAY, SMALL, steps, None, None)
    assert fresh == {"start": 0, "target": 40, "run_id": None, "checkpoint": None}
    status = {"run": "r1", "key": key, "step": 13, "done": False}
    ckpt = {"run": "r1", "step": 10, "data": "abc"}
    assert training_ui.plan(ids.TRAIN_PLAY, SMALL, steps, status, ckpt) == \
        {"start": 13, "target": 40, "run_id": "r1", "checkpoint": "abc"}
    assert training_ui.plan(ids.TRAIN_STEP, SMALL, steps, status, ckpt)["target"] == (13 // every + 1) * every
    assert training_ui.plan(ids.TRAIN_PLAY, SMALL, steps, status, {**ckpt, "run": "other"})["checkpoint"] is None
    assert training_ui.plan(ids.TRAIN_PLAY, replace(SMALL, lr=0.5), steps, status, ckpt)["start"] == 0
    assert training_ui.plan(ids.TRAIN_PLAY, SMALL, steps, {**status, "done": True}, ckpt)["start"] == 0


def test_train_job_runs_in_a_slot_and_reports_progress():
    context_value.set(AttributeDict(triggered_inputs=[{"prop_id": f"{ids.TRAIN_PLAY}.n_clicks", "value": 1}]))
    progress = []
    out = training_ui.train_job(progress.append, 1, 0, SMALL.to_dict(), 8, None, None, "user-abcdef12")
    assert out["status"] == "done" and out["note"] is None
    assert set(out["archs"]) == set(SMALL.arch) and all(h["step"] == 8 for h in out["archs"].values())
    assert progress and progress[-1]["status"] == "running"
    assert training_ui.train_job(None, 1, 0, replace(SMALL, arch=()).to_dict(), 8, None, None, "u")["error"]
    huge = replace(SMALL, seq_len=2000, hidden=512, batch=64)
    assert "too large" in training_ui.train_job(None, 1, 0, huge.to_dict(), 2000, None, None, "u")["error"]


def test_draw_live_and_figures(result):
    assert training_ui.draw_live(None) == (no_update, no_update)
    loss, flow = training_ui.draw_live(result)
    valid(loss), valid(flow)
    assert named(loss)[:3] == ["RNN", "LSTM", "GRU"]
    assert named(flow) == ["RNN", "LSTM", "GRU"]
    # the flow figure shows exactly the newest snapshot's ||dL/dh_t||
    rnn = next(s for s in result["live"] if s["arch"] == "rnn")
    np.testing.assert_allclose(values(flow["data"][0]["y"]), training.unjson(rnn["hidden"])[-1])


def test_light_progress_payloads_skip_the_loss_figure():
    progress = []
    training.run_job(progress.append, SMALL, 30, 30, clock=Clock(0.06))
    light = [p for p in progress if not p["full"]]
    full = [p for p in progress if p["full"]]
    assert light and full and len(full) < len(progress)
    assert "losses" not in light[0]["archs"]["rnn"] and light[0]["archs"]["rnn"]["loss"] is not None
    loss, flow = training_ui.draw_live(light[0])
    assert loss is no_update and named(flow) == ["RNN", "LSTM", "GRU"]
    assert training_ui.draw_live(full[0])[0] is not no_update


def test_progress_figure_marks_clipping_baseline_and_divergence():
    p = replace(SMALL, arch=("rnn-relu",), init="identity", optimizer="sgd", lr=0.1, clip=0.05, task="sine",
                seq_len=30)
    res = training.run_job(None, p, 15, 15, clock=Clock(0.01))
    h = res["archs"]["rnn-relu"]
    assert h["clipped"]  # steps 1-based
    fig = progress_figure(res["archs"], selected_step=10)
    valid(fig)
    marks = [t for t in fig["data"] if t.get("name") == "RNN-relu: clipped"]
    assert marks and marks[0]["x"] == h["clipped"]
    references = [t for t in fig["data"] if t.get("meta") == "reference"]  # named in the legend, not over the data
    texts = " ".join(t["name"] for t in references)
    assert f"{len(h['clipped'])} step{'s' if len(h['clipped']) > 1 else ''} clipped" in texts
    assert "baseline" in texts
    assert next(t for t in references if "clip" in t["name"])["y"] == [h["clip"]] * 2
    blows_up = replace(presets.PRESETS["clipping"].params, clip=None)
    diverged = training.run_job(None, blows_up, 15, 15, clock=Clock(0.01))
    assert diverged["archs"]["rnn-relu"]["diverged"]
    fig = progress_figure(diverged["archs"])
    valid(fig)
    assert any("diverged at step" in a["text"] for a in fig["layout"]["annotations"])
    assert progress_figure({})["data"] == []


def test_draw_snapshot_picks_the_newest_snapshot_at_or_before_the_step(result):
    record = {"run": result["run"], "archs": result["archs"], "snaps": {}}
    for s in result["snaps"]:
        record["snaps"].setdefault(s["arch"], []).append(s)
    assert training_ui.snapshot_steps(record) == list(range(1, 21))
    loss, flow, evo = training_ui.draw_snapshot(7, None, record)
    for f in (loss, flow, evo):
        valid(f)
    assert any(sh.get("x0") == 7 for sh in loss["layout"]["shapes"])
    assert flow["layout"]["xaxis"]["title"]["text"] == "time step t<br>after training step 7"  # two short lines
    assert flow["layout"]["margin"]["b"] == figures.VIEW1_MARGIN["b"] + 24 and figures.VIEW1_MARGIN["b"] == 64
    heat = [t for t in evo["data"] if t["type"] == "heatmap"]
    assert len(heat) == 3 and len(heat[0]["z"]) == 20 and len(heat[0]["z"][0]) == SMALL.seq_len
    assert training_ui.draw_snapshot(999, None, record)[1]["layout"]["xaxis"]["title"]["text"].endswith("20")
    empty = training_ui.draw_snapshot(5, None, None)
    assert all(f["data"] == [] for f in empty)


def test_draw_snapshot_before_the_first_snapshot_keeps_the_loss_histories():
    # a run's first progress payloads come before its first recorded snapshot (step `every`), and
    # their merge redraws from the record: the losses so far must stay on screen (a pause right
    # then would otherwise leave an empty figure under "Step n (paused)")
    steps = 300
    progress = []
    training.run_job(progress.append, SMALL, steps, 2, clock=Clock(0.01))
    first = progress[0]
    assert first["snaps"] == [] and first["full"] and training.record_every(steps) > 2
    record = {"run": first["run"], "archs": first["archs"], "snaps": {}, "step": 1}
    loss, flow, evo = training_ui.draw_snapshot(0, {"t": 1}, record)
    valid(loss)
    assert {t.get("name") for t in loss["data"]} >= {h["name"] for h in first["archs"].values()}
    assert len(values(loss["data"][0]["y"])) >= 1
    assert flow["data"] == [] and evo["data"] == []


def test_empty_figures_say_what_to_do():
    assert "Train" in progress_figure({})["layout"]["annotations"][0]["text"]
    assert flow_figure([])["data"] == [] and evolution_figure({})["data"] == []


def _sizes(fig):
    """Every font size in a figure's layout, and every trace line width."""
    fonts = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                size = value.get("size") if key in ("font", "tickfont") and isinstance(value, dict) else None
                if isinstance(size, (int, float)):
                    fonts.append(size)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(fig["layout"])
    widths = [t["line"]["width"] for t in fig["data"] if isinstance(t.get("line"), dict) and "width" in t["line"]]
    return fonts, widths


def test_training_figures_scale_in_presentation_mode(result):
    record = {"run": result["run"], "archs": result["archs"], "snaps": {}}
    for s in result["snaps"]:
        record["snaps"].setdefault(s["arch"], []).append(s)
    normal = training_ui.draw_snapshot(7, None, record)
    present = training_ui.draw_snapshot(7, None, record, True)
    assert training_ui.draw_snapshot(7, None, record, "yes") == normal  # a forged store is normal mode
    for small, large in zip(normal, present, strict=True):
        valid(large)
        (fonts, widths), (big_fonts, big_widths) = _sizes(small), _sizes(large)
        assert fonts and len(big_fonts) >= len(fonts) and min(big_fonts) > min(fonts) and max(big_fonts) > max(fonts)
        assert big_widths == pytest.approx([w * framing.PRESENT_SCALE for w in widths])
    assert any(_sizes(f)[1] for f in normal[:2])  # the loss and flow curves have lines to scale
    loss, flow = training_ui.draw_live(result, True)
    small_loss, small_flow = training_ui.draw_live(result)
    assert _sizes(flow)[1] == pytest.approx([w * framing.PRESENT_SCALE for w in _sizes(small_flow)[1]])
    assert min(_sizes(loss)[0]) > min(_sizes(small_loss)[0])
    assert all(f["data"] == [] for f in training_ui.draw_snapshot(5, None, None, True))
    evo = present[2]["layout"]  # side by side, the enlarged x titles would collide: one title for all panels
    assert [evo[k]["title"]["text"] for k in sorted(evo) if k.startswith("xaxis")].count("time step t") == 1


def test_the_snapshot_slider_starts_disabled_without_a_value_box():
    def walk(node):
        yield node
        children = getattr(node, "children", None)
        for child in children if isinstance(children, list) else [children] if children is not None else []:
            yield from walk(child)
    slider = next(c for c in walk(training_ui.panel()) if getattr(c, "id", None) == ids.TRAIN_SLIDER)
    assert slider.disabled is True and slider.allow_direct_input is False and slider.min <= slider.max
    assert slider.value == slider.min
