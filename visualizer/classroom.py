"""Classroom aids: presets, export buttons, your own weights, presentation mode.

Widget factories and module-level callbacks (glue only: parse inputs, call
:mod:`visualizer.presets`, :mod:`visualizer.export`, :mod:`visualizer.weights`, the core, and
the figure builders). :func:`register` wires them to an app whose page has the part-1 URL
(``dcc.Location``), params store and view tabs.

Presentation mode: ``?present=1`` in the URL (or the toggle) hides every control and enlarges
the text; ``?<name>_hide=1`` hides one control or card, as TensorFlow Playground does
(``seq_len_hide``, ``arch_hide``, ..., ``presets_hide``, ``training_hide``, ``export_hide``,
``upload_hide``). The CSS is in ``assets/part2.css``.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
from dash import Input, Output, State, ctx, dcc, html, no_update

import core

from . import compute, export, ids, presets, weights
from .urlstate import SPEC, TRUE_WORDS, Params, query_pairs

log = logging.getLogger(__name__)

PRESET_DROPDOWN = "preset-dropdown"
PRESET_EXPLANATION = "preset-explanation"
EXPORT_CSV = "export-csv-button"
EXPORT_JSON = "export-json-button"
EXPORT_HTML = "export-html-button"
EXPORT_DOWNLOAD = "export-download"
EXPORT_MESSAGE = "export-message"
UPLOAD = "weights-upload"
UPLOAD_STATUS = "weights-upload-status"
UPLOAD_CLEAR = "weights-clear-button"
UPLOAD_PENDING = "weights-pending-store"
WEIGHTS_STORE = "weights-store"
PRESENT_TOGGLE = "present-toggle"
PRESENT_EXIT = "present-exit"
PRESENT_STORE = "present-store"

CARDS = ("presets", "training", "export", "upload")  # extra ``<name>_hide`` keys besides the controls


# ----------------------------------------------------------------------------- widgets
def preset_card() -> html.Section:
    """A dropdown of presets and, when the settings match one, its explanation."""
    return html.Section(className="card preset-card hide-target-presets", children=[
        html.Div(className="toolbar", children=[
            html.Label("Show me:", htmlFor=PRESET_DROPDOWN, className="preset-title"),
            dcc.Dropdown(id=PRESET_DROPDOWN, options=presets.options(), value=None, clearable=True, searchable=False,
                         placeholder="a known result (sets every control)…", style={"minWidth": "26rem"}),
        ]),
        html.Div(id=PRESET_EXPLANATION, className="preset-explanation", role="status"),
    ])


def export_toolbar() -> html.Div:
    """Buttons that download the current view's data (CSV, JSON) or an offline HTML report."""
    def button(id_, label, title):
        return html.Button(label, id=id_, n_clicks=0, title=title, className="train-button")

    return html.Div(className="toolbar export-toolbar hide-target-export", children=[
        html.Span("Export this view:", className="preset-title"),
        button(EXPORT_CSV, "CSV", "The plotted numbers, one row per value"),
        button(EXPORT_JSON, "JSON", "The plotted numbers with the settings"),
        button(EXPORT_HTML, "HTML report", "A standalone page with these plots; opens offline"),
        html.Span(id=EXPORT_MESSAGE, className="field-hint"),
        dcc.Download(id=EXPORT_DOWNLOAD),
    ])


def upload_card() -> html.Section:
    """Upload an .npz state dict; its gradient flow joins the main plot (see :func:`flow_of_upload`)."""
    return html.Section(className="card upload-card hide-target-upload", children=[
        html.H2("Your own weights", className="card-title"),
        dcc.Upload(id=UPLOAD, multiple=False, className="upload-box",
                   accept=".npz", children=html.Div([
                       "Drop an .npz state dict here or click to choose one (PyTorch layout: weight_ih_l0, "
                       "weight_hh_l0, bias_*, readout.weight, readout.bias; "
                       f"at most {weights.MAX_BYTES // 2**20} MB)."])),
        html.Div(id=UPLOAD_STATUS, className="upload-status", role="status"),
        html.Button("Remove", id=UPLOAD_CLEAR, n_clicks=0, className="train-button", style={"display": "none"}),
        html.P("The uploaded network appears as a dashed curve in the ‖∂L/∂hₜ‖ plot above, on the same axis as the "
               "fresh networks. It runs on the current task, sequence length, batch and seed when its input and "
               "output sizes fit that task (else on another task that fits, else on random inputs).",
               className="caption how-to-read"),
        dcc.Store(id=WEIGHTS_STORE), dcc.Store(id=UPLOAD_PENDING),
    ])


