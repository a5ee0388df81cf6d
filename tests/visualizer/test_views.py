"""The view registry: every record computes, draws and exports its data, and the app reads it."""
import numpy as np
import plotly.graph_objects as go
import pytest

from visualizer import callbacks, compute, export, layout, urlstate, views

SMALL = urlstate.Params(seq_len=12, hidden=4, batch=2)


@pytest.mark.parametrize("key", list(views.VIEWS))
def test_each_view_computes_draws_and_exports(key):
    v = views.VIEWS[key]
    assert v.key == key and v.label and v.title and v.caption and "$" in v.maths
    keys = [compute.run_key(SMALL, a) for a in SMALL.arch]
    payload = v.payload(keys)
    go.Figure(v.figure(payload))  # a valid plotly figure
    series = v.series(payload, keys)
    assert {s.arch for s in series} == ({SMALL.arch[0]} if v.one_arch else set(SMALL.arch))
    assert all(s.view == key for s in series)
    assert all(np.asarray(s.values).size for s in series)
    assert v.note(keys) is None or isinstance(v.note(keys), str)


def test_the_url_state_the_tabs_and_the_exports_read_the_registry():
    assert urlstate.VIEW_CHOICES == views.TAB_KEYS == tuple(v.key for v in views.VIEWS.values() if v.tab)
    assert views.GRAD_NORM.key not in views.TAB_KEYS  # view 1 sits above the tabs
    page = layout.build_layout()
    found = []

    def walk(node):
        if getattr(node, "id", None) == "view-tabs":
            found.extend((t.value, t.label) for t in node.children)
        for child in getattr(node, "children", None) or []:
            if not isinstance(child, str):
                walk(child)
    walk(page)
    assert found == [(v.key, v.label) for v in views.TABS]
    for v in views.TABS:
        params = urlstate.Params(**{**SMALL.to_dict(), "arch": SMALL.arch, "view": v.key})
        assert [s.title for s in export.shown_views(params)] == [views.GRAD_NORM.title, v.title]
        assert callbacks.view(callbacks.store_data(params), v.key)[1].startswith(v.caption)


def test_an_unknown_tab_falls_back_to_the_default_view():
    _fig, caption = callbacks.view(callbacks.store_data(SMALL), "nope")
    assert caption.startswith(views.get(urlstate.DEFAULTS.view).caption)
    assert views.get("nope") is None and views.get(None) is None


def test_the_texts_follow_the_teaching_rules():
    """Products ordered J_{T-1} ... J_{t+1} with the last step T-1 everywhere; a bound is called a
    bound; sufficient vs necessary; no typed measurement in a caption or maths panel."""
    import re

    texts = {v.key: v.caption + v.maths for v in views.VIEWS.values()}
    for key, text in texts.items():
        assert r"\prod_{k=t+1}^{T}" not in text and "J_T " not in text, key
        # numbers in the prose (outside TeX) would be typed measurements: none
        prose = re.sub(r"\$[^$]*\$", " ", text)
        assert not re.findall(r"(?<![\w_{^−-])\d+\.\d+", prose), key
    grad = views.GRAD_NORM.maths
    assert "*sufficient*" in grad and "*necessary*, not sufficient" in grad and "Lyapunov" in grad
    assert "bound" in views.VIEWS["jacobian"].caption and "σ₁ = 1/γ: below it" not in views.VIEWS["jacobian"].caption
    assert r"\supseteq" not in views.VIEWS["gates"].maths and "equals" in views.VIEWS["gates"].maths
