"""Property-based, over HTTP (the Flask test client of a full app): forged callback envelopes,
forged browser stores and hostile .npz uploads. Whatever is sent, the answer is never a 500:
a malformed envelope gets a 4xx with a short reason, a well-formed one with forged values gets
200/204 with a bounded body, and nothing the client sent is logged at length.
"""
from __future__ import annotations

import base64
import io
import json
import logging
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core
from visualizer import envelope, ids
from visualizer.app import create_app
from visualizer.urlstate import ARCH_CHOICES, SPEC

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
URL = "/_dash-update-component"
REFUSAL_BYTES = 2_000  # a 4xx answer
ANSWER_BYTES = 8_000_000  # any answer to a request of these sizes (the HTML report embeds plotly.js, ~4.6 MB)

APP = create_app()
CLIENT = APP.server.test_client()
SERVER_SIDE = {k: v for k, v in APP.callback_map.items() if callable(v.get("callback"))}
STORE_KEYS = ["archs", "snaps", "live", "full", "step", "hidden", "losses", "grad_norms", "clipped", "steps",
              "clip", "baseline", "name", "diverged", "contents", "filename", "run", "key", "every", "status",
              *ARCH_CHOICES, *SPEC]
HOSTILE_NUMBERS = [10**400, -(10**400), 2**63, 2**1000, 1e308, -1e308, float("inf"), float("-inf"), float("nan"),
                   0, -1, 1]
HOSTILE_TEXT = ["", "nan", "inf", "-inf", "1e999", "1" * 400, "x" * 5000, "<script>", "rnn,lstm", "\x00", "💥"]

leaf = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.sampled_from(HOSTILE_NUMBERS),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.sampled_from(HOSTILE_TEXT))
json_value = st.recursive(
    leaf, lambda inner: st.lists(inner, max_size=6)
    | st.dictionaries(st.one_of(st.sampled_from(STORE_KEYS), st.text(max_size=6)), inner, max_size=6),
    max_leaves=40)
numbers = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(HOSTILE_NUMBERS),
                             st.sampled_from(["nan", "inf", "-inf", "x"]), st.none()), max_size=30)
snap = st.fixed_dictionaries({}, optional={
    "arch": st.sampled_from([*ARCH_CHOICES, "transformer", 5]), "step": st.one_of(st.integers(-5, 3000), leaf),
    "hidden": st.one_of(st.lists(numbers, max_size=5), numbers, json_value), "loss": leaf})
history = st.fixed_dictionaries({}, optional={
    k: st.one_of(numbers, json_value) for k in ["losses", "grad_norms", "clipped"]} | {
    k: leaf for k in ["name", "steps", "clip", "baseline", "diverged", "step", "loss"]})
archs_dict = st.dictionaries(st.sampled_from([*ARCH_CHOICES, "x", "__proto__"]), st.one_of(history, json_value),
                             max_size=5)
progress = st.one_of(json_value, st.fixed_dictionaries(
    {"archs": archs_dict}, optional={"live": st.one_of(st.lists(snap, max_size=5), json_value), "full": leaf}))
record = st.one_of(json_value, st.fixed_dictionaries({}, optional={
    "archs": archs_dict, "snaps": st.dictionaries(st.sampled_from([*ARCH_CHOICES, "y"]),
                                                  st.one_of(st.lists(snap, max_size=6), json_value), max_size=4)}))
SMALL_SIZES = {"hidden", "layers", "batch", "seq_len"}  # a hostile value here could ask for the documented maxima
params_store = st.one_of(json_value, st.dictionaries(
    st.sampled_from([*SPEC, "x"]),
    st.one_of(leaf, st.lists(st.sampled_from([*ARCH_CHOICES, "bad", 7]), max_size=4)), max_size=8).map(
    lambda d: {k: (v if k not in SMALL_SIZES or v in (None, "", "x") else 2) for k, v in d.items()}))
STORE_VALUES = {"params-store.data": params_store, "train-progress-store.data": progress,
                "train-record-store.data": record, "train-snapshot-slider.value": st.one_of(leaf, json_value)}
# callbacks cheap enough to run thousands of times (view computations are covered by direct-call tests)
FORGEABLE = [k for k, v in SERVER_SIDE.items() if not v.get("background") and "grad-norm-graph" not in k
             and "arch-checklist" not in k]


