"""The app's views in a notebook: the same figures, as plotly ``Figure`` objects, with no server.

    >>> import core
    >>> from visualizer import notebook
    >>> task = core.make_task("adding", 100, 8, seed=0)
    >>> lstm = core.build("lstm", input_size=task.input_size, hidden_size=32, output_size=task.output_size)
    >>> fig = notebook.figure("jacobian", lstm, task)           # your model on your data
    >>> fig = notebook.figure("gates", params="?arch=rnn,lstm&seq_len=300&forget_bias=1")  # app settings

:func:`figure` and :func:`series` read the view registry (:mod:`visualizer.views`), so they draw and
export exactly what the app's tabs do. Nothing here imports dash.
"""
from __future__ import annotations

import warnings

import plotly.graph_objects as go

from . import compute, presets, views
from .urlstate import Params, validate


def settings(params=None) -> Params:
    """App settings from a :class:`~visualizer.urlstate.Params`, a dict of field values, or a URL
    query (``"?arch=rnn,lstm&seq_len=300"``, ``"?preset=irnn"``); None for the app's defaults.
    Each value the app would correct is corrected the same way, with a warning naming the field."""
    if isinstance(params, Params):
        return params
    if params is None or isinstance(params, str):
        result, messages = presets.parse_query(params or "")
    elif isinstance(params, dict):
        result, messages = validate(params)
    else:
        raise TypeError(f"params must be Params, a dict or a URL query string, not {type(params).__name__}")
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=3)
    return result


def _keys(model, x, y, loss, loss_on, truncate, params):
    """The runs to draw: given models on ``x``, or the app's architectures under ``params``."""
    if model is None:
        p = settings(params)
        return p, [compute.run_key(p, a) for a in p.arch]
    if x is None:
        raise ValueError("give the inputs x (T, B, input_size) or a core.Task with the model")
    models = model if isinstance(model, (list, tuple)) else [model]
    return None, [compute.model_run(m, x, y, loss, loss_on, truncate) for m in models]


def _view(view, p) -> views.View:
    """The registry record named ``view`` (default: the open tab of the settings ``p``)."""
    key = view if view is not None else (p.view if p is not None else None)
    v = views.get(key)
    if v is None:
        raise ValueError(f"view must be one of {', '.join(views.VIEWS)}, not {key!r}")
    return v


def _payload(v: views.View, keys, p):
    """The view's payload; with app settings, the settings it uses beyond the runs (e.g. the update step)."""
    return views.payload_of(v, keys, p) if p is not None else v.payload(keys)


def figure(view=None, model=None, x=None, y=None, *, loss=None, loss_on=None, truncate=None, params=None) -> go.Figure:
    """The app's figure of ``view`` (a key of :data:`visualizer.views.VIEWS`: ``"grad_norm"``,
    ``"heatmap"``, ``"jacobian"``, ``"spectra"``, ``"gates"``, ``"connectivity"``, ``"steps"``).

    Either ``model`` (a ``core`` model, or a list of them to compare on the same data) with ``x``
    (T, B, input_size) inputs or a :class:`core.Task` (``y``, ``loss``, ``loss_on`` as in
    :func:`core.bptt`; without ``y``, the MSE against 0 at the last step), or ``params``: the app's
    settings as :func:`settings` reads them (``view`` then defaults to the settings' open tab).
    Raises ValueError for impossible settings or shapes.
    """
    p, keys = _keys(model, x, y, loss, loss_on, truncate, params)
    v = _view(view, p)
    return go.Figure(v.figure(_payload(v, keys, p)))


def series(view=None, model=None, x=None, y=None, *, loss=None, loss_on=None, truncate=None, params=None) -> list:
    """The numbers :func:`figure` draws, as :class:`visualizer.series.Series` (the app's export)."""
    p, keys = _keys(model, x, y, loss, loss_on, truncate, params)
    v = _view(view, p)
    return v.series(_payload(v, keys, p), keys)
