"""The live-training panel: layout and callbacks (training itself runs as a Dash background job).

Data flow (all per-user state lives in the browser, in ``dcc.Store``)::

    ▶ Train / ⏭ Step ──> train_job (background: visualizer.training.run_job in a job slot)
        │ progress, ~10 a second                 │ final result
        v                                        v
    PROGRESS store ──> draw_live (server: the loss / gradient-norm figure and the newest
        │                          snapshot, from that payload alone)
        └──────────────> merge (clientside JS) <── RESULT store, ⟲ Reset
                           │ RECORD (every recorded snapshot), STATUS (run, step),
                           │ CHECKPOINT (to resume), slider, progress bar, status line
                           v
    slider / VIEW token ──> draw_snapshot (server: the three figures at the chosen snapshot)

⏸ Pause and ⟲ Reset cancel the job (Dash's ``cancel=``); ▶ Train after a pause continues the
same run exactly from the last checkpoint. The job's inputs are uploaded once per start (Dash
clears them from its polling requests), and progress payloads hold only a window of recent
snapshots, so traffic stays small.
"""
from __future__ import annotations

import logging
import math
import os

from dash import Input, Output, State, ctx, dcc, html, no_update

from . import figures, jobs, limits, training, training_stores
from .training_figures import evolution_figure, flow_figure, progress_figure
from .urlstate import Params

log = logging.getLogger(__name__)

# component ids (kebab-case)
PANEL = "train-panel"
PLAY = "train-play"
PAUSE = "train-pause"
STEP = "train-step"
RESET = "train-reset"
STEPS = "train-steps-input"
BAR = "train-progress-bar"
STATUS_LINE = "train-status-line"
MESSAGE = "train-message"
PROGRESS_GRAPH = "train-progress-graph"
FLOW_GRAPH = "train-flow-graph"
EVOLUTION_GRAPH = "train-evolution-graph"
SLIDER = "train-snapshot-slider"
PROGRESS_STORE = "train-progress-store"
RESULT_STORE = "train-result-store"
RECORD = "train-record-store"
STATUS = "train-status-store"
CHECKPOINT = "train-checkpoint-store"
VIEW_TOKEN = "train-view-token"

POLL_MS = 50  # Dash polls a running job this often (plus the request's own time) ...
POLL_ENV = "BPTTLAB_POLL_MS"  # ... unless this says otherwise (`bpttlab serve` sets 300 for a class)
POLL_RANGE = (20, 5000)


def poll_ms() -> int:
    """The polling interval in ms: ``$BPTTLAB_POLL_MS`` if it is a whole number in POLL_RANGE,
    else POLL_MS (a bad value is logged, naming the variable, and the app keeps starting)."""
    raw = os.environ.get(POLL_ENV)
    if raw is None or raw.strip() == "":
        return POLL_MS
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not POLL_RANGE[0] <= value <= POLL_RANGE[1]:
        log.warning("%s=%r is not a whole number of ms in [%d, %d]; polling every %d ms",
                    POLL_ENV, raw, *POLL_RANGE, POLL_MS)
        return POLL_MS
    return value
REDRAW_MS = 2000  # while training, the snapshot heatmap (which needs the whole record) redraws this often

CAPTION = ("Top: each architecture's loss at every training step (log scale; the dashed line is the loss of "
           "the best input-ignoring predictor) and, below it, the gradient's norm before clipping — ○ marks a "
           "step that clipping shortened. Bottom left: ‖∂L/∂hₜ‖ at the chosen snapshot, the view at the top of "
           "the page as training changes the weights. Bottom right: every recorded snapshot at once (rows are "
           "training steps, columns time steps): watch whether the dark, vanished region on the left shrinks.")


# ----------------------------------------------------------------------------- layout
def _button(id_, label, title, disabled=False, primary=False):
    """A large control button."""
    return html.Button(label, id=id_, n_clicks=0, title=title, disabled=disabled,
                       className="train-button" + (" train-button--primary" if primary else ""))


def _graph(id_, height):
    """A graph with a PNG button and no logo."""
    return dcc.Graph(id=id_, config={"displaylogo": False, "responsive": True,
                                     "toImageButtonOptions": {"format": "png", "scale": 2}},
                     style={"height": f"{height}px"}, className="graph",
                     figure=progress_figure({}) if id_ == PROGRESS_GRAPH else
                     (flow_figure([]) if id_ == FLOW_GRAPH else evolution_figure({})))