def present_toggle() -> html.Div:
    """The presentation-mode switch, and the button that leaves it (visible only in that mode)."""
    return html.Div([
        html.Button("Presentation mode", id=PRESENT_TOGGLE, n_clicks=0, className="train-button present-toggle",
                    title="Large text, no controls (also ?present=1 in the URL)"),
        html.Button("✕ Leave presentation", id=PRESENT_EXIT, n_clicks=0, className="train-button present-exit"),
        dcc.Store(id=PRESENT_STORE),
    ], className="present-buttons")


# ----------------------------------------------------------------------------- presets
def preset_controls(key) -> list:
    """Control values (``visualizer.ids.CONTROL_IDS`` order, training steps included) of the chosen
    preset; all ``no_update`` for no preset. The URL follows the controls by itself."""
    p = presets.get(key)
    if p is None:
        return [no_update] * len(ids.CONTROL_IDS)
    values = []
    for name in ids.CONTROL_IDS:
        v = getattr(p.params, name)
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
    return [html.Span(p.title + ". ", className="preset-title"), p.explanation + extra]


# ----------------------------------------------------------------------------- export
def _current(store, tab) -> Params:
    """The params of the page (store plus the open tab)."""
    data = dict(store) if isinstance(store, dict) else {}
    data["view"] = tab
    return Params.from_dict(data)


