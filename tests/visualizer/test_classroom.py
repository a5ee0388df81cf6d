"""Presets, export, upload and presentation callbacks, called directly; the maths panels."""
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from dash import dcc, no_update
from dash._callback_context import context_value
from dash._utils import AttributeDict

import core
from tests.uploads import as_upload
from visualizer import classroom, explain, export, ids, lessons, presets, views
from visualizer.urlstate import SPEC, Params

SMALL = Params(arch=("rnn", "gru"), seq_len=12, hidden=6, batch=3)
CSS = (Path(__file__).parents[2] / "assets" / "classroom.css").read_text()


def trigger(component_id, prop="n_clicks", value=1):
    context_value.set(AttributeDict(triggered_inputs=[{"prop_id": f"{component_id}.{prop}", "value": value}]))


def npz_of(model) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **model.state_dict())
    return buf.getvalue()


def test_a_preset_sets_every_control_and_the_training_steps():
    from visualizer import callbacks
    controls = classroom.preset_controls("clipping")
    p = presets.PRESETS["clipping"]
    assert controls == callbacks.params_to_controls(p.params)  # what the app's controls show for p
    assert callbacks.validate(callbacks.controls_to_raw(controls))[0] == p.params
    assert controls[list(ids.CONTROL_IDS).index("steps")] == p.train_steps == p.params.steps
    controls = classroom.preset_controls("vanishing")
    assert controls[list(ids.CONTROL_IDS).index("seq_len")] == 100
    assert controls[list(ids.CONTROL_IDS).index("steps")] == callbacks.Params().steps  # the default
    assert classroom.preset_controls("nope") == [no_update] * len(ids.CONTROL_IDS)
    assert classroom.preset_controls(None) == [no_update] * len(ids.CONTROL_IDS)


def test_preset_explanation_follows_the_settings():
    p = presets.PRESETS["irnn"]
    store = p.params.to_dict()
    store.pop("view")
    text = " ".join(c if isinstance(c, str) else c.children for c in classroom.preset_explanation(store))
    assert p.title in text and lessons.preset_text("irnn", p.params) in text
    assert classroom.preset_explanation(replace(p.params, seed=1).to_dict()) == []
    assert classroom.preset_explanation(None) == []
    clip = presets.PRESETS["clipping"].params.to_dict()
    assert "Train" in " ".join(str(c) for c in classroom.preset_explanation(clip))


@pytest.mark.parametrize("button, ext", [(ids.EXPORT_CSV, "csv"), (ids.EXPORT_JSON, "json"),
                                         (ids.EXPORT_HTML, "html")])
def test_export_downloads_the_current_view(button, ext):
    store = SMALL.to_dict()
    store.pop("view")
    trigger(button)
    data, message = classroom.export_view(1, 1, 1, store, "gates")
    assert message == "" and data["filename"] == export.filename(replace(SMALL, view="gates"), ext)
    p = replace(SMALL, view="gates")
    if ext == "csv":
        assert data["content"] == export.to_csv(export.view_series(p))
    elif ext == "json":
        assert json.loads(data["content"]) == json.loads(export.to_json(export.view_series(p), p))
    else:
        assert data["content"].startswith("<!DOCTYPE html>") and "bpttlab-data" in data["content"]
    trigger(ids.EXPORT_CSV)
    bad = replace(SMALL, task="copy", seq_len=2).to_dict()  # the copy task needs more steps
    assert classroom.export_view(1, 0, 0, bad, "gates")[1].startswith("Nothing to export")