def panel(steps: int = training.DEFAULT_STEPS) -> html.Section:
    """The training card: buttons, steps, progress, three figures, the snapshot slider, stores."""
    return html.Section(id=PANEL, className="card training-panel", children=[
        html.H2("Training, live: does the gradient reach further as the network learns?", className="card-title"),
        html.Div(className="train-controls", children=[
            _button(PLAY, "▶ Train", "Train every chosen architecture (continues after a pause)", primary=True),
            _button(PAUSE, "❚❚ Pause", "Stop training here (▶ continues exactly where it stopped)", disabled=True),
            _button(STEP, "▶❚ Step", "Train until the next recorded snapshot"),
            _button(RESET, "↺ Reset", "Forget this run and start again from the initial weights"),
            html.Label(["steps ", dcc.Input(id=STEPS, type="number", value=steps, min=1, max=training.MAX_STEPS,
                                            step=1, debounce=True, className="number-input train-steps")],
                       className="train-steps-label"),
            html.Progress(id=BAR, value="0", max=str(steps), className="train-bar"),
            html.Span("Ready.", id=STATUS_LINE, className="train-status", role="status"),
        ]),
        html.Div(id=MESSAGE, className="messages train-message", role="alert"),
        _graph(PROGRESS_GRAPH, 430),
        html.Div(className="train-row", children=[_graph(FLOW_GRAPH, 400), _graph(EVOLUTION_GRAPH, 400)]),
        html.Div(className="train-slider", children=[
            html.Label("Snapshot: training step", className="field-label"),
            dcc.Slider(id=SLIDER, min=0, max=1, step=training.record_every(steps), value=1, marks=None,
                       updatemode="mouseup", className="slider"),
        ]),
        html.P(CAPTION, className="caption how-to-read"),
        dcc.Store(id=PROGRESS_STORE), dcc.Store(id=RESULT_STORE), dcc.Store(id=RECORD),
        dcc.Store(id=STATUS), dcc.Store(id=CHECKPOINT), dcc.Store(id=VIEW_TOKEN),
    ])


# ----------------------------------------------------------------------------- the job
def _error(message: str) -> dict:
    """A result payload that only carries a message for the user."""
    return {"error": message}