def post(body, **kwargs):
    """POST a callback request; returns (status, body bytes)."""
    if isinstance(body, (bytes, str)):
        r = CLIENT.post(URL, data=body, content_type=kwargs.get("content_type", "application/json"))
    else:
        r = CLIENT.post(URL, data=json.dumps(body), content_type="application/json")
    return r.status_code, r.get_data()


def valid_body(output: str, values=None) -> dict:
    """The body the renderer would send for ``output`` (values from ``values`` or None)."""
    cb = APP.callback_map[output]
    outs = [{"id": i, "property": p} for i, p in envelope.split_output(output)]

    def items(section):
        return [{"id": x["id"], "property": x["property"],
                 "value": (values or {}).get(f"{x['id']}.{x['property']}")} for x in cb[section]]
    body = {"output": output, "outputs": outs if output.startswith("..") else outs[0], "inputs": items("inputs"),
            "changedPropIds": [f"{x['id']}.{x['property']}" for x in cb["inputs"]][:1]}
    if cb["state"]:
        body["state"] = items("state")
    return body


def nested(depth: int):
    v = 0
    for _ in range(depth):
        v = [v]
    return v


def mutate(body: dict, how: str, junk):
    """``body`` broken in one way the page never would."""
    b = json.loads(json.dumps(body))
    if how == "output":
        b["output"] = junk if not isinstance(junk, str) or junk not in APP.callback_map else junk + "?"
    elif how == "drop-input":
        b["inputs"] = b["inputs"][:-1]
    elif how == "extra-input":
        b["inputs"] = [*b["inputs"], {"id": "x", "property": "value", "value": junk}]
    elif how == "extra-state":
        b["state"] = [*b.get("state", []), {"id": "x", "property": "data", "value": junk}]
    elif how == "wrong-id":
        b["inputs"][0]["id"] = f"{b['inputs'][0]['id']}-{junk}"[:5000]
    elif how == "inputs-type":
        b["inputs"] = junk if not isinstance(junk, list) else {"list": junk}
    elif how == "item-type":
        b["inputs"][0] = junk if not isinstance(junk, dict) else [junk]
    elif how == "outputs":
        b["outputs"] = [{"id": "nope", "property": "x"}] * 3
    elif how == "changed":
        b["changedPropIds"] = ["a.b"] * 100 if isinstance(junk, (list, dict)) else junk
    elif how == "deep":
        b["inputs"][0]["value"] = nested(40 + (abs(hash(str(junk))) % 800))
    elif how == "not-object":
        return junk if not isinstance(junk, dict) else [junk]
    return b


MUTATIONS = ["output", "drop-input", "extra-input", "extra-state", "wrong-id", "inputs-type", "item-type", "outputs",
             "changed", "deep", "not-object"]


@SETTINGS
@given(output=st.sampled_from(sorted(APP.callback_map)), how=st.sampled_from(MUTATIONS),
       junk=st.one_of(leaf, json_value, st.text(min_size=1, max_size=30).filter(lambda t: "." in t or t)))
def test_malformed_envelopes_get_a_4xx_with_a_short_reason(output, how, junk):
    if how == "changed" and isinstance(junk, list) and len(junk) <= envelope.MAX_CHANGED and all(
            isinstance(c, (str, dict)) for c in junk):
        junk = 5  # a short list of ids is a valid changedPropIds
    status, data = post(mutate(valid_body(output), how, junk))
    assert status in (400, 413, 415), (status, data[:300])
    assert len(data) < REFUSAL_BYTES and "error" in json.loads(data)


@SETTINGS
@given(output=st.sampled_from(sorted(SERVER_SIDE)), key=st.sampled_from(["changedPropIds", "parsedChangedPropsIds"]),
       changed=st.lists(st.one_of(leaf, json_value, st.sampled_from(["url.search", "view-tabs.value", ".", ""])),
                        max_size=5))
def test_forged_changed_prop_ids_never_give_a_500(output, key, changed):
    body = valid_body(output) | {key: changed}
    status, answer = post(body)
    assert status < 500, (output, key, changed, answer[:300])
    if status >= 400:
        assert len(answer) < REFUSAL_BYTES


@SETTINGS
@given(data=st.one_of(st.binary(max_size=200), st.sampled_from([b"[" * 100_000, b"{" * 5000, b"", b"null", b"nan",
                                                                b'{"output": ' * 3000])))
