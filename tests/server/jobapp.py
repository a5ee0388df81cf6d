"""A minimal app with one training background callback, wired exactly as a production job must be
(visualizer.jobs manager, visualizer.limits slot and time limit, ``on_error`` for "jobs
unavailable"). The server tests run it under gunicorn and a Celery worker
(``BPTTLAB_APP=tests.server.jobapp``), independently of the app's own training panel.

Inputs: ``start`` (n_clicks), ``cancel`` (n_clicks), ``lr``, ``steps``, ``pace`` (seconds slept per
snapshot, so a test can watch progress), ``user-id-store``. Outputs: ``result`` (final text),
``progress`` (``"step k/n"``).
"""
from __future__ import annotations

import contextlib
import threading
import time

from dash import Dash, Input, Output, State, dcc, html

import core
from tests.server.dash_http import DashSession
from visualizer import ids, jobs, limits

START, CANCEL, RESULT, PROGRESS, LR, STEPS, PACE, QUICK_IN, QUICK_OUT = (
    "start", "cancel", "result", "progress", "lr", "steps", "pace", "quick-in", "quick-out")


def layout():
    """The page: a quick control and its output, the job's inputs, buttons and outputs."""
    return html.Div([
        limits.user_store(),
        dcc.Input(id=QUICK_IN, value="1"), html.Div(id=QUICK_OUT),
        dcc.Input(id=LR, value=0.01), dcc.Input(id=STEPS, value=20), dcc.Input(id=PACE, value=0.0),
        html.Button("train", id=START), html.Button("cancel", id=CANCEL),
        html.Div(id=PROGRESS), html.Div(id=RESULT),
    ])


def quick(value):
    """A quick view: no background job, no Redis."""
    n = int(value) if str(value).isdigit() else 0
    return f"quick {n * 2}"


def train_job(set_progress, n_clicks, lr, steps, pace, user_id):
    """Train a small RNN with the given learning rate, reporting each snapshot."""
    config = core.TrainConfig(task="adding", arch="rnn", hidden_size=8, seq_len=20, batch_size=4,
                              lr=float(lr), steps=int(steps), snapshot_every=1, jacobians=False,
                              optimizer="sgd", init="normal", init_scale=1.0)
    try:
        with limits.job_slot(user_id) as slot:
            last, note = None, ""
            for snap in core.train_iter(config):
                last = snap
                slot.touch()
                set_progress(f"step {snap.step}/{snap.steps}")
                if slot.expired():
                    note = " " + slot.time_message()
                    break
                time.sleep(float(pace))
    except (limits.LimitReached, jobs.JobsUnavailable) as e:
        return str(e)
    state = f"diverged at step {last.step}" if last.diverged else f"finished {last.step} steps"
    return f"{state}; loss {last.loss:.4g}{note}"


def job_error(exc):
    """``on_error``: the job could not start or its queue vanished."""
    return jobs.error_message(exc)


def create_app() -> Dash:
    """The test app with the process's background manager."""
    app = Dash(__name__, background_callback_manager=jobs.background_manager())
    app.layout = layout
    limits.register_identity(app)
    app.callback(Output(QUICK_OUT, "children"), Input(QUICK_IN, "value"))(quick)
    app.callback(Output(RESULT, "children"), Input(START, "n_clicks"),
                 State(LR, "value"), State(STEPS, "value"), State(PACE, "value"), State(ids.USER_STORE, "data"),
                 background=True, progress=[Output(PROGRESS, "children")], cancel=[Input(CANCEL, "n_clicks")],
                 prevent_initial_call=True, interval=200, on_error=job_error)(train_job)
    app._setup_server()  # before serving, as visualizer.app.finish_setup does
    return app



# ----------------------------------------------------------------------------- driving the page from a test
def open_page(base, http, user=None, **values) -> DashSession:
    """A loaded page at ``base`` (requests through ``http``) with a user id (a fresh one unless given) and
    the job's inputs set by id (``steps=30, pace=0.03``)."""
    s = DashSession(base, http).load()
    s.props[(ids.USER_STORE, "data")] = user or limits.new_user_id()
    for key, value in values.items():
        s.props[(key, "value")] = value
    return s


def press_start(s, **kwargs):
    """Click "train" and follow the job to its end as the browser does (``kwargs`` go to
    :meth:`DashSession.run_background`)."""
    s.props[(START, "n_clicks")] = (s.props.get((START, "n_clicks")) or 0) + 1
    return s.run_background(s.find(f"{RESULT}.children"), [f"{START}.n_clicks"], **kwargs)


@contextlib.contextmanager
def job_running(s, join: float = 120.0):
    """Press "train" on page ``s`` in a thread and enter once its job reports progress (within 60 s);
    on exit wait for the job to end (up to ``join`` seconds)."""
    started = threading.Event()
    thread = threading.Thread(target=lambda: press_start(s, on_progress=lambda d: started.set()))
    thread.start()
    try:
        assert started.wait(60), "the job reported no progress"
        yield
    finally:
        thread.join(join)


app = create_app()
server = app.server
