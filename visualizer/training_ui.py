"""The live-training panel: layout and callbacks (training itself runs as a Dash background job).

Data flow (all per-user state lives in the browser, in ``dcc.Store``)::

    ▶ Train / ⏭ Step ──> train_job (background: visualizer.training.run_job in a job slot)
        │ progress, ~10 a second                 │ final result
        v                                        v
    PROGRESS store ──> draw_live (server: the loss / gradient-norm figure and the newest
        │                          snapshot, from that payload alone)
        └──────────────> merge (assets/training.js) <── RESULT store, ⟲ Reset
                           │ RECORD (every recorded snapshot), STATUS (run, step),
                           │ CHECKPOINT (to resume), slider, progress bar, status line
                           v
    slider / VIEW token ──> draw_snapshot (server: the three figures at the chosen snapshot)

⏸ Pause and ⟲ Reset cancel the job (Dash's ``cancel=``); ▶ Train after a pause continues the
same run exactly from the last checkpoint. The job's inputs are uploaded once per start (Dash
clears them from its polling requests), and progress payloads hold only a window of recent
snapshots, so traffic stays small. While the job waits in the queue (Celery), its progress is
``{"queued": n}`` and the status line shows the position; a job whose worker died ends with a
message (:data:`visualizer.jobs.LOST_WORKER`) and ▶ Train resumes from the last checkpoint.
Component ids live in :mod:`visualizer.ids`.
"""
from __future__ import annotations

import logging
import math
import os

from dash import ClientsideFunction, Input, Output, State, ctx, dcc, html, no_update

from . import figures, ids, jobs, limits, training, training_stores
from .framing import GRAPH_CONFIG, PRESENT_SCALE, present_figure
from .training_figures import evolution_figure, flow_figure, progress_figure
from .urlstate import Params

log = logging.getLogger(__name__)

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
def browser_constants() -> dict:
    """The numbers ``assets/training.js`` needs, from their one home here and in :mod:`visualizer.training`."""
    return {"redraw_ms": REDRAW_MS, "max_steps": training.MAX_STEPS, "default_steps": training.DEFAULT_STEPS,
            "max_recorded": training.MAX_RECORDED}


def _button(id_, label, title, disabled=False, primary=False):
    """A large control button."""
    return html.Button(label, id=id_, n_clicks=0, title=title, disabled=disabled,
                       className="train-button" + (" train-button--primary" if primary else ""))


def _graph(id_, height):
    """A graph with a PNG button and no logo, ``height`` px tall (``PRESENT_SCALE`` times that in
    presentation mode, where its figures come scaled: assets/classroom.css)."""
    return dcc.Graph(id=id_, config=GRAPH_CONFIG, className="graph",
                     style={"height": f"{height}px", "--present-height": f"{round(height * PRESENT_SCALE)}px"},
                     figure=progress_figure({}) if id_ == ids.TRAIN_PROGRESS_GRAPH else
                     (flow_figure([]) if id_ == ids.TRAIN_FLOW_GRAPH else evolution_figure({})))