def test_unreadable_bodies_get_a_4xx(data):
    status, answer = post(data)
    assert status in (400, 413, 415) and len(answer) < REFUSAL_BYTES


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_body_is_never_inflated(encoding):
    import gzip
    import tracemalloc

    bomb = gzip.compress(json.dumps(valid_body("preset-explanation.children")).encode() + b" " * 50_000_000, 9)
    tracemalloc.start()
    r = CLIENT.post(URL, data=bomb, content_type="application/json", headers={"Content-Encoding": encoding})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.status_code == 400 and len(r.get_data()) < REFUSAL_BYTES
    assert peak < 10 * len(bomb)  # read as it came (~50 KB), not inflated to 50 MB


path_part = st.one_of(st.sampled_from(["dash", "plotly", "os", "..", "%2e%2e", "deps", "dash_renderer.min.js",
                                       "etc/passwd", "x" * 2000]),
                      st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20))


@SETTINGS
@given(package=path_part, rest=st.lists(path_part, min_size=1, max_size=4))
def test_any_script_path_is_served_or_404(package, rest):
    from urllib.parse import quote
    url = "/_dash-component-suites/" + quote(package, safe="") + "/" + "/".join(quote(p, safe=".") for p in rest)
    r = CLIENT.get(url)
    assert r.status_code in (200, 304, 404, 308), (url[:200], r.status_code)
    if r.status_code == 404:
        assert len(r.get_data()) < REFUSAL_BYTES


def test_a_served_script_still_loads_and_an_unknown_one_is_404():
    page = CLIENT.get("/").get_data(as_text=True)
    script = next(s for s in page.split('"') if s.startswith("/_dash-component-suites/dash/") and s.endswith(".js"))
    assert CLIENT.get(script).status_code == 200
    for url in ("/_dash-component-suites/os/path.js", "/_dash-component-suites/dash/../../../etc/passwd",
                "/_dash-component-suites/dash/deps/nope.js"):
        r = CLIENT.get(url)
        assert r.status_code == 404 and b"no such script" in r.get_data(), url


def test_clientside_callbacks_are_not_posted_to_dash():
    clientside = [k for k, v in APP.callback_map.items() if not callable(v.get("callback"))]
    assert clientside
    for output in clientside:
        status, data = post(valid_body(output))
        assert status == 400 and b"browser" in data


