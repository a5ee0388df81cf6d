"""The step-by-step view: its numbers against core.bptt, its frames, its bounds and its sentences."""
import numpy as np
import plotly.graph_objects as go
import pytest

import core
from core.walkthrough import sequence_states
from visualizer import compute, stepview, unrolled, views
from visualizer.stepview import fmt
from visualizer.urlstate import Params

CLASS = Params(arch=("rnn",), seq_len=12, hidden=8, batch=4, task="sine", loss_on="all", init="orthogonal",
               scale=1.5, clip=1.0, optimizer="sgd", lr=0.1)


def reference(params, arch=None):
    """bptt on the view's batch and model, through the app's own data path."""
    key = stepview.step_key(params, arch)
    task, model = compute.task_of(key.run), compute.model_of(key.run)
    y, loss_on, _ = compute.targets(task, params.loss_on)
    return model, task, y, loss_on, core.bptt(model, task.x, y, task.loss, loss_on, key.run.truncate)


def segments(trace):
    """The (start, end) point pairs of a line trace drawn as None-separated segments."""
    pts = list(zip(trace["x"], trace["y"], strict=True))
    return [(pts[i], pts[i + 1]) for i in range(0, len(pts) - 1, 3)]


def frames_of(fig, phase_text):
    """Frames whose explanation starts with ``phase_text``."""
    return [f for f in fig["frames"] if f["layout"]["title"]["text"].startswith(phase_text)]


@pytest.fixture(scope="module")
def lesson():
    p = stepview.payload(CLASS)
    return p, unrolled.step_figure(p)


def test_the_figure_is_valid_plotly_with_one_frame_per_phase_step(lesson):
    p, fig = lesson
    go.Figure(fig)  # validates data, layout and frames
    T = p.T
    plan = unrolled.frame_plan(p)
    assert len(fig["frames"]) == len(plan) == 1 + T + 1 + T + 2 + T
    assert [s["args"][0][0] for s in fig["layout"]["sliders"][0]["steps"]] == [f["name"] for f in fig["frames"]]
    labels = [s["label"] for s in fig["layout"]["sliders"][0]["steps"] if s["label"]]
    assert labels == ["start", "forward", "losses", "backward", "Σ", "update", "next"]


def test_backward_frames_show_bptt_gradients_right_to_left(lesson):
    p, fig = lesson
    *_, res = reference(CLASS)
    back = frames_of(fig, "Backward")
    assert len(back) == p.T
    h_trace = unrolled.DECADES + 1  # the first node trace: h of layer 1
    for s, frame in zip(range(p.T - 1, -1, -1), back, strict=True):
        text = frame["data"][h_trace]["text"]
        want = [fmt(v) if t >= s else "" for t, v in enumerate(res.hidden_grad_norms[-1])]
        assert text == want
        title = frame["layout"]["title"]["text"].replace("<br>", " ")
        assert f"‖∂L/∂h{stepview.subscript(s)}‖ = {fmt(res.hidden_grad_norms[-1, s])}" in title
        assert fmt(res.local_grad_norms[-1, s]) in title
        if s < p.T - 1:
            assert fmt(res.carried_grad_norms[-1, s]) in title


def test_edges_are_binned_by_the_decade_of_the_gradient_they_carry(lesson):
    p, fig = lesson
    *_, res = reference(CLASS)
    top, _ = unrolled.decade_bins(p)
    last = frames_of(fig, "∂L/∂W_hh = Σ")[0]  # every edge reached
    ly = unrolled.lanes(p)
    for t in range(1, p.T):
        b = unrolled.bin_of(res.carried_grad_norms[-1, t - 1], top)
        trace = last["data"][b]
        pairs = list(zip(trace["x"], trace["y"], strict=True))
        assert any(pairs[i] == (t - 1, ly["h0"]) and pairs[i + 1] == (t, ly["h0"]) for i in range(len(pairs) - 1))
        g = res.carried_grad_norms[-1, t - 1]
        assert 10.0 ** (top - b - 1) <= g < 10.0 ** (top - b) or b == unrolled.DECADES - 1


