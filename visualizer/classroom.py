"""Classroom aids: presets, export buttons, your own weights, presentation mode.

Widget factories and module-level callbacks (glue only: parse inputs, call
:mod:`visualizer.presets`, :mod:`visualizer.export`, :mod:`visualizer.weights`, the core, and
the figure builders). :func:`register` wires them to the app's page (its URL, params store and
view tabs). Component ids are in :mod:`visualizer.ids`; the browser-side callbacks are
``window.dash_clientside.classroom`` in ``assets/classroom.js``.

Presentation mode: ``?present=1`` in the URL (or the toggle) hides every control and enlarges
the text; ``?<name>_hide=1`` hides one control or card, as TensorFlow Playground does
(``seq_len_hide``, ``arch_hide``, ..., ``presets_hide``, ``training_hide``, ``export_hide``,
``upload_hide``). The CSS is in ``assets/classroom.css``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from dash import ClientsideFunction, Input, Output, State, ctx, dcc, html, no_update

import core

from . import compute, export, ids, lessons, presets, shelf, weights
from .cache import memoize
from .urlstate import SPEC, TRUE_WORDS, Params, query_pairs

log = logging.getLogger(__name__)

CARDS = ("presets", "training", "export", "upload")  # extra ``<name>_hide`` keys besides the controls


# ----------------------------------------------------------------------------- widgets
def preset_card() -> html.Section:
    """A dropdown of presets and, when the settings match one, its explanation."""
    return html.Section(className="card preset-card hide-target-presets", children=[
        html.Div(className="toolbar", children=[
            html.Label("Show me:", htmlFor=ids.PRESET_DROPDOWN, className="preset-title"),
            dcc.Dropdown(id=ids.PRESET_DROPDOWN, options=presets.options(), value=None, clearable=True,
                         searchable=False, placeholder="a known result (sets every control)…",
                         style={"minWidth": "26rem"}),
        ]),
        html.Div(id=ids.PRESET_EXPLANATION, className="preset-explanation", role="status"),
    ])


def export_toolbar() -> html.Div:
    """Buttons that download the current view's data (CSV, JSON) or an offline HTML report."""
    def button(id_, label, title):
        return html.Button(label, id=id_, n_clicks=0, title=title, className="train-button")

    return html.Div(className="toolbar export-toolbar hide-target-export", children=[
        html.Span("Export this view:", className="preset-title"),
        button(ids.EXPORT_CSV, "CSV", "The plotted numbers, one row per value"),
        button(ids.EXPORT_JSON, "JSON", "The plotted numbers with the settings"),
        button(ids.EXPORT_HTML, "HTML report", "A standalone page with these plots; opens offline"),
        html.Span(id=ids.EXPORT_MESSAGE, className="field-hint"),
        dcc.Download(id=ids.EXPORT_DOWNLOAD),
    ])


def upload_card() -> html.Section:
    """Upload an .npz state dict; its gradient flow joins the main plot (see :func:`flow_of_upload`)."""
    return html.Section(className="card upload-card hide-target-upload", children=[
        html.H2("Your own weights", className="card-title"),
        dcc.Upload(id=ids.UPLOAD, multiple=False, className="upload-box",
                   accept=".npz", children=html.Div([
                       "Drop an .npz state dict here or click to choose one (PyTorch layout: weight_ih_l0, "
                       "weight_hh_l0, bias_*, readout.weight, readout.bias; "
                       f"at most {weights.MAX_BYTES // 2**20} MB)."])),
        html.Div(id=ids.UPLOAD_STATUS, className="upload-status", role="status"),
        html.Button("Remove", id=ids.UPLOAD_CLEAR, n_clicks=0, className="train-button", style={"display": "none"}),
        html.P("The uploaded network appears as a dashed curve in the ‖∂L/∂hₜ‖ plot above, on the same axis as the "
               "fresh networks. It runs on the current task, sequence length, batch and seed when its input and "
               "output sizes fit that task (else on another task that fits, else on random inputs).",
               className="caption how-to-read"),
        dcc.Store(id=ids.WEIGHTS_STORE), dcc.Store(id=ids.UPLOAD_PENDING),
        dcc.Store(id=ids.UPLOAD_LIMITS, data=upload_limits()),
    ])


def present_toggle() -> html.Div:
    """The presentation-mode switch, and the button that leaves it (visible only in that mode)."""
    return html.Div([
        html.Button("Presentation mode", id=ids.PRESENT_TOGGLE, n_clicks=0, className="train-button present-toggle",
                    title="Large text, no controls (also ?present=1 in the URL)"),
        html.Button("✕ Leave presentation", id=ids.PRESENT_EXIT, n_clicks=0, className="train-button present-exit"),
        dcc.Store(id=ids.PRESENT_STORE),
    ], className="present-buttons")