def test_a_body_over_the_limit_is_413_before_it_is_read():
    status, data = post(b"[" + b"0," * (envelope.MAX_REQUEST_BYTES // 2) + b"0]")
    assert status == 413 and b"limit" in data
    assert APP.server.config["MAX_CONTENT_LENGTH"] == envelope.MAX_REQUEST_BYTES


def test_a_huge_unknown_output_is_neither_echoed_nor_logged(caplog):
    body = valid_body("preset-explanation.children")
    body["output"] = "spam." * 200_000
    with caplog.at_level(logging.DEBUG):
        status, data = post(body)
    assert status == 400 and len(data) < REFUSAL_BYTES
    assert all(len(r.getMessage()) < 500 for r in caplog.records)


@SETTINGS
@given(st.data())
def test_forged_stores_and_values_never_give_a_500(data):
    output = data.draw(st.sampled_from(FORGEABLE))
    cb = APP.callback_map[output]
    values = {}
    for x in cb["inputs"] + cb["state"]:
        key = f"{x['id']}.{x['property']}"
        values[key] = data.draw(STORE_VALUES.get(key, json_value), label=key)
    body = valid_body(output, values)
    body["changedPropIds"] = data.draw(st.lists(st.sampled_from([f"{x['id']}.{x['property']}" for x in cb["inputs"]]),
                                                max_size=2, unique=True))
    status, answer = post(body)
    assert status in (200, 204), (output, status, answer[:500])
    assert len(answer) < ANSWER_BYTES


def test_a_400_digit_integer_in_a_control_is_a_message_over_http():
    output = next(k for k in SERVER_SIDE if "grad-norm-graph" in k)
    raw = {"arch": ["rnn"], "seq_len": 10**400, "hidden": 2, "batch": 1, "lr": -(10**400), "seed": "1" * 400,
           "steps": 10**400, "view": "heatmap"}
    body = valid_body(output, {f"{ids.CONTROL_IDS[k]}.value": v for k, v in raw.items()})
    body["changedPropIds"] = [f"{ids.CONTROL_IDS['seq_len']}.value"]
    status, answer = post(body)
    assert status == 200, answer[:500]
    text = answer.decode()
    for message in ["seq_len=a 401-digit number is above the maximum 2000", "lr=a 401-digit negative number",
                    "steps=a 401-digit number is above the maximum"]:
        assert message in text


# ----------------------------------------------------------------------------- .npz uploads over HTTP
def npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def header(descr, shape) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


GOOD = {f"{k}.npy": npy_bytes(v) for k, v in core.build("rnn", input_size=2, hidden_size=3, output_size=1,
                                                          seed=0).state_dict().items()}
member_names = st.one_of(st.sampled_from(sorted(GOOD)), st.sampled_from(["arch.npy", "x.npy", "../a.npy", "a.txt",
                                                                          "weight_hh_l1.npy", "rnn.weight_hh_l0.npy"]))
payloads = st.one_of(
    st.sampled_from(list(GOOD.values())),
    st.builds(lambda d, s, extra: header(d, s) + bytes(extra),
              st.sampled_from(["<f8", "<f4", "|i1", "<U4", "|O", "|V2000000000", "<c16", "|b1", ">f8", "<U500000000"]),
              st.one_of(st.tuples(st.integers(0, 12)), st.tuples(st.integers(0, 12), st.integers(0, 12)),
                        st.tuples(st.integers(0, 2**62), st.integers(0, 2**62))),
              st.integers(0, 300)),
    st.binary(max_size=64), st.just(b"PK\x03\x04" + bytes(30)),
    st.just(npy_bytes(np.array(["lstm"]))), st.just(npy_bytes(np.array([np.inf, 1.0]))))


def zip_bytes(members, deflate: bool) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are one of the attacks
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as zf:
            for name, payload in members:
                zf.writestr(name, payload)
    return buf.getvalue()


npz_files = st.one_of(
    st.builds(zip_bytes, st.lists(st.tuples(member_names, payloads), max_size=10), st.booleans()),
    st.builds(lambda extra, deflate: zip_bytes([*GOOD.items(), *extra], deflate),
              st.lists(st.tuples(member_names, payloads), max_size=3), st.booleans()),
    st.builds(lambda cut: zip_bytes(GOOD.items(), False)[:cut], st.integers(0, 2000)),
    st.builds(lambda inner: zip_bytes([("weight_hh_l0.npy", zip_bytes(GOOD.items(), False))], inner), st.booleans()))


@SETTINGS
@given(npz=npz_files, filename=st.sampled_from(["m.npz", "m.NPZ", "x.pkl", None, 5]))
def test_any_npz_upload_is_loaded_or_refused_with_a_message(npz, filename):
    output = next(k for k in SERVER_SIDE if k.startswith("..weights-upload-status.children"))
    contents = "data:application/octet-stream;base64," + base64.b64encode(npz).decode()
    body = valid_body(output, {"weights-pending-store.data": {"contents": contents, "filename": filename}})
    status, answer = post(body)
    assert status == 200, answer[:500]
    text = json.loads(answer)["response"]["weights-upload-status"]["children"]
    assert text.startswith(("Loaded", "Rejected: ")) and len(text) < 600


@pytest.mark.parametrize("pending", [None, 5, "x", [], {"contents": 10**400}, {"contents": ["a"]},
                                     {"contents": "data:;base64," + "A" * 100, "filename": {"a": 1}}])
def test_forged_pending_upload_stores(pending):
    output = next(k for k in SERVER_SIDE if k.startswith("..weights-upload-status.children"))
    status, answer = post(valid_body(output, {"weights-pending-store.data": pending}))
    assert status in (200, 204), answer[:300]


@pytest.mark.parametrize("store", [None, 5, "x", [], {"digest": 10**400}, {"digest": ["a"]}, {"digest": "f" * 64},
                                   {"digest": "F" * 64}, {"digest": "../" * 22}, {"digest": "a" * 5000},
                                   {"digest": None, "filename": {"a": 1}, "summary": 10**400},
                                   {"contents": "data:;base64," + "A" * 100}])
def test_forged_weights_stores_in_a_page_change(store):
    """The page change sends the weights store (a digest), never the file: a forged one is a note."""
    output = next(k for k in SERVER_SIDE if k.startswith(f"..{ids.GRAD_GRAPH}.figure"))
    assert ids.UPLOAD_PENDING not in [x["id"] for x in APP.callback_map[output]["state"]]
    values = {f"{ids.CONTROL_IDS[k]}.value": v for k, v in
              {"arch": ["rnn"], "seq_len": 8, "hidden": 3, "batch": 2, "layers": 1}.items()}
    body = valid_body(output, {**values, f"{ids.WEIGHTS_STORE}.data": store})
    body["changedPropIds"] = [f"{ids.WEIGHTS_STORE}.data"]
    status, answer = post(body)
    assert status == 200 and len(answer) < ANSWER_BYTES, answer[:300]
    info = json.dumps(json.loads(answer)["response"][ids.INFO]["children"])
    assert "your " not in json.dumps(json.loads(answer)["response"][ids.GRAD_GRAPH]["figure"]["data"])
    if isinstance(store, dict) and "digest" in store:
        assert "Your uploaded model" in info and ("'digest'" in info or "no longer on the server" in info), info[:300]


def test_gunicorn_answers_an_oversized_post_413_without_reading_it(procs):
    """The report's 200 MB POST: refused from its Content-Length, the worker never reads it."""
    import requests

    import socket
    from urllib.parse import urlsplit

    _proc, base = procs.gunicorn(workers=1, threads=2)
    host = urlsplit(base)
    with socket.create_connection((host.hostname, host.port), timeout=30) as sock:
        sock.sendall(f"POST {URL} HTTP/1.1\r\nHost: {host.netloc}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {200 * 2**20}\r\n\r\n".encode() + b"[0" * 50_000)
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    ok = requests.post(base + URL, json=valid_body("preset-explanation.children"), timeout=30)
    assert ok.status_code == 200  # the worker is still serving
    huge_id = valid_body("preset-explanation.children") | {"output": "x." * 3_000_000}
    r = requests.post(base + URL, json=huge_id, timeout=60)
    assert r.status_code == 400 and len(r.content) < REFUSAL_BYTES
    log = _proc.log.read_text()
    assert "x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x" not in log


@pytest.mark.parametrize("tab", [["heatmap"], {"a": 1}, 10**400, None, "x" * 10_000])
def test_the_maths_panel_with_a_forged_tab(tab):
    output = "view-maths-body.children"
    body = valid_body(output, {"view-maths-summary.n_clicks": 1, "view-tabs.value": tab})
    status, _ = post(body)
    assert status in (200, 204)


@pytest.mark.parametrize("progress", [
    {"archs": {"rnn": {"losses": [1, "x", {"a": 1}, 10**400], "grad_norms": "abc", "clip": "big",
                       "baseline": -1, "clipped": [0, 5, "z"], "steps": 10**400}}, "live": [{"arch": "rnn"}]},
    {"archs": {"lstm": {"losses": [[1, 2], [3]]}}, "live": [{"arch": "lstm", "step": 3, "hidden": [[1, 2], [3]]}]},
    {"archs": [], "live": {}}, {"archs": {"gru": None}, "full": "no", "live": [{"arch": "gru", "step": "5"}]},
])
def test_live_training_figures_with_a_forged_progress_store(progress):
    output = next(k for k in SERVER_SIDE if k.startswith("..train-progress-graph.figure")
                  and APP.callback_map[k]["inputs"][0]["id"] == "train-progress-store")
    status, answer = post(valid_body(output, {"train-progress-store.data": progress}))
    assert status in (200, 204), answer[:300]


@pytest.mark.parametrize("record", [
    {"archs": {"rnn": {"losses": [0.5, 0.4]}}, "snaps": {"rnn": [{"step": 1, "hidden": [[1.0, 2.0]]},
                                                                 {"step": 2, "hidden": [[1.0, 2.0, 3.0]]}]}},
    {"snaps": {"rnn": [{"step": 10**400, "hidden": [[1]]}, {"step": -3, "hidden": 5}]}},
    {"snaps": {"lstm": [{"step": i, "hidden": [[float(i)] * 3]} for i in range(5000)]}},
    {"archs": {"gru": {"clip": 0, "baseline": "inf"}}, "snaps": {"gru": "all"}},
])
def test_training_snapshot_figures_with_a_forged_record_store(record):
    output = next(k for k in SERVER_SIDE if k.startswith("..train-progress-graph.figure")
                  and APP.callback_map[k]["inputs"][0]["id"] == "train-snapshot-slider")
    for step in (3, 10**400, -(10**400), float("nan"), "7", None, [1]):
        values = {"train-snapshot-slider.value": step, "train-record-store.data": record}
        status, answer = post(valid_body(output, values))
        assert status in (200, 204), answer[:300]
        assert len(answer) < ANSWER_BYTES