def test_contribution_bars_stack_up_to_the_bptt_weight_gradient(lesson):
    p, fig = lesson
    *_, res = reference(CLASS)
    total = np.linalg.norm(res.grads["weight_hh_l0"])
    final = frames_of(fig, "∂L/∂W_hh = Σ")[0]
    bars, running, total_line = (final["data"][i] for i in range(-4, -1))
    assert sum(bars["y"]) == pytest.approx(total, rel=1e-9)
    assert running["y"][0] == pytest.approx(total, rel=1e-9)
    assert total_line["y"][0] == pytest.approx(total, rel=1e-9)
    np.testing.assert_allclose(p.walk.contributions.norms, res.whh_grad_norms, rtol=1e-10)
    assert all(v <= n * (1 + 1e-12) for v, n in zip(bars["y"], res.whh_grad_norms[0], strict=True))
    mid = frames_of(fig, "Backward")[3]  # after 4 steps of the backward pass only the last 4 bars are drawn
    assert np.isnan(np.asarray(mid["data"][-4]["y"], float)[: p.T - 4]).all()
    assert np.isfinite(np.asarray(mid["data"][-4]["y"], float)[p.T - 4 :]).all()


def test_losses_update_and_next_forward_match_the_core(lesson):
    p, fig = lesson
    model, task, y, loss_on, res = reference(CLASS)
    loss_frame = frames_of(fig, "Loss on every step")[0]
    L_trace = unrolled.DECADES + 1 + p.L + 1
    want = core.step_losses(res.outputs, y, task.loss, loss_on)
    assert loss_frame["data"][L_trace]["text"] == [fmt(v) for v in want]
    assert fmt(res.loss) in loss_frame["layout"]["title"]["text"]
    clipped, norm, was_clipped = core.clip_grad_norm(res.grads, CLASS.clip)
    assert was_clipped
    update = frames_of(fig, "Clipping")[0]["layout"]["title"]["text"]
    assert fmt(norm) in update and fmt(CLASS.clip / (norm + 1e-6)) in update
    after = model.copy()
    after.params = core.sgd_step(model.params, clipped, None, lr=CLASS.lr)[0]
    nxt = core.bptt(after, task.x, y, task.loss, loss_on)
    final = fig["frames"][-1]["layout"]["title"]["text"]
    assert f"from {fmt(res.loss)} to {fmt(nxt.loss)}" in final
    assert nxt.loss < res.loss  # the lesson's update lowers the loss
    clip_line = frames_of(fig, "Clipping")[0]["data"][-1]
    assert clip_line["y"][0] == pytest.approx(np.linalg.norm(res.grads["weight_hh_l0"]) * CLASS.clip / (norm + 1e-6))


def test_map_is_the_core_contribution_map(lesson):
    p, fig = lesson
    model, task, y, loss_on, _ = reference(CLASS)
    heat = next(t for t in fig["data"] if t["type"] == "heatmap")
    norms = core.whh_contribution_map(model, task.x, y, task.loss, loss_on).norms[0]
    z = np.array([[np.nan if v is None else v for v in row] for row in heat["z"]])
    with np.errstate(divide="ignore"):
        want = np.where(norms > 0, np.log10(norms), np.nan)
    np.testing.assert_allclose(z, want, rtol=1e-12)
    assert np.isnan(z[np.triu_indices(p.T, 1)]).all()  # causal