def panel(steps: int = training.DEFAULT_STEPS) -> html.Section:
    """The training card: buttons, steps, progress, three figures, the snapshot slider, stores."""
    return html.Section(id=ids.TRAIN_PANEL, className="card training-panel", children=[
        html.H2("Training, live: does the gradient reach further as the network learns?", className="card-title"),
        html.Div(className="train-controls", children=[
            _button(ids.TRAIN_PLAY, "▶ Train", "Train every chosen architecture (continues after a pause)",
                    primary=True),
            _button(ids.TRAIN_PAUSE, "❚❚ Pause", "Stop training here (▶ continues exactly where it stopped)",
                    disabled=True),
            _button(ids.TRAIN_STEP, "▶❚ Step", "Train until the next recorded snapshot"),
            _button(ids.TRAIN_RESET, "↺ Reset", "Forget this run and start again from the initial weights"),
            html.Label(["steps ", dcc.Input(id=ids.STEPS, type="number", value=steps, min=1, max=training.MAX_STEPS,
                                            step=1, debounce=True, className="number-input train-steps")],
                       className="train-steps-label"),
            html.Progress(id=ids.TRAIN_BAR, value="0", max=str(steps), className="train-bar"),
            html.Span("Ready.", id=ids.TRAIN_STATUS_LINE, className="train-status", role="status"),
        ]),
        html.Div(id=ids.TRAIN_MESSAGE, className="messages train-message", role="alert"),
        _graph(ids.TRAIN_PROGRESS_GRAPH, 430),
        html.Div(className="train-row",
                 children=[_graph(ids.TRAIN_FLOW_GRAPH, 400), _graph(ids.TRAIN_EVOLUTION_GRAPH, 400)]),
        html.Div(className="train-slider", children=[
            html.Label("Snapshot: training step", className="field-label"),
            # disabled, at 0, with no value box until the record holds a snapshot (assets/training.js)
            dcc.Slider(id=ids.TRAIN_SLIDER, min=0, max=0, step=training.record_every(steps), value=0, marks=None,
                       disabled=True, allow_direct_input=False, updatemode="mouseup", className="slider"),
        ]),
        html.P(CAPTION, className="caption how-to-read"),
        dcc.Store(id=ids.TRAIN_PROGRESS), dcc.Store(id=ids.TRAIN_RESULT), dcc.Store(id=ids.TRAIN_RECORD),
        dcc.Store(id=ids.TRAIN_STATUS), dcc.Store(id=ids.TRAIN_CHECKPOINT), dcc.Store(id=ids.TRAIN_VIEW_TOKEN),
        dcc.Store(id=ids.TRAIN_CONSTANTS, data=browser_constants()),
    ])


# ----------------------------------------------------------------------------- the job
def _error(message: str) -> dict:
    """A result payload that only carries a message for the user."""
    return {"error": message}