# ----------------------------------------------------------------------------- presets
def preset_controls(key, store=None) -> list:
    """Control values (``visualizer.ids.CONTROL_IDS`` order, training steps included) of the chosen
    preset; all ``no_update`` for no preset, or when the settings in ``store`` already are that
    preset (the dropdown only followed them). The URL follows the controls by itself."""
    p = presets.get(key)
    if p is None or (isinstance(store, dict) and presets.matching(Params.from_dict(store)) == key):
        return [no_update] * len(ids.CONTROL_IDS)
    values = []
    for name in ids.CONTROL_IDS:
        v = getattr(p.params, name)
        v = "" if v is None else v  # an empty number box (None would make dcc.Input show "NaN" after a number)
        values.append(list(v) if name == "arch" else (["match"] if v else []) if name == "match_params" else v)
    return values


def preset_explanation(store):
    """The title and explanation of the preset matching the current settings, or nothing."""
    if not isinstance(store, dict):
        return []
    key = presets.matching(Params.from_dict(store))
    p = presets.get(key)
    if p is None:
        return []
    extra = " Press ▶ Train below to see it." if p.train_steps else ""
    try:
        text = lessons.preset_text(key, p.params)
    except Exception:  # keep serving: the preset's title alone is still right
        log.exception("explanation of preset %s failed", key)
        text = ""
    return [html.Span(p.title + ". ", className="preset-title"), text + extra]


def preset_shown(store, current):
    """The dropdown's value: the preset whose settings the page shows (a link's ``?preset=``, a
    choice, or settings made by hand), None when they match none; ``no_update`` if unchanged."""
    key = presets.matching(Params.from_dict(store)) if isinstance(store, dict) else None
    return no_update if key == current else key


# ----------------------------------------------------------------------------- export
def _current(store, tab) -> Params:
    """The params of the page (store plus the open tab)."""
    data = dict(store) if isinstance(store, dict) else {}
    data["view"] = tab
    return Params.from_dict(data)


def export_view(csv_clicks, json_clicks, html_clicks, store, tab):
    """A ``dcc.Download`` payload of the current view's data or report, and a message."""
    trigger = ctx.triggered_id
    if trigger not in (ids.EXPORT_CSV, ids.EXPORT_JSON, ids.EXPORT_HTML) or not isinstance(store, dict):
        return no_update, no_update
    params = _current(store, tab)
    try:
        if trigger == ids.EXPORT_HTML:
            text, ext, mime = export.report(params), "html", "text/html"
        else:
            series = export.view_series(params)
            text, ext, mime = ((export.to_csv(series), "csv", "text/csv") if trigger == ids.EXPORT_CSV
                               else (export.to_json(series, params, indent=1), "json", "application/json"))
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as e:
        return no_update, f"Nothing to export: {e}"
    return dict(content=text, filename=export.filename(params, ext), type=mime, base64=False), ""


# ----------------------------------------------------------------------------- uploads
@dataclass(frozen=True, eq=False)
class UploadedFlow:
    """What :func:`visualizer.figures.grad_norm_figure` reads, for an uploaded model."""

    arch: str
    name: str
    hidden_grad_norms: np.ndarray
    note: str


def uploaded_flow(model: core.Model, params: Params) -> UploadedFlow:
    """BPTT of an uploaded ``model`` on the app's data (task, seq_len, batch, seed).

    The current task if the model's sizes fit it, else the first task that fits (with the same
    seq_len, batch and seed), else standard-normal inputs scored by MSE against 0 at the last step.
    Batch, then seq_len, are lowered when the run would exceed the work cap
    (:func:`visualizer.weights.run_size`; the note says so).
    """
    c = model.config
    T, B, size_note = weights.run_size(c, params.seq_len, params.batch)
    fits = weights.matching_tasks(c)
    task_name = params.task if params.task in fits else (fits[0] if fits else None)
    if task_name is not None:
        task = core.make_task(task_name, T, B, seed=params.seed)
        y = task.y[-1] if (params.loss_on == "last" and task.loss_on == "all") else task.y
        loss_on = "last" if (params.loss_on == "last" and task.loss_on == "all") else task.loss_on
        x, loss = task.x, task.loss
        note = f"on the {task_name} task" + ("" if task_name == params.task else
                                             f" (its sizes do not fit {params.task})")
    else:
        rng = np.random.default_rng(params.seed)
        x = rng.standard_normal((T, B, c.input_size))
        y, loss, loss_on = np.zeros((B, c.output_size)), "mse", "last"
        note = f"on random inputs (input size {c.input_size} fits no task)"
    truncate = params.truncate if params.truncate is not None and params.truncate < T else None
    res = core.bptt(model, x, y, loss=loss, loss_on=loss_on, truncate=truncate)
    arch = "rnn-relu" if c.arch == "rnn" and c.nonlinearity == "relu" else c.arch
    return UploadedFlow(arch, f"your {compute.DISPLAY_NAMES[arch]}", res.hidden_grad_norms,
                        note + (f", {size_note}" if size_note else ""))