def test_truncation_draws_cut_edges_and_the_lstm_its_cell_lane():
    params = Params(arch=("lstm",), seq_len=10, hidden=4, batch=2, task="sine", loss_on="all", truncate=4)
    p = stepview.payload(params)
    fig = unrolled.step_figure(p)
    go.Figure(fig)
    cut = next(t for t in fig["data"] if t.get("name", "").startswith("cut by truncation"))
    ly = unrolled.lanes(p)
    assert [x for x in cut["x"] if x is not None] == [3, 4, 7, 8]
    assert set(y for y in cut["y"] if y is not None) == {ly["h0"]}
    assert "c0" in ly and fig["layout"]["yaxis"]["ticktext"] == ["x", "h", "c", "y", "loss"]
    top, _ = unrolled.decade_bins(p)
    final = frames_of(fig, "∂L/∂W_hh = Σ")[0]
    carried = p.walk.cell_carried_norms[0]
    for t in range(1, p.T):  # the cell lane's edge c_{t-1} -> c_t carries f_t * dL/dc_t; nothing across a cut
        segment = ((t - 1, ly["c0"]), (t, ly["c0"]))
        drawn = [b for b in range(unrolled.DECADES + 1) if segment in segments(final["data"][b])]
        assert drawn == ([] if carried[t - 1] == 0 else [unrolled.bin_of(carried[t - 1], top)])
        assert (carried[t - 1] == 0) == (t in (4, 8))
    back = frames_of(fig, "Backward")
    assert any("Truncation (k = 4) cuts the edge h₃ → h₄" in f["layout"]["title"]["text"].replace("<br>", " ")
               for f in back)


def test_every_layer_gets_its_lanes_and_its_gradients():
    params = Params(arch=("lstm",), seq_len=8, hidden=4, layers=2, batch=2, task="sine", loss_on="all")
    p = stepview.payload(params)
    fig = unrolled.step_figure(p)
    go.Figure(fig)
    assert fig["layout"]["yaxis"]["ticktext"] == ["x", "h1", "c1", "h2", "c2", "y", "loss"]
    *_, res = reference(params)
    last = frames_of(fig, "∂L/∂W_hh = Σ")[0]
    lower_h = unrolled.DECADES + 1  # node traces: h1, c1, h2, c2, y, L
    assert last["data"][lower_h]["text"] == [fmt(v) for v in res.hidden_grad_norms[0]]
    assert last["data"][lower_h + 2]["text"] == [fmt(v) for v in res.hidden_grad_norms[1]]
    assert last["data"][lower_h + 1]["text"] == [fmt(v) for v in res.cell_grad_norms[0]]


def test_long_sequences_get_a_window_and_a_subsampled_map_and_refuse_past_the_limit():
    params = Params(arch=("gru",), seq_len=90, hidden=4, batch=2, task="sine", loss_on="all")
    p = stepview.payload(params)
    assert p.map_rows.size == stepview.MAP_ROWS and p.map_rows[-1] == 89 and p.map_rows[0] == 0
    assert any("shows 40 of the 90 loss steps" in n for n in p.notes)
    fig = unrolled.step_figure(p)
    assert fig["layout"]["xaxis"]["range"] == [-0.6, stepview.DRAWN - 0.4]
    window = fig["layout"]["sliders"][1]
    assert len(window["steps"]) == 90 - stepview.DRAWN + 1
    assert len(fig["frames"]) <= 4 + 3 * (unrolled.STEPS_PER_FRAME_MAX + 1)  # phases of up to 31 frames
    with pytest.raises(ValueError, match="Sequence length T = 121"):
        stepview.payload(Params(arch=("gru",), seq_len=121, task="sine"))


def test_too_much_work_is_refused_naming_the_fields():
    with pytest.raises(ValueError, match="lower the batch size or the hidden size"):
        stepview.payload(Params(arch=("lstm",), seq_len=100, batch=64, hidden=256, task="sine"))


def test_map_work_budget_skips_the_map_with_a_message():
    rows, note = stepview.map_rows(T=100, B=64, H=512, L=4, gates=4, loss_on="all")
    assert rows.size == 0 and "lower the batch or the hidden size" in note
    rows, note = stepview.map_rows(T=10, B=1, H=4, L=1, gates=1, loss_on="last")
    assert rows.tolist() == [9] and note is None