def _step_of(value, steps: int) -> int:
    """A step the browser reports (it may be forged): a whole number in [0, steps], else 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    try:
        step = int(value)
    except (OverflowError, ValueError):  # inf, nan
        return 0
    return step if 0 <= step <= steps and step == value else 0


def plan(trigger, params: Params, steps: int, status, checkpoint) -> dict:
    """Where a job starts and stops: ``{"start", "target", "run_id", "checkpoint"}``.

    The same settings and an unfinished run continue it (from ``status["step"]``, resuming
    from ``checkpoint`` if it belongs to that run); anything else starts a new run. ▶ trains
    to the end, ⏭ to the next recorded snapshot.
    """
    key = training.run_key(params, steps)
    same = isinstance(status, dict) and status.get("key") == key and not status.get("done")
    start = _step_of(status.get("step"), steps) if same else 0
    run_id = status.get("run") if same and isinstance(status.get("run"), str) and len(status["run"]) <= 64 else None
    ckpt = checkpoint.get("data") if same and isinstance(checkpoint, dict) and checkpoint.get("run") == run_id else None
    every = training.record_every(steps)
    target = steps if trigger != ids.TRAIN_STEP else min(steps, (start // every + 1) * every)
    return {"start": start, "target": target, "run_id": run_id, "checkpoint": ckpt}


def train_job(set_progress, play, step, store, steps, status, checkpoint, user_id):
    """Background callback: train the chosen architectures, reporting progress, in a job slot."""
    params = Params.from_dict(store or {})
    steps_note = training.steps_message(steps)
    steps = training.clamp_steps(steps)
    if not params.arch:
        return _error("Pick at least one architecture to train.")
    message = limits.training_message(params, steps)
    if message:
        return _error(message)
    note = {}
    try:
        where = plan(ctx.triggered_id, params, steps, status, checkpoint)
        with limits.job_slot(user_id) as slot:
            def keep_going():
                slot.touch()
                if slot.expired():
                    note["text"] = slot.time_message()
                    return False
                return True

            result = training.run_job(set_progress, params, steps, where["target"], where["start"],
                                      where["checkpoint"], where["run_id"], keep_going=keep_going,
                                      history_hold=max(training.HISTORY_HOLD_SECONDS, 2 * poll_ms() / 1000))
    except (limits.LimitReached, jobs.JobsUnavailable) as e:
        return _error(str(e))
    except ValueError as e:  # impossible task settings, from the core
        return _error(f"Cannot train this configuration: {e}")
    result["note"] = " ".join(t for t in (steps_note, note.get("text")) if t) or None
    return result


def job_error(exc):
    """``on_error`` of the job: the queue is down or the job failed."""
    return _error(jobs.error_message(exc))


# ----------------------------------------------------------------------------- drawing
def _framed(figs, present) -> tuple:
    """``figs`` as drawn: scaled for a projector (:func:`visualizer.framing.present_figure`) when
    ``present`` is true (the present store; anything but ``True`` means normal mode)."""
    if present is not True:
        return tuple(figs)
    return tuple(present_figure(f) if isinstance(f, dict) else f for f in figs)


def draw_live(progress, present=None):
    """The newest snapshot from one progress payload, and the loss / gradient-norm figure when
    the payload carries the histories (a few times a second). A forged payload draws what it
    holds that is readable (:func:`visualizer.training_stores.clean_progress`), else nothing.
    ``present``: presentation mode."""
    progress = training_stores.clean_progress(progress)
    if progress is None:
        return no_update, no_update
    try:
        losses = progress_figure(progress["archs"]) if progress["full"] else no_update
        return _framed((losses, flow_figure(progress["live"])), present)
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


def draw_snapshot(step, token, record, present=None):
    """The three figures at training step ``step`` (the newest snapshot at or before it; before
    the first snapshot, only the losses so far; empty figures without a record). A forged record
    draws what it holds that is readable.
    ``present``: presentation mode (its change redraws them)."""
    record = training_stores.clean_record(record)
    steps = snapshot_steps(record)
    if not steps:  # no snapshot yet (a run's first steps come before its first one): the losses so far
        try:
            losses = progress_figure(record["archs"])
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
            log.warning("training record not drawable: %s", str(e)[:200])
            losses = figures.message_figure("This training record cannot be drawn.")
        return _framed((losses, flow_figure([]), evolution_figure({})), present)
    readable = isinstance(step, int) or (isinstance(step, float) and math.isfinite(step))
    step = step if readable and not isinstance(step, bool) else steps[-1]
    step = int(max(steps[0], min(step, steps[-1])))  # exact for integers of any size
    try:
        return _framed((progress_figure(record["archs"], selected_step=step), flow_figure(at_step(record, step)),
                        evolution_figure(record["snaps"], selected_step=step)), present)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
        log.warning("training record not drawable: %s", str(e)[:200])
        message = figures.message_figure("This training record cannot be drawn.")
        return message, message, message


# ----------------------------------------------------------------------------- registration
def js(name: str) -> ClientsideFunction:
    """A function of ``assets/training.js``."""
    return ClientsideFunction("training", name)


def register(app, manager=None, steps_input=(ids.STEPS, "value"), params_store="params-store",
             present_store=None) -> None:
    """Attach the panel's callbacks to ``app``.

    ``manager``: the background-callback manager (default: the app's). ``steps_input`` is the
    (id, property) holding the number of steps; ``params_store`` the id of the app's params store;
    ``present_store`` the id of the store that is true in presentation mode (None: never).
    """
    live_present = [State(present_store, "data")] if present_store else []
    snapshot_present = [Input(present_store, "data")] if present_store else []
    app.callback(
        Output(ids.TRAIN_RESULT, "data"),
        Input(ids.TRAIN_PLAY, "n_clicks"), Input(ids.TRAIN_STEP, "n_clicks"),
        State(params_store, "data"), State(*steps_input), State(ids.TRAIN_STATUS, "data"),
        State(ids.TRAIN_CHECKPOINT, "data"),
        State(ids.USER_STORE, "data"),
        background=True, manager=manager, interval=poll_ms(), prevent_initial_call=True,
        progress=[Output(ids.TRAIN_PROGRESS, "data")],
        cancel=[Input(ids.TRAIN_PAUSE, "n_clicks"), Input(ids.TRAIN_RESET, "n_clicks")],
        running=[(Output(ids.TRAIN_PLAY, "disabled"), True, False), (Output(ids.TRAIN_STEP, "disabled"), True, False),
                 (Output(ids.TRAIN_PAUSE, "disabled"), False, True), (Output(ids.STEPS, "disabled"), True, False),
                 (Output(ids.TRAIN_PANEL, "className"), "card training-panel running", "card training-panel")],
        on_error=job_error,
    )(train_job)
    merged = [Output(ids.TRAIN_RECORD, "data", allow_duplicate=True),
              Output(ids.TRAIN_STATUS, "data", allow_duplicate=True),
              Output(ids.TRAIN_CHECKPOINT, "data", allow_duplicate=True),
              Output(ids.TRAIN_SLIDER, "max", allow_duplicate=True),
              Output(ids.TRAIN_SLIDER, "value", allow_duplicate=True),
              Output(ids.TRAIN_SLIDER, "marks", allow_duplicate=True),
              Output(ids.TRAIN_BAR, "value", allow_duplicate=True),
              Output(ids.TRAIN_STATUS_LINE, "children", allow_duplicate=True),
              Output(ids.TRAIN_MESSAGE, "children", allow_duplicate=True),
              Output(ids.TRAIN_VIEW_TOKEN, "data", allow_duplicate=True),
              Output(ids.TRAIN_SLIDER, "min", allow_duplicate=True),
              Output(ids.TRAIN_SLIDER, "disabled", allow_duplicate=True)]
    constants = State(ids.TRAIN_CONSTANTS, "data")
    # separate callbacks: one waiting on the job's result would not fire while the job runs
    app.clientside_callback(js("merge_progress"), *merged, Input(ids.TRAIN_PROGRESS, "data"),
                            State(ids.TRAIN_RECORD, "data"), State(ids.TRAIN_PAUSE, "disabled"), constants,
                            prevent_initial_call=True)
    app.clientside_callback(js("merge_result"), *merged, Input(ids.TRAIN_RESULT, "data"),
                            State(ids.TRAIN_RECORD, "data"), constants, prevent_initial_call=True)
    app.clientside_callback(js("reset"), *merged, Input(ids.TRAIN_RESET, "n_clicks"), prevent_initial_call=True)
    app.clientside_callback(js("start"), Output(ids.TRAIN_RECORD, "data", allow_duplicate=True),
                            Input(ids.TRAIN_PLAY, "n_clicks"), Input(ids.TRAIN_STEP, "n_clicks"),
                            State(ids.TRAIN_RECORD, "data"), prevent_initial_call=True)
    app.clientside_callback(js("stopped"), Output(ids.TRAIN_STATUS_LINE, "children", allow_duplicate=True),
                            Input(ids.TRAIN_PAUSE, "disabled"), State(ids.TRAIN_STATUS_LINE, "children"),
                            prevent_initial_call=True)
    app.clientside_callback(js("steps_range"), Output(ids.TRAIN_BAR, "max"), Output(ids.TRAIN_SLIDER, "step"),
                            Input(*steps_input), constants)
    app.callback(
        Output(ids.TRAIN_PROGRESS_GRAPH, "figure", allow_duplicate=True),
        Output(ids.TRAIN_FLOW_GRAPH, "figure", allow_duplicate=True),
        Input(ids.TRAIN_PROGRESS, "data"), *live_present, prevent_initial_call=True,
    )(draw_live)
    app.callback(
        Output(ids.TRAIN_PROGRESS_GRAPH, "figure", allow_duplicate=True),
        Output(ids.TRAIN_FLOW_GRAPH, "figure", allow_duplicate=True),
        Output(ids.TRAIN_EVOLUTION_GRAPH, "figure"),
        Input(ids.TRAIN_SLIDER, "value"), Input(ids.TRAIN_VIEW_TOKEN, "data"), State(ids.TRAIN_RECORD, "data"),
        *snapshot_present, prevent_initial_call=True,
    )(draw_snapshot)