def export_view(csv_clicks, json_clicks, html_clicks, store, tab):
    """A ``dcc.Download`` payload of the current view's data or report, and a message."""
    trigger = ctx.triggered_id
    if trigger not in (EXPORT_CSV, EXPORT_JSON, EXPORT_HTML) or not isinstance(store, dict):
        return no_update, no_update
    params = _current(store, tab)
    try:
        if trigger == EXPORT_HTML:
            text, ext, mime = export.report(params), "html", "text/html"
        else:
            series = export.view_series(params)
            text, ext, mime = ((export.to_csv(series), "csv", "text/csv") if trigger == EXPORT_CSV
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
    """
    c = model.config
    fits = weights.matching_tasks(c)
    task_name = params.task if params.task in fits else (fits[0] if fits else None)
    if task_name is not None:
        task = core.make_task(task_name, params.seq_len, params.batch, seed=params.seed)
        y = task.y[-1] if (params.loss_on == "last" and task.loss_on == "all") else task.y
        loss_on = "last" if (params.loss_on == "last" and task.loss_on == "all") else task.loss_on
        x, loss = task.x, task.loss
        note = f"on the {task_name} task" + ("" if task_name == params.task else
                                             f" (its sizes do not fit {params.task})")
    else:
        rng = np.random.default_rng(params.seed)
        x = rng.standard_normal((params.seq_len, params.batch, c.input_size))
        y, loss, loss_on = np.zeros((params.batch, c.output_size)), "mse", "last"
        note = f"on random inputs (input size {c.input_size} fits no task)"
    res = core.bptt(model, x, y, loss=loss, loss_on=loss_on, truncate=params.truncate)
    arch = "rnn-relu" if c.arch == "rnn" and c.nonlinearity == "relu" else c.arch
    return UploadedFlow(arch, f"your {compute.DISPLAY_NAMES[arch]}", res.hidden_grad_norms, note)


def upload_weights(contents, filename):
    """Check an upload: (status text, status class, store data or None)."""
    if contents is None:
        return "", "upload-status", None
    try:
        up = weights.load_weights(contents, filename)
    except weights.WeightsError as e:
        return f"Rejected: {e}", "upload-status error", None
    digest = hashlib.sha256(contents.encode() if isinstance(contents, str) else bytes(contents)).hexdigest()[:16]
    name = filename or "upload"
    return (f"Loaded {name}: {up.summary}.", "upload-status ok",
            {"filename": name, "summary": up.summary, "arch": up.arch, "sha": digest})


def flow_of_upload(params: Params, meta, pending):
    """(:class:`UploadedFlow` or None, a note for the info line or None) for a checked upload."""
    if not isinstance(meta, dict) or not isinstance(pending, dict):
        return None, None
    try:
        flow = uploaded_flow(weights.load_weights(pending.get("contents")).model, params)
    except (weights.WeightsError, ValueError) as e:
        return None, f"Your uploaded model cannot run here: {e}"
    return flow, f"Dashed: {meta.get('filename', 'upload')} ({meta.get('summary', '')}), run {flow.note}."


def mark_uploaded(fig):
    """Draw the traces of an uploaded model (named ``your ...``) dashed, in their own legend group."""
    if isinstance(fig, dict):
        for trace in fig.get("data", []):
            if str(trace.get("name", "")).startswith("your "):
                trace["line"] = {**trace.get("line", {}), "dash": "dash"}
                trace["legendgroup"] = "uploaded"
    return fig


def upload_status(pending):
    """Callback: check the upload the browser let through (see CHECK_UPLOAD_JS)."""
    if not isinstance(pending, dict):
        return no_update, no_update, no_update
    return upload_weights(pending.get("contents"), pending.get("filename"))


# The browser reads a dropped file whatever its size; this rejects an over-size one before it is
# sent to the server (the server checks again: a client can send anything).
CHECK_UPLOAD_JS = """
function(contents, filename) {
    const nu = window.dash_clientside.no_update;
    if (!contents) { return [nu, nu, nu, nu]; }
    const comma = contents.indexOf(',');
    const bytes = Math.floor((contents.length - comma - 1) * 3 / 4);
    if (bytes > %(MAX)d) {
        const mb = (bytes / 1048576).toFixed(1);
        return [null, 'Rejected: the file is ' + mb + ' MB, larger than the %(MAX_MB)d MB limit.',
                'upload-status error', null];
    }
    return [{contents: contents, filename: filename}, 'Checking ' + filename + '…', 'upload-status', nu];
}
""" % {"MAX": weights.MAX_BYTES, "MAX_MB": weights.MAX_BYTES // 2**20}  # noqa: UP031 - JS braces; moves to assets/


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
    if trigger in (PRESENT_TOGGLE, PRESENT_EXIT):
        on = trigger == PRESENT_TOGGLE and "present" not in classes
        return " ".join([c for c in classes if c != "present"] + (["present"] if on else []))
    flags = display_flags(search)
    if not flags["present"] and not flags["hide"]:
        return no_update
    return page_class(flags, base=classes[0] if classes else "page")


# ----------------------------------------------------------------------------- registration
def register(app, root_id="page", url_id="url", params_store="params-store", view_id="view-tabs",
             steps_input="train-steps-input") -> None:
    """Attach the callbacks. ``root_id``: the page element whose class carries presentation mode."""
    app.callback(*[Output(c, "value", allow_duplicate=True) for c in ids.CONTROL_IDS.values()],
                 Input(PRESET_DROPDOWN, "value"), prevent_initial_call=True)(preset_controls)
    app.callback(Output(PRESET_EXPLANATION, "children"), Input(params_store, "data"))(preset_explanation)
    app.callback(Output(EXPORT_DOWNLOAD, "data"), Output(EXPORT_MESSAGE, "children"),
                 Input(EXPORT_CSV, "n_clicks"), Input(EXPORT_JSON, "n_clicks"), Input(EXPORT_HTML, "n_clicks"),
                 State(params_store, "data"), State(view_id, "value"), prevent_initial_call=True)(export_view)
    status = [Output(UPLOAD_STATUS, "children", allow_duplicate=True),
              Output(UPLOAD_STATUS, "className", allow_duplicate=True),
              Output(WEIGHTS_STORE, "data", allow_duplicate=True)]
    app.clientside_callback(CHECK_UPLOAD_JS, Output(UPLOAD_PENDING, "data"), *status,
                            Input(UPLOAD, "contents"), State(UPLOAD, "filename"), prevent_initial_call=True)
    app.callback(*status, Input(UPLOAD_PENDING, "data"), prevent_initial_call=True)(upload_status)
    app.clientside_callback(
        "function(meta) { return meta ? {} : {display: 'none'}; }",
        Output(UPLOAD_CLEAR, "style"), Input(WEIGHTS_STORE, "data"), prevent_initial_call=True)
    app.clientside_callback(
        "function(n) { return [null, null, null, '', 'upload-status', null]; }",
        Output(UPLOAD, "contents"), Output(UPLOAD, "filename"), Output(UPLOAD_PENDING, "data", allow_duplicate=True),
        *status, Input(UPLOAD_CLEAR, "n_clicks"), prevent_initial_call=True)
    app.callback(Output(root_id, "className"), Input(url_id, "search"), Input(PRESENT_TOGGLE, "n_clicks"),
                 Input(PRESENT_EXIT, "n_clicks"), State(root_id, "className"))(presentation)