def test_the_caption_note_says_what_is_shown():
    keys = [compute.run_key(CLASS, a) for a in ("rnn", "lstm")]
    assert stepview.note(keys) == "Showing the RNN, the first ticked architecture."
    last = Params(**{**CLASS.to_dict(), "arch": ["gru"], "loss_on": "last", "seq_len": 45})
    note = stepview.note([compute.run_key(last, "gru")])
    assert "the map has one row" in note and "30 of the 45 steps are drawn" in note
    adding = Params(**{**CLASS.to_dict(), "arch": ["lstm"], "task": "adding", "loss_on": "all"})
    note = stepview.note([compute.run_key(adding, "lstm")])
    assert note.startswith("Task 'adding' has a target only at the last step") and note.endswith("one row.")


def test_the_sum_sentence_counts_the_largest_shares_truly(lesson):
    p, _ = lesson
    shares, total = p.walk.contributions.shares[0], p.walk.contributions.total[0]
    n = int(stepview.sum_text(p).split("the ")[-1].split(" largest")[0])
    top = np.sort(shares)[::-1]
    assert top[:n].sum() >= 0.9 * total > top[: n - 1].sum()


def test_sentences_change_with_the_data():
    a = stepview.payload(CLASS)
    b = stepview.payload(Params(**{**CLASS.to_dict(), "arch": ["rnn"], "scale": 0.5}))
    assert stepview.sum_text(a) != stepview.sum_text(b)
    assert stepview.backward_text(a, 5) != stepview.backward_text(b, 5)
    assert stepview.update_text(a) != stepview.update_text(b)


def test_classroom_preset_shows_what_its_explanation_says():
    from visualizer import presets

    preset = presets.PRESETS["bptt-steps"]
    assert preset.params.view == "steps"
    assert preset.params.to_dict() | {"view": None} == CLASS.to_dict() | {"view": None}
    p = stepview.payload(preset.params)
    w = p.walk
    assert w.clipped and w.clip_scale < 1  # "clipping then rescales the gradient"
    assert w.next_loss < w.loss  # "the next forward pass shows the new loss" (lower after the step)
    t, s = np.indices(p.map_norms.shape)
    assert np.all(p.map_norms[(s <= t) & (s > 0)] > 0)  # every loss reaches back to step 1 (full BPTT)
    assert p.T <= stepview.DRAWN  # short: every step is drawn at once


def test_the_html_report_carries_the_frames_and_waits_for_its_reader():
    from visualizer import export

    html = export.report(Params(**{**CLASS.to_dict(), "arch": ["rnn"], "view": "steps"}))
    assert "Plotly.addFrames" in html and '"name":"phase"' in html  # stepped by its own slider and Play button
    own = html.replace(export.STEPVIEW_JS.read_text(encoding="utf-8"), "")  # the arrow keys' code, run on a key
    assert "Plotly.animate(" not in own  # no autoplay: it would also run every frame with a transition
    assert "whh_grad_norm_by_loss_step" in html  # the map's numbers are in the embedded data


def test_a_notebook_gets_the_same_stepped_figure():
    from visualizer import notebook

    fig = notebook.figure(params="?preset=bptt-steps")  # the preset's update settings: SGD, clip 1
    assert any(f.layout.title.text.startswith("Clipping") for f in fig.frames)
    task = core.make_task("sine", 10, 2, seed=0)
    lstm = core.build("lstm", input_size=task.input_size, hidden_size=4, output_size=task.output_size)
    fig = notebook.figure("steps", lstm, task)
    assert len(fig.frames) == len(unrolled.frame_plan(stepview.view_payload([core_run(lstm, task)])))


def core_run(model, task):
    return compute.model_run(model, task)


def test_a_change_of_the_update_settings_redraws_the_step_tab_only():
    from dash import no_update

    from visualizer import callbacks

    for tab, redrawn in (("steps", True), ("heatmap", False)):
        params = Params(**{**CLASS.to_dict(), "arch": ["rnn"], "view": tab, "clip": 0.5})
        out = callbacks.page(callbacks.params_to_controls(params), search="", changed={"clip"})
        assert (out[3] is not no_update) == redrawn
        assert out[0] is no_update  # view 1 does not depend on the update step
        if redrawn:
            update = next(f for f in out[3]["frames"] if f["layout"]["title"]["text"].startswith("Clipping"))
            assert "c = 0.5" in update["layout"]["title"]["text"]