def plan(trigger, params: Params, steps: int, status, checkpoint) -> dict:
    """Where a job starts and stops: ``{"start", "target", "run_id", "checkpoint"}``.

    The same settings and an unfinished run continue it (from ``status["step"]``, resuming
    from ``checkpoint`` if it belongs to that run); anything else starts a new run. ▶ trains
    to the end, ⏭ to the next recorded snapshot.
    """
    key = training.run_key(params, steps)
    same = isinstance(status, dict) and status.get("key") == key and not status.get("done")
    start = int(status.get("step") or 0) if same else 0
    run_id = status.get("run") if same else None
    ckpt = checkpoint.get("data") if same and isinstance(checkpoint, dict) and checkpoint.get("run") == run_id else None
    every = training.record_every(steps)
    target = steps if trigger != STEP else min(steps, (start // every + 1) * every)
    return {"start": start, "target": target, "run_id": run_id, "checkpoint": ckpt}


def train_job(set_progress, play, step, store, steps, status, checkpoint, user_id):
    """Background callback: train the chosen architectures, reporting progress, in a job slot."""
    params = Params.from_dict(store or {})
    steps = training.clamp_steps(steps)
    if not params.arch:
        return _error("Pick at least one architecture to train.")
    message = limits.training_message(params, steps)
    if message:
        return _error(message)
    where = plan(ctx.triggered_id, params, steps, status, checkpoint)
    note = {}

    try:
        with limits.job_slot(user_id) as slot:
            def keep_going():
                slot.touch()
                if slot.expired():
                    note["text"] = slot.time_message()
                    return False
                return True

            result = training.run_job(set_progress, params, steps, where["target"], where["start"],
                                      where["checkpoint"], where["run_id"], keep_going=keep_going)
    except (limits.LimitReached, jobs.JobsUnavailable) as e:
        return _error(str(e))
    except ValueError as e:  # impossible task settings, from the core
        return _error(f"Cannot train this configuration: {e}")
    result["note"] = note.get("text")
    return result


def job_error(exc):
    """``on_error`` of the job: the queue is down or the job failed."""
    return _error(jobs.error_message(exc))


# ----------------------------------------------------------------------------- drawing
def draw_live(progress):
    """The newest snapshot from one progress payload, and the loss / gradient-norm figure when
    the payload carries the histories (a few times a second). A forged payload draws what it
    holds that is readable (:func:`visualizer.training_stores.clean_progress`), else nothing."""
    progress = training_stores.clean_progress(progress)
    if progress is None:
        return no_update, no_update
    try:
        losses = progress_figure(progress["archs"]) if progress["full"] else no_update
        return losses, flow_figure(progress["live"])
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
        log.warning("progress payload not drawable: %s", str(e)[:200])
        return no_update, no_update


def snapshot_steps(record) -> list[int]:
    """The recorded training steps (union over architectures), sorted."""
    snaps = training_stores.clean_record(record)["snaps"]
    return sorted({s["step"] for items in snaps.values() for s in items})


def at_step(record, step: int) -> list[dict]:
    """Per architecture, the newest recorded snapshot at or before ``step``."""
    out = []
    for snaps in training_stores.clean_record(record)["snaps"].values():
        before = [s for s in snaps if s["step"] <= step]
        if before:
            out.append(before[-1])
    return out


def draw_snapshot(step, token, record):
    """The three figures at training step ``step`` (the newest snapshot at or before it; empty
    figures without a record). A forged record draws what it holds that is readable."""
    record = training_stores.clean_record(record)
    steps = snapshot_steps(record)
    if not steps:
        return progress_figure({}), flow_figure([]), evolution_figure({})
    readable = isinstance(step, int) or (isinstance(step, float) and math.isfinite(step))
    step = step if readable and not isinstance(step, bool) else steps[-1]
    step = int(max(steps[0], min(step, steps[-1])))  # exact for integers of any size
    try:
        return (progress_figure(record["archs"], selected_step=step), flow_figure(at_step(record, step)),
                evolution_figure(record["snaps"], selected_step=step))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
        log.warning("training record not drawable: %s", str(e)[:200])
        message = figures.message_figure("This training record cannot be drawn.")
        return message, message, message


MERGE_JS = """
function(payload, record, final, running) {
    const nu = window.dash_clientside.no_update;
    const p = payload;
    if (!p || (record && record.dropped)) { return [nu, nu, nu, nu, nu, nu, nu, nu, nu, nu]; }
    if (p.error) { return [nu, nu, nu, nu, nu, nu, nu, 'Not started.', p.error, nu]; }
    const same = record && record.run === p.run;
    const snaps = Object.assign({}, same ? record.snaps : {});
    for (const s of p.snaps) {
        const list = (snaps[s.arch] || []).slice();
        if (!list.some(x => x.step === s.step)) {
            list.push(s);
            list.sort((a, b) => a.step - b.step);
        }
        snaps[s.arch] = list;
    }
    const archs = {};
    for (const [a, h] of Object.entries(p.archs)) {
        archs[a] = Object.assign({}, (same && record.archs && record.archs[a]) || {}, h);
    }
    const rec = {run: p.run, key: p.key, every: p.every, archs: archs, snaps: snaps, status: p.status};
    const all = new Set();
    Object.values(snaps).forEach(l => l.forEach(s => all.add(s.step)));
    const steps = Array.from(all).sort((a, b) => a - b);
    const hist = Object.values(p.archs);
    const step = Math.max(0, ...hist.map(h => h.step));
    const total = hist.length ? hist[0].steps : 0;
    const done = p.status === 'done';
    const status = {run: p.run, key: p.key, step: step, done: done, status: p.status};
    const ckpt = p.checkpoint ? {run: p.run, step: p.checkpoint.step, data: p.checkpoint.data} : nu;
    const marks = {};
    marks[p.every || 1] = String(p.every || 1);
    marks[total] = String(total);
    const losses = hist.map(h => {
        const v = h.loss;
        const shown = typeof v === 'number' ? v.toPrecision(3) : v;
        return h.name + ' ' + (h.diverged ? 'diverged' : 'loss ' + shown);
    }).join(' · ');
    const clipped = hist.reduce((n, h) => n + (h.n_clipped || 0), 0);
    const state = final ? (done ? 'done' : 'paused') : (running ? 'training' : 'paused');
    const text = 'Step ' + step + ' / ' + total + ' (' + state + ') · ' + losses +
        (clipped ? ' · ' + clipped + ' clipped' : '');
    const every = p.every || 1;
    const top = steps.length ? Math.ceil(steps[steps.length - 1] / every) * every : every;
    const now = Date.now();
    const redraw = final || !record || !same || !record.drawn || now - record.drawn > REDRAW_MS;
    rec.drawn = redraw ? now : record.drawn;
    return [rec, status, ckpt, top, redraw ? top : nu, marks, String(step), text, p.note || '',
            redraw ? {t: now, live: !final} : nu];
}
"""

MERGE_JS = MERGE_JS.replace("REDRAW_MS", str(REDRAW_MS))
MERGE_PROGRESS_JS = f"function(p, record, pauseOff) {{ return ({MERGE_JS.strip()})(p, record, false, !pauseOff); }}"
MERGE_RESULT_JS = f"function(p, record) {{ return ({MERGE_JS.strip()})(p, record, true, false); }}"
RESET_JS = """
function(n) {
    return [{dropped: true}, null, null, 1, 1, {}, '0', 'Ready.', '', {t: Date.now()}];
}
"""
# after a Reset, late progress of the cancelled job is ignored until the next start
START_JS = """
function(play, step, record) {
    return (record && record.dropped) ? null : window.dash_clientside.no_update;
}
"""
# when a job ends without a result (Pause cancelled it), the status line says so
STOPPED_JS = """
function(pauseDisabled, text) {
    if (!pauseDisabled || typeof text !== 'string') { return window.dash_clientside.no_update; }
    return text.replace('(training)', '(paused)');
}
"""


# ----------------------------------------------------------------------------- registration
def register(app, manager=None, steps_input=(STEPS, "value"), params_store="params-store") -> None:
    """Attach the panel's callbacks to ``app``.

    ``manager``: the background-callback manager (default: the app's). ``steps_input`` is the
    (id, property) holding the number of steps; ``params_store`` the id of the app's params store.
    """
    app.callback(
        Output(RESULT_STORE, "data"),
        Input(PLAY, "n_clicks"), Input(STEP, "n_clicks"),
        State(params_store, "data"), State(*steps_input), State(STATUS, "data"), State(CHECKPOINT, "data"),
        State(limits.USER_STORE, "data"),
        background=True, manager=manager, interval=poll_ms(), prevent_initial_call=True,
        progress=[Output(PROGRESS_STORE, "data")],
        cancel=[Input(PAUSE, "n_clicks"), Input(RESET, "n_clicks")],
        running=[(Output(PLAY, "disabled"), True, False), (Output(STEP, "disabled"), True, False),
                 (Output(PAUSE, "disabled"), False, True), (Output(STEPS, "disabled"), True, False),
                 (Output(PANEL, "className"), "card training-panel running", "card training-panel")],
        on_error=job_error,
    )(train_job)
    merged = [Output(RECORD, "data", allow_duplicate=True), Output(STATUS, "data", allow_duplicate=True),
              Output(CHECKPOINT, "data", allow_duplicate=True), Output(SLIDER, "max", allow_duplicate=True),
              Output(SLIDER, "value", allow_duplicate=True), Output(SLIDER, "marks", allow_duplicate=True),
              Output(BAR, "value", allow_duplicate=True), Output(STATUS_LINE, "children", allow_duplicate=True),
              Output(MESSAGE, "children", allow_duplicate=True), Output(VIEW_TOKEN, "data", allow_duplicate=True)]
    # separate callbacks: one waiting on the job's result would not fire while the job runs
    app.clientside_callback(MERGE_PROGRESS_JS, *merged, Input(PROGRESS_STORE, "data"), State(RECORD, "data"),
                            State(PAUSE, "disabled"), prevent_initial_call=True)
    app.clientside_callback(MERGE_RESULT_JS, *merged, Input(RESULT_STORE, "data"), State(RECORD, "data"),
                            prevent_initial_call=True)
    app.clientside_callback(RESET_JS, *merged, Input(RESET, "n_clicks"), prevent_initial_call=True)
    app.clientside_callback(START_JS, Output(RECORD, "data", allow_duplicate=True), Input(PLAY, "n_clicks"),
                            Input(STEP, "n_clicks"), State(RECORD, "data"), prevent_initial_call=True)
    app.clientside_callback(STOPPED_JS, Output(STATUS_LINE, "children", allow_duplicate=True), Input(PAUSE, "disabled"),
                            State(STATUS_LINE, "children"), prevent_initial_call=True)
    app.clientside_callback(
        # JS braces would all need doubling in an f-string; this JS moves to assets/ soon
        "function(steps) { let n = Math.round(Number(steps)); n = n >= 1 ? Math.min(n, %d) : %d; "  # noqa: UP031
        "return [String(n), Math.max(1, Math.ceil(n / %d)), Math.max(1, Math.ceil(n / %d))]; }"
        % (training.MAX_STEPS, training.DEFAULT_STEPS, training.MAX_RECORDED, training.MAX_RECORDED),
        Output(BAR, "max"), Output(SLIDER, "step"), Output(SLIDER, "min"), Input(*steps_input))
    app.callback(
        Output(PROGRESS_GRAPH, "figure", allow_duplicate=True), Output(FLOW_GRAPH, "figure", allow_duplicate=True),
        Input(PROGRESS_STORE, "data"), prevent_initial_call=True,
    )(draw_live)
    app.callback(
        Output(PROGRESS_GRAPH, "figure", allow_duplicate=True), Output(FLOW_GRAPH, "figure", allow_duplicate=True),
        Output(EVOLUTION_GRAPH, "figure"),
        Input(SLIDER, "value"), Input(VIEW_TOKEN, "data"), State(RECORD, "data"),
        prevent_initial_call=True,
    )(draw_snapshot)