def test_upload_good_and_bad_files():
    text, cls, data = classroom.upload_weights(as_upload(b"not a zip"), "w.npz")
    assert text.startswith("Rejected:") and "not an .npz" in text and "error" in cls and data is None
    model = core.build("lstm", input_size=2, hidden_size=5, output_size=1, seed=4)
    text, cls, data = classroom.upload_weights(as_upload(npz_of(model)), "mine.npz")
    assert text.startswith("Loaded mine.npz: LSTM") and "ok" in cls
    assert data["arch"] == "lstm" and data["summary"] in text
    # the uploaded model joins view 1, dashed, on the same axis as the fresh networks
    from visualizer import callbacks
    store = callbacks.store_data(SMALL)
    fig, _banner, info = callbacks.overview(store, data)
    mine = [t for t in fig["data"] if t["name"] == "your LSTM"]
    assert len(mine) == 1 and mine[0]["line"]["dash"] == "dash" and mine[0]["legendgroup"] == "uploaded"
    assert [t["name"] for t in fig["data"] if t.get("meta") == "main"][:2] == ["RNN", "GRU"]
    assert any("Dashed: mine.npz" in str(c.children) for c in info) and "adding task" in str(info[-1].children)
    plain = callbacks.overview(store)
    assert len(plain[0]["data"]) == len(fig["data"]) - 1
    assert callbacks.overview(store, None)[0] == plain[0]
    bad = classroom.flow_of_upload(SMALL, {**data, "digest": "junk"})
    assert bad[0] is None and bad[1].startswith("Your uploaded model cannot run here") and "'digest'" in bad[1]
    assert classroom.upload_status(None) == (no_update, no_update, no_update)


def test_uploaded_flow_uses_a_fitting_task_or_random_inputs():
    sine = core.build("gru", input_size=1, hidden_size=4, output_size=1, seed=0)
    flow = classroom.uploaded_flow(sine, SMALL)  # current task "adding" needs input 2
    assert "sine task" in flow.note and flow.hidden_grad_norms.shape == (1, SMALL.seq_len)
    odd = core.build("rnn-relu", input_size=7, hidden_size=4, output_size=3, seed=0)
    flow = classroom.uploaded_flow(odd, SMALL)
    assert "random inputs" in flow.note and flow.arch == "rnn-relu"
    assert np.all(np.isfinite(flow.hidden_grad_norms))


def test_display_flags_and_page_class():
    flags = classroom.display_flags("?present=1&seq_len_hide=true&training_hide=1&nope_hide=1&arch_hide=0")
    assert flags == {"present": True, "hide": ["seq_len", "training"]}
    assert classroom.page_class(flags) == "page present hide-seq_len hide-training"
    assert classroom.display_flags(None) == {"present": False, "hide": []}
    trigger(ids.URL, "search", "?present=1")
    assert classroom.presentation("?present=1", 0, 0, "page") == "page present"
    assert classroom.presentation("?seed=2", 0, 0, "page present") is no_update  # the app rewrote its URL
    trigger(ids.PRESENT_TOGGLE)
    assert classroom.presentation("", 1, 0, "page") == "page present"
    assert classroom.presentation("", 2, 0, "page present") == "page"
    trigger(ids.PRESENT_EXIT)
    assert classroom.presentation("?present=1", 0, 1, "page present hide-seq_len") == "page hide-seq_len"


def test_css_hides_every_control_and_card():
    for name, cid in ids.CONTROL_IDS.items():
        assert f".hide-{name} .field:has(#{cid})" in CSS, name
    assert set(ids.CONTROL_IDS) == set(SPEC)
    for card in classroom.CARDS:
        assert re.search(rf"\.hide-{card} \.[\w-]+ {{ display: none", CSS), card
    assert ".present .sidebar" in CSS


def test_maths_panels_render_with_mathjax_once_opened():
    for view, text in ((v.key, v.maths) for v in views.VIEWS.values()):
        assert text.count("$") % 2 == 0 and "$" in text
        assert explain.body(0, view) is no_update  # nothing (no MathJax) until opened
        markdown = explain.body(1, view)
        assert isinstance(markdown, dcc.Markdown) and markdown.mathjax is True and markdown.children == text
    panel = explain.maths("grad_norm")
    assert panel.id == ids.GRAD_MATHS and panel.children[0].n_clicks == 0
    assert explain.grad_body(True).children == views.GRAD_NORM.maths
    assert r"J_{T-1} J_{T-2} \cdots J_{t+1}" in views.GRAD_NORM.maths  # ordered, last step T-1
    assert "f_t \\odot c_{t-1}" in views.VIEWS["gates"].maths
    assert explain.body(True, "nope") is no_update