@memoize(maxsize=32, max_bytes=64 * 1024 * 1024, key=lambda job: job[0])
def _cached_flow(job) -> UploadedFlow:
    """:func:`uploaded_flow` of job = (key, model, params), computed once per key."""
    _, model, params = job
    return uploaded_flow(model, params)


def upload_weights(contents, filename, resent=False):
    """Check an upload and shelve it for the page changes after it (:mod:`visualizer.shelf`):
    (status text, status class, weights store data or None). The store holds the upload's
    digest, what later page changes send instead of the file (and ``resent``: the page sent it
    again because the server had lost it, see ``classroom.resendUpload`` in assets/classroom.js)."""
    if contents is None:
        return "", "upload-status", None
    try:
        up, data = weights.decode_checked(contents, filename)
    except weights.WeightsError as e:
        return f"Rejected: {e}", "upload-status error", None
    name = str(filename or "upload")[:120]
    shared = shelf.put(up.digest, data)
    meta = {"filename": name, "summary": up.summary, "arch": up.arch, "digest": up.digest}
    return (f"Loaded {name}: {up.summary}." + ("" if shared else " (Kept by one server process only: if it "
                                                 "disappears from the plot, upload it again.)"),
            "upload-status ok", {**meta, "resent": True} if resent else meta)


MISSING = "is no longer on the server"  # in the note; assets/classroom.js sends the upload again once on seeing it
LOST = ("Your uploaded model {name} " + MISSING + " (it keeps only the most recent uploads): {what}")
RESENDING, GIVE_UP = "sending it again…", "press Remove and upload it again."


def flow_of_upload(params: Params, meta):
    """(:class:`UploadedFlow` or None, a note for the info line or None) for the checked upload
    named by the weights store ``meta`` (its ``digest``).

    The upload is found by its digest (this process's cache, else the shelf, see
    :func:`visualizer.weights.stored_weights`) and run once per setting it depends on; any
    failure, a forged store included, becomes the note."""
    if not isinstance(meta, dict):
        return None, None
    name = str(meta.get("filename", "upload"))[:120]
    try:
        up = weights.stored_weights(meta.get("digest"), shelf.get)
        key = (up.digest, params.task, params.seq_len, params.batch, params.seed, params.loss_on, params.truncate)
        flow = _cached_flow((key, up.model, params))
    except weights.UploadMissing:
        return None, LOST.format(name=name, what=GIVE_UP if meta.get("resent") else RESENDING)
    except (weights.WeightsError, ValueError, FloatingPointError, np.linalg.LinAlgError) as e:
        return None, f"Your uploaded model cannot run here: {e}"
    except Exception as e:  # keep serving; the note names the problem
        log.exception("the uploaded model failed to run")
        return None, f"Your uploaded model cannot run here ({type(e).__name__})."
    return flow, f"Dashed: {name} ({up.summary}), run {flow.note}."


def mark_uploaded(fig):
    """Draw the traces of an uploaded model (named ``your ...``) dashed, in their own legend group."""
    if isinstance(fig, dict):
        for trace in fig.get("data", []):
            if str(trace.get("name", "")).startswith("your "):
                trace["line"] = {**trace.get("line", {}), "dash": "dash"}
                trace["legendgroup"] = "uploaded"
    return fig


def upload_limits() -> dict:
    """The constants of ``classroom.checkUpload`` and ``classroom.resendUpload`` (assets/classroom.js):
    the upload size limit, the words of the note saying the server lost an upload, the pending store."""
    return {"max_bytes": weights.MAX_BYTES, "missing": MISSING, "pending": ids.UPLOAD_PENDING}


def upload_status(pending):
    """Callback: check the upload the browser let through (``classroom.checkUpload`` in assets/classroom.js),
    or sent again (``classroom.resendUpload``)."""
    if not isinstance(pending, dict):
        return no_update, no_update, no_update
    return upload_weights(pending.get("contents"), pending.get("filename"), bool(pending.get("resent")))


# ----------------------------------------------------------------------------- presentation
def display_flags(search) -> dict:
    """``{"present": bool, "hide": [names]}`` from a URL query (``present``, ``<name>_hide``)."""
    flags = {"present": False, "hide": []}
    pairs = query_pairs(search)
    if pairs is None:
        return flags
    names = set(SPEC) | set(CARDS)
    for key, value in pairs:
        key, on = key.strip().lower(), value.strip().lower() in TRUE_WORDS
        if key == "present":
            flags["present"] = on
        elif key.endswith("_hide") and key[:-5] in names and on:
            flags["hide"].append(key[:-5])
    return flags


