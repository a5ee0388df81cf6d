"""The notebook API: the README's example runs, and its figures are the app's."""
import re
import warnings
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

import core
from visualizer import compute, notebook, urlstate, views

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    section = README.read_text(encoding="utf-8").split("## In a notebook", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_readme_example_runs_and_shows_figures(monkeypatch, capsys):
    shown = []
    monkeypatch.setattr(go.Figure, "show", lambda fig, *a, **k: shown.append(fig))
    exec(compile(readme_example(), "README.md", "exec"), {})
    assert len(shown) == 2
    jacobian, gates = shown
    assert {t.name for t in jacobian.data if t.showlegend is not False} >= {"RNN", "LSTM"}
    assert any("cell path ∏ f" in (t.name or "") for t in gates.data)
    assert capsys.readouterr().out.strip() == "grad_norm (200,)"
    # what Jupyter's renderers produce: plotly's JSON mimetype (JupyterLab) and self-contained HTML (classic)
    assert "application/vnd.plotly.v1+json" in pio.renderers["plotly_mimetype"].to_mimebundle(jacobian.to_dict())
    html = pio.renderers["notebook"].to_mimebundle(jacobian.to_dict())["text/html"]
    assert "Plotly.newPlot" in html


def test_app_settings_give_the_apps_figure():
    params = urlstate.Params(arch=("rnn", "gru"), seq_len=30, hidden=8, batch=2, view="spectra")
    keys = [compute.run_key(params, a) for a in params.arch]
    expected = go.Figure(views.VIEWS["spectra"].figure(views.VIEWS["spectra"].payload(keys)))
    for given in (params, params.to_dict(), urlstate.to_query(params)):
        assert notebook.figure(params=given) == expected  # the view defaults to the settings' tab


def test_a_given_model_matches_the_same_model_built_by_the_app():
    params = urlstate.Params(arch=("lstm",), seq_len=25, hidden=6, batch=3, seed=4)
    key = compute.run_key(params, "lstm")
    model, task = compute.get_model(key), compute.get_task(key.data)
    for view in views.VIEWS:
        app = views.VIEWS[view].series(views.VIEWS[view].payload([key]), [key])
        mine = notebook.series(view, model, task)
        assert [(s.quantity, s.layer) for s in mine] == [(s.quantity, s.layer) for s in app]
        for a, b in zip(mine, app, strict=True):
            np.testing.assert_array_equal(a.values, b.values)  # same model, same data, same code path


def test_bad_input_names_the_problem():
    model = core.build("gru", input_size=2, hidden_size=4, output_size=1)
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, 2\)"):
        notebook.figure("jacobian", model, np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match="give the inputs x"):
        notebook.figure("jacobian", model)
    with pytest.raises(ValueError, match="view must be one of"):
        notebook.figure("nope", params="")
    with pytest.raises(TypeError, match="params must be"):
        notebook.figure("jacobian", params=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        notebook.settings("?seq_len=99999&preset=nope")
    assert [str(w.message) for w in caught] == ["preset 'nope' is unknown; ignored.",
                                                "seq_len=99999 is above the maximum 2000; using 2000."]