def test_presentation_mode_scales_the_stepped_figure_less_than_the_others():
    from visualizer import callbacks, framing

    params = Params(**{**CLASS.to_dict(), "arch": ["rnn"], "view": "steps"})
    plain = callbacks.page(callbacks.params_to_controls(params), search="", changed={"view"})[3]
    big = callbacks.page(callbacks.params_to_controls(params), search="", changed={"view"}, present=True)[3]
    scale = views.VIEWS["steps"].present_scale
    assert 1 < scale < framing.PRESENT_SCALE  # it is fitted to the window instead (assets/stepview.js)
    assert big["layout"]["font"]["size"] == pytest.approx(plain["layout"]["font"]["size"] * scale)
    assert big["layout"]["margin"]["t"] == pytest.approx(plain["layout"]["margin"]["t"] * scale)
    view1 = callbacks.page(callbacks.params_to_controls(params), search="", present=True)[0]
    assert view1["layout"]["font"]["size"] == pytest.approx(17 * framing.PRESENT_SCALE)  # the others as before


def test_the_controls_under_the_stepped_figure_sit_at_fixed_px_from_the_plot(lesson):
    _, fig = lesson
    layout = fig["layout"]
    for widget in (*layout["sliders"], *layout["updatemenus"]):  # a fitted height moves nothing into the axis labels
        assert widget["y"] == 0 and widget["yanchor"] == "top" and widget["pad"]["t"] >= 48
    assert layout["title"]["yref"] == "container" and layout["title"]["y"] == 1


def test_the_play_buttons_sit_left_of_the_sliders_so_they_never_meet(lesson):
    _, fig = lesson
    layout = fig["layout"]
    (menu,) = layout["updatemenus"]
    assert menu["x"] == 0 and menu["xanchor"] == "right"  # in the left margin, whatever the plot's width
    for slider in layout["sliders"]:
        assert slider["x"] >= 0 and slider.get("xanchor", "left") == "left" and slider["x"] + slider["len"] <= 1
    assert layout["margin"]["l"] >= 85 + menu["pad"]["r"]  # the two buttons (about 85 px at 14 px) fit the margin


SHAPES = [{}, {"seq_len": 60}, {"loss_on": "last"}, {"arch": ("lstm",), "layers": 3}]


@pytest.mark.parametrize("changes", SHAPES, ids=["map", "window", "no-map", "lstm-3-layers"])
def test_the_least_height_keeps_every_panel_readable(changes):
    fig = unrolled.step_figure(stepview.payload(Params(**{**CLASS.to_dict(), **changes})))
    layout = fig["layout"]
    least = layout["meta"]["min_height"]
    assert 0 < least <= layout["height"]
    plot = least - layout["margin"]["t"] - layout["margin"]["b"]  # the plot area fitted to the least height

    def px(axis):
        return plot * (layout[axis]["domain"][1] - layout[axis]["domain"][0])
    net = layout["yaxis"]["range"]
    room = {"yaxis": px("yaxis") / (net[1] - net[0]) / unrolled.LANE_MIN, "yaxis2": px("yaxis2") / unrolled.BARS_MIN}
    if "yaxis3" in layout:
        room["yaxis3"] = px("yaxis3") / unrolled.MAP_MIN
    assert min(room.values()) >= 1 - 1e-9  # each panel at least its least height
    assert min(room.values()) < 1 + 2 / plot  # and no more than that: the least height, up to a px


def test_presentation_mode_scales_the_least_height_with_the_figure():
    from visualizer import callbacks

    params = Params(**{**CLASS.to_dict(), "view": "steps"})
    plain = callbacks.page(callbacks.params_to_controls(params), search="", changed={"view"})[3]["layout"]
    big = callbacks.page(callbacks.params_to_controls(params), search="", changed={"view"}, present=True)[3]["layout"]
    scale = views.VIEWS["steps"].present_scale
    assert big["meta"]["min_height"] == round(plain["meta"]["min_height"] * scale)
    assert big["meta"]["min_height"] / big["height"] == pytest.approx(plain["meta"]["min_height"] / plain["height"],
                                                                      abs=1e-3)


