"""Exported CSV / JSON hold exactly the core's numbers; the HTML report is standalone and offline."""
import csv
import io
import json
import re
from dataclasses import replace

import numpy as np

import core
from visualizer import compute, export
from visualizer.urlstate import Params

SMALL = Params(arch=("rnn", "lstm", "gru"), seq_len=12, hidden=6, batch=3, layers=2)


def rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def csv_values(table, view, arch, quantity, layer=None):
    """{x: value} or {(y, x): value} of one series in a parsed CSV."""
    out = {}
    for r in table:
        if r["view"] == view and r["arch"] == arch and r["quantity"] == quantity and \
                (layer is None or r["layer"] == str(layer)):
            key = int(r["x"]) if r["y"] == "" else (int(r["y"]), int(r["x"]))
            out[key] = float(r["value"])
    return out


def json_series(doc, view, arch, quantity, layer=None):
    for s in doc["views"][view]["series"]:
        if s["arch"] == arch and s["quantity"] == quantity and (layer is None or s["layer"] == layer):
            return s
    raise KeyError((view, arch, quantity))


def core_inputs(params, arch):
    key = compute.run_key(params, arch)
    task = compute.get_task(key.data)
    y, loss_on, _ = compute.targets(task, key.data.loss_on)
    return compute.get_model(key), task, y, loss_on


def test_grad_norm_export_equals_core_bptt():
    series = export.view_series(SMALL)
    table, doc = rows(export.to_csv(series)), json.loads(export.to_json(series, SMALL))
    for arch in SMALL.arch:
        model, task, y, loss_on = core_inputs(SMALL, arch)
        res = core.bptt(model, task.x, y, loss=task.loss, loss_on=loss_on)
        for layer in (1, 2):
            expected = res.hidden_grad_norms[layer - 1]
            got = csv_values(table, "grad_norm", arch, "grad_norm", layer)
            assert sorted(got) == list(range(SMALL.seq_len))
            np.testing.assert_array_equal([got[t] for t in range(SMALL.seq_len)], expected)  # exact
            s = json_series(doc, "grad_norm", arch, "grad_norm", layer)
            np.testing.assert_array_equal(s["values"], expected)
            assert s["x"] == list(range(SMALL.seq_len)) and s["x_name"] == "t"
    assert doc["params"] == SMALL.to_dict() and doc["query"].startswith("?arch=rnn,lstm,gru")


def _tab(view):
    p = replace(SMALL, view=view)
    series = export.view_series(p)
    return p, rows(export.to_csv(series)), json.loads(export.to_json(series, p))


def test_jacobian_export_equals_core():
    p, table, doc = _tab("jacobian")
    for arch in p.arch:
        model, task, _, _ = core_inputs(p, arch)
        norms = core.jacobian_norms(model, task.x)[-1]  # (T, B), top layer
        expected = np.median(norms, axis=1)[::-1]  # by lag k = T-1-t
        got = csv_values(table, "jacobian", arch, "median")
        np.testing.assert_array_equal([got[k] for k in range(p.seq_len)], expected)
        np.testing.assert_array_equal(json_series(doc, "jacobian", arch, "max")["values"], norms.max(axis=1)[::-1])
        sigma = core.weight_singular_values(model)[-1][0]
        assert json_series(doc, "jacobian", arch, "sigma_1")["values"] == sigma
        assert [r["value"] for r in table if r["arch"] == arch and r["quantity"] == "inverse_gamma"] == \
            [repr(1.0 / core.gamma_bound(model))]


def test_heatmap_export_equals_core():
    p, table, doc = _tab("heatmap")
    for arch in p.arch:
        model, task, y, loss_on = core_inputs(p, arch)
        units = core.bptt(model, task.x, y, loss=task.loss, loss_on=loss_on).hidden_grad_units[-1]  # (T, H)
        got = csv_values(table, "heatmap", arch, "grad_unit")
        assert len(got) == p.seq_len * p.hidden
        for (unit, t), value in got.items():
            assert value == units[t, unit - 1]
        s = json_series(doc, "heatmap", arch, "grad_unit")
        np.testing.assert_array_equal(s["values"], units.T)
        assert s["y"] == list(range(1, p.hidden + 1))