def page_class(flags, base="page") -> str:
    """The page's class names for ``flags`` (see :func:`display_flags`)."""
    classes = [base] + (["present"] if flags.get("present") else [])
    return " ".join(classes + [f"hide-{name}" for name in sorted(set(flags.get("hide", [])))])


def presentation(search, toggles, exits, current):
    """The page class: set by display flags in the URL, flipped by the toggle, cleared by the exit
    button. A URL without display flags (e.g. after the app rewrote its query) changes nothing."""
    trigger = ctx.triggered_id
    classes = str(current or "page").split()
    if trigger in (ids.PRESENT_TOGGLE, ids.PRESENT_EXIT):
        on = trigger == ids.PRESENT_TOGGLE and "present" not in classes
        return " ".join([c for c in classes if c != "present"] + (["present"] if on else []))
    flags = display_flags(search)
    if not flags["present"] and not flags["hide"]:
        return no_update
    return page_class(flags, base=classes[0] if classes else "page")


# ----------------------------------------------------------------------------- registration
def register(app) -> None:
    """Attach the callbacks (the browser-side ones are in assets/classroom.js)."""
    app.callback(*[Output(c, "value", allow_duplicate=True) for c in ids.CONTROL_IDS.values()],
                 Input(ids.PRESET_DROPDOWN, "value"), State(ids.PARAMS, "data"),
                 prevent_initial_call=True)(preset_controls)
    app.callback(Output(ids.PRESET_EXPLANATION, "children"), Input(ids.PARAMS, "data"))(preset_explanation)
    app.callback(Output(ids.PRESET_DROPDOWN, "value"), Input(ids.PARAMS, "data"),
                 State(ids.PRESET_DROPDOWN, "value"), prevent_initial_call=True)(preset_shown)
    app.callback(Output(ids.EXPORT_DOWNLOAD, "data"), Output(ids.EXPORT_MESSAGE, "children"),
                 Input(ids.EXPORT_CSV, "n_clicks"), Input(ids.EXPORT_JSON, "n_clicks"),
                 Input(ids.EXPORT_HTML, "n_clicks"), State(ids.PARAMS, "data"), State(ids.VIEW, "value"),
                 prevent_initial_call=True)(export_view)
    status = [Output(ids.UPLOAD_STATUS, "children", allow_duplicate=True),
              Output(ids.UPLOAD_STATUS, "className", allow_duplicate=True),
              Output(ids.WEIGHTS_STORE, "data", allow_duplicate=True)]
    # the browser rejects an over-size file before sending it (the server checks again: a client can send anything)
    app.clientside_callback(ClientsideFunction("classroom", "checkUpload"), Output(ids.UPLOAD_PENDING, "data"),
                            *status, Input(ids.UPLOAD, "contents"), State(ids.UPLOAD, "filename"),
                            State(ids.UPLOAD_LIMITS, "data"), prevent_initial_call=True)
    app.callback(*status, Input(ids.UPLOAD_PENDING, "data"), prevent_initial_call=True)(upload_status)
    # a page change whose server lost the upload says so in the info line: the page sends it again, once
    app.clientside_callback(ClientsideFunction("classroom", "resendUpload"), Input(ids.INFO, "children"),
                            State(ids.WEIGHTS_STORE, "data"), State(ids.UPLOAD_PENDING, "data"),
                            State(ids.UPLOAD_LIMITS, "data"), prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("classroom", "removeButtonStyle"), Output(ids.UPLOAD_CLEAR, "style"),
                            Input(ids.WEIGHTS_STORE, "data"), prevent_initial_call=True)
    app.clientside_callback(
        ClientsideFunction("classroom", "removeUpload"),
        Output(ids.UPLOAD, "contents"), Output(ids.UPLOAD, "filename"),
        Output(ids.UPLOAD_PENDING, "data", allow_duplicate=True), *status, Input(ids.UPLOAD_CLEAR, "n_clicks"),
        prevent_initial_call=True)
    app.callback(Output(ids.PAGE, "className"), Input(ids.URL, "search"), Input(ids.PRESENT_TOGGLE, "n_clicks"),
                 Input(ids.PRESENT_EXIT, "n_clicks"), State(ids.PAGE, "className"))(presentation)
    # the figures follow presentation mode (visualizer.framing.present_figure) through this store
    app.clientside_callback(ClientsideFunction("classroom", "isPresent"), Output(ids.PRESENT_STORE, "data"),
                            Input(ids.PAGE, "className"))