def test_node_hovers_hold_the_core_numbers(lesson):
    p, fig = lesson
    model, task, _, _, res = reference(CLASS)

    hs, _, outputs = sequence_states(model, task.x)
    h_trace = fig["data"][unrolled.DECADES + 1]
    for t in (0, 5, p.T - 1):
        hover = h_trace["hovertext"][t]
        assert f"RMS {fmt(stepview.rms(hs[0, t, 0]))}" in hover
        assert f"= {fmt(res.hidden_grad_norms[0, t])}, ‖local‖ = {fmt(res.local_grad_norms[0, t])}" in hover
        assert f"‖carried‖ = {fmt(res.carried_grad_norms[0, t])}" in hover
        assert f"after the update: RMS {fmt(stepview.rms(p.walk.next_h[0, t]))}" in hover
    y_trace, L_trace = fig["data"][unrolled.DECADES + 2], fig["data"][unrolled.DECADES + 3]
    assert fmt(stepview.rms(outputs[3, 0])) in y_trace["hovertext"][3]
    assert L_trace["hovertext"][3].startswith(f"L₃ = {fmt(p.walk.step_losses[3])} → {fmt(p.walk.next_step_losses[3])}")


@pytest.mark.parametrize("changes,words", [({"seq_len": 500}, "Sequence length T = 500"),
                                          ({"seq_len": 100, "batch": 64, "hidden": 256}, "lower the batch size"),
                                          ({"arch": []}, "Tick an architecture")])
def test_the_app_answers_too_much_work_with_a_message_figure(changes, words):
    from visualizer import callbacks

    params = Params(**{**CLASS.to_dict(), "arch": ["lstm"], "view": "steps", **changes})
    fig, _ = callbacks.view(callbacks.store_data(params), "steps")
    text = fig["layout"]["annotations"][0]["text"].replace("<br>", " ")  # message figures wrap their lines
    assert "frames" not in fig and words in text


def test_the_preset_explanation_is_measured():
    from visualizer import lessons, presets
    from visualizer.fmt import num

    params = presets.PRESETS["bptt-steps"].params
    w = stepview.payload(params).walk
    text = lessons.preset_text("bptt-steps", params)
    for part in (f"L = {num(w.loss)}", f"‖∂L/∂h₁₁‖ = {num(w.hidden_grad_norms[0, 11])}",
                 f"‖∂L/∂h₀‖ = {num(w.hidden_grad_norms[0, 0])}", f"‖∂L/∂W_hh‖ = {num(w.contributions.total[0])}",
                 f"multiplies the gradient by {num(w.clip_scale)}", f"‖g‖ = {num(w.grad_norm)}",
                 f"is {num(w.next_loss)}, lower than before"):
        assert part in text, part
    n = int(text.split(" largest of the")[0].rsplit(" ", 1)[-1])
    top = np.sort(w.contributions.shares[0])[::-1]
    assert top[:n].sum() >= 0.9 * w.contributions.total[0] > top[: n - 1].sum()


def test_the_walkthrough_cache_is_bounded_in_bytes():
    from visualizer import callbacks
    from visualizer.urlstate import validate

    stepview.walk.cache_clear()
    for seed in range(5):  # each ~26 MB: a 4-layer RNN with H=512 over 120 steps
        params, _ = validate(dict(arch="rnn", seq_len=120, hidden=512, layers=4, batch=1, seed=seed))
        stepview.walk(stepview.StepKey(callbacks._keys(params)[0], "adam", 0.01, None))
    assert 0 < stepview.walk.cache_bytes() <= 96 * 2**20 and stepview.walk.cache_len() < 5
    stepview.walk.cache_clear()