def test_spectra_gates_connectivity_export_equal_core():
    p, table, doc = _tab("spectra")
    for arch in p.arch:
        model, task, _, _ = core_inputs(p, arch)
        sv = core.step_jacobian_singular_values(model, task.x, batch_index=0)[-1]
        np.testing.assert_array_equal(json_series(doc, "spectra", arch, "step_max_singular_value")["values"], sv[:, 0])
        got = csv_values(table, "spectra", arch, "weight_singular_value")
        np.testing.assert_array_equal([got[i + 1] for i in range(len(got))], core.weight_singular_values(model)[-1])
    p, table, doc = _tab("gates")
    for arch in p.arch:  # like with like: the RNN's exact Jacobian product, the gated paths and their whole
        model, task, _, _ = core_inputs(p, arch)
        whole = np.median(core.jacobian_norms(model, task.x)[-1], axis=1)
        if arch.startswith("rnn"):
            np.testing.assert_array_equal(json_series(doc, "gates", arch, "jacobian_norm_median")["values"], whole)
            continue
        expected = np.median(core.gate_products(model, task.x)[-1], axis=1)
        np.testing.assert_array_equal(json_series(doc, "gates", arch, "gate_product_median")["values"], expected)
        np.testing.assert_array_equal(json_series(doc, "gates", arch, "jacobian_norm_median")["values"], whole)
    p, table, doc = _tab("connectivity")
    for arch in p.arch:
        model, task, _, _ = core_inputs(p, arch)
        c = core.connectivity(model, task.x, batch_index=0)
        got = csv_values(table, "connectivity", arch, "connectivity")
        assert len(got) == p.seq_len ** 2
        assert all(v == c[t, s] or (np.isnan(v) and np.isnan(c[t, s])) for (t, s), v in got.items())


def test_non_finite_values_are_written_and_json_stays_strict():
    p = Params(arch=("rnn-relu",), seq_len=400, hidden=8, batch=2, init="identity", scale=6.0)  # overflows
    series = export.view_series(p)
    text = export.to_csv(series)
    assert ",inf\n" in text or ",nan\n" in text
    doc = json.loads(export.to_json(series, p))  # strict: no bare NaN / Infinity tokens
    model, task, y, loss_on = core_inputs(p, "rnn-relu")
    expected = core.bptt(model, task.x, y, loss=task.loss, loss_on=loss_on).hidden_grad_norms[-1]
    values = np.array([float(v) for v in json_series(doc, "grad_norm", "rnn-relu", "grad_norm")["values"]])
    np.testing.assert_array_equal(values, expected)  # equal_nan by default for assert_array_equal
    assert not np.all(np.isfinite(expected))


def test_filename():
    assert export.filename(replace(SMALL, view="gates"), "csv") == "bpttlab-rnn-lstm-gru-T12-H6-gates.csv"


def test_html_report_is_standalone_and_offline():
    p = replace(SMALL, view="gates")
    page = export.report(p)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("plotly.js v") >= 1  # the library is inlined...
    assert len(page) > 1_000_000
    # ...and nothing is loaded from elsewhere
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", page)
    data = re.search(r"<script type='application/json' id='bpttlab-data'>(.*?)</script>", page, re.S).group(1)
    doc = json.loads(data.replace("<\\/", "</"))
    assert doc == json.loads(export.to_json(export.view_series(p), p))
    assert set(doc["views"]) == {"grad_norm", "gates"}
    assert page.count("class=\"plotly-graph-div\"") == 2


def test_html_report_graphs_offer_no_upload_and_settings_read_as_words():
    p = replace(SMALL, view="jacobian", clip=None, truncate=5)
    page = export.report(p)
    assert page.count('"showSendToCloud": false') == 2  # each graph's config (a browser test clicks nothing away)
    assert page.count('"modeBarButtonsToRemove": ["sendDataToCloud"') == 2
    table = dict(re.findall(r"<tr><th>(\w+)</th><td>(.*?)</td></tr>", page))
    assert table["arch"] == "rnn, lstm, gru" and table["clip"] == "none (no clipping)" and table["truncate"] == "5"
    assert table["match_params"] == "no" and table["forget_bias"] == "the initialiser&#x27;s"
    assert not any(v.startswith(("[", "(", "None")) for v in table.values())


def test_the_stepped_figure_steps_with_the_arrow_keys_in_the_report():
    page = export.report(replace(SMALL, arch=("rnn",), seq_len=6, view="steps"))
    assert f'id="{export.STEPPED_DIV}"' in page and page.count("class=\"plotly-graph-div\"") == 2
    code = export.STEPVIEW_JS.read_text(encoding="utf-8")
    assert code in page  # the page's own stepping code, inlined (nothing fetched)
    assert f"window.dash_clientside.stepview.keys({{graph: \"{export.STEPPED_DIV}\"}});" in page
    assert "arrow keys" in page
    plain = export.report(replace(SMALL, view="gates"))
    assert "dash_clientside" not in plain and export.STEPPED_DIV not in plain
