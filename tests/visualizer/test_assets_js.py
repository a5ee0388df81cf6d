"""The browser code in ``assets/`` (training card, browser id, request retries), run with node.

Each case loads one asset into a fresh ``window`` (node's ``vm``), calls one function with JSON
arguments and compares the JSON result. ``no_update`` is the string ``"NU"`` here.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.visualizer.clientside import NO_UPDATE, run_cases
from visualizer import ids, limits, training, training_ui

ASSETS = Path(__file__).resolve().parents[2] / "assets"
NODE = shutil.which("node") or "/usr/bin/node"
pytestmark = pytest.mark.skipif(not Path(NODE).exists(), reason="node is not installed (.ci/run installs nodejs)")

RUNNER = r"""
const fs = require("fs"), vm = require("vm");
const [file, ns, fn, argsJson, now] = process.argv.slice(1);
const window = {dash_clientside: {no_update: "NU"}, crypto: require("crypto").webcrypto};
vm.createContext(window);
Date.now = () => Number(now);
vm.runInContext("var window = this; var Date = this.Date || Date;", window);
window.Date = Date;
vm.runInContext(fs.readFileSync(file, "utf8"), window);
const out = window.dash_clientside[ns][fn](...JSON.parse(argsJson));
process.stdout.write(JSON.stringify(out === undefined ? null : out));
"""


def run_js(asset: str, ns: str, fn: str, *args, now: int = 1_000_000):
    """``window.dash_clientside[ns][fn](*args)`` of ``assets/<asset>`` in node; the JSON result."""
    out = subprocess.run([NODE, "-e", RUNNER, str(ASSETS / asset), ns, fn, json.dumps(args), str(now)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


CONSTANTS = training_ui.browser_constants()
OLD_RECORD = None  # the record store as a callback read it before an earlier callback wrote it


def payload(run="r1", step=10, steps=30, status="running", snaps=(10,), **extra):
    """A progress / result payload as visualizer.training.run_job makes it (one architecture)."""
    hist = {"arch": "rnn", "name": "RNN", "step": step, "steps": steps, "loss": 0.123456, "n_clipped": 0,
            "diverged": False}
    return {"run": run, "key": "k", "every": 10, "status": status, "archs": {"rnn": hist},
            "snaps": [{"arch": "rnn", "step": s} for s in snaps], "checkpoint": None, **extra}


# (case, arguments of merge_progress / merge_result, expected outputs by index)
MERGE_CASES = [
    ("nothing yet", ("merge_progress", None, None, False), {i: "NU" for i in range(12)}),
    ("after a reset, late progress is ignored", ("merge_progress", payload(), {"dropped": True}, False),
     {i: "NU" for i in range(12)}),
    ("a refusal shows its message", ("merge_progress", {"error": "You already have 1"}, None, False),
     {7: "Not started.", 8: "You already have 1", 0: "NU"}),
    ("a lost job keeps the record and says where it stopped",
     ("merge_result", {"error": "lost"}, {"run": "r1", "step": 60}), {7: "Step 60 (stopped).", 8: "lost", 0: "NU"}),
    ("queued: the position", ("merge_progress", {"queued": 3}, None, False),
     {7: "Queued (position 3): waiting for a free training slot…", 0: "NU", 8: "NU"}),
    ("first progress", ("merge_progress", payload(), None, False),
     {1: {"run": "r1", "key": "k", "step": 10, "done": False, "status": "running"}, 3: 10, 4: 10, 6: "10",
      7: "Step 10 / 30 (training) · RNN loss 0.123", 8: "", 10: 10, 11: False}),
    ("progress before the first snapshot: the slider stays disabled at 0",
     ("merge_progress", payload(step=4, snaps=()), None, False), {3: 0, 4: 0, 5: {}, 10: 0, 11: True, 6: "4"}),
    ("final result", ("merge_result", payload(step=30, status="done", snaps=(10, 20, 30)), None),
     {6: "30", 7: "Step 30 / 30 (done) · RNN loss 0.123", 3: 30, 4: 30, 10: 10, 11: False}),
    ("paused result", ("merge_result", payload(step=20, status="paused", snaps=(10, 20)), None),
     {7: "Step 20 / 30 (paused) · RNN loss 0.123"}),
]


@pytest.mark.parametrize("case, call, expected", MERGE_CASES, ids=[c[0] for c in MERGE_CASES])
def test_merge_state_machine(case, call, expected):
    fn, *args = call
    out = run_js("training.js", "training", fn, *args, CONSTANTS)
    assert len(out) == 12
    for index, value in expected.items():
        assert out[index] == value, (case, index, out[index])
    if out[3] != "NU":  # the slider's range is never inverted
        assert out[10] <= out[3], case


def test_snapshots_of_one_run_accumulate_and_a_new_run_starts_over():
    first = run_js("training.js", "training", "merge_progress", payload(snaps=(10,)), None, False, CONSTANTS)
    record = first[0]
    second = run_js("training.js", "training", "merge_progress", payload(step=20, snaps=(10, 20)), record,
                    False, CONSTANTS)
    assert [s["step"] for s in second[0]["snaps"]["rnn"]] == [10, 20]
    other = run_js("training.js", "training", "merge_progress", payload(run="r2", step=10, snaps=(10,)),
                   second[0], False, CONSTANTS)
    assert [s["step"] for s in other[0]["snaps"]["rnn"]] == [10]


def test_the_heatmap_redraws_at_the_interval_from_python():
    first = run_js("training.js", "training", "merge_progress", payload(), None, False, CONSTANTS, now=1000)
    record = first[0]
    soon = run_js("training.js", "training", "merge_progress", payload(step=20, snaps=(10, 20)), record,
                  False, CONSTANTS, now=1000 + CONSTANTS["redraw_ms"] - 1)
    late = run_js("training.js", "training", "merge_progress", payload(step=20, snaps=(10, 20)), record,
                  False, CONSTANTS, now=1000 + CONSTANTS["redraw_ms"] + 1)
    assert soon[9] == "NU" and late[9] == {"t": 1000 + CONSTANTS["redraw_ms"] + 1, "live": True}


@pytest.mark.parametrize("steps, expected", [
    (300, ["300", 3]), (5, ["5", 1]), (0, [str(training.DEFAULT_STEPS), 3]), ("x", ["300", 3]),
    (10**9, [str(training.MAX_STEPS), training.MAX_STEPS // training.MAX_RECORDED]),
])
def test_steps_range_matches_python(steps, expected):
    out = run_js("training.js", "training", "steps_range", steps, CONSTANTS)
    assert out == expected
    n = training.clamp_steps(steps) if isinstance(steps, int) and steps >= 1 else training.DEFAULT_STEPS
    assert out[1] == training.record_every(n)


@pytest.mark.parametrize("pause_disabled, text, expected", [
    (True, "Step 5 / 30 (training) · x", "Step 5 / 30 (paused) · x"), (False, "Step 5 (training)", "NU"),
    (True, "Queued (position 2): waiting…", "Ready."), (True, None, "NU")])
def test_a_stopped_job_says_paused(pause_disabled, text, expected):
    assert run_js("training.js", "training", "stopped", pause_disabled, text) == expected


def test_reset_and_start():
    reset = run_js("training.js", "training", "reset", 1)
    assert reset[0] == {"dropped": True} and reset[7] == "Ready."
    assert reset[11] is True and reset[10] <= reset[3] and reset[4] == 0  # slider disabled, not at a stale step
    assert run_js("training.js", "training", "start", 1, 0, {"dropped": True}) is None
    assert run_js("training.js", "training", "start", 1, 0, {"run": "r"}) == "NU"


# Dash may run two of the card's callbacks on the same old State (they share outputs that they also read),
# so each call below after the first gets the State from *before* the previous call: what a page gets when
# both run in one batch. The one that runs later must still see what the earlier one did.
def in_one_page(*calls):
    """The outputs of ``calls`` ((function, args) pairs) run one after another in one page."""
    def plain(value):  # no_update -> None
        return None if value == NO_UPDATE else value

    return [[plain(v) for v in o] if isinstance(o, list) else plain(o) for o in run_cases("training.js", "training",
                                                                                          list(calls))]


def test_reset_wins_over_progress_merged_on_the_record_from_before_it():
    first, reset, late, start, fresh = in_one_page(
        ("merge_progress", [payload(step=10), None, False, CONSTANTS]),
        ("reset", [1]),
        ("merge_progress", [payload(step=20, snaps=(10, 20)), OLD_RECORD, False, CONSTANTS]),  # State before Reset
        ("start", [1, 0, OLD_RECORD]),
        ("merge_progress", [payload(run="r2", step=5, snaps=()), OLD_RECORD, False, CONSTANTS]))
    assert first[7].startswith("Step 10 / 30 (training)") and reset[7] == "Ready."
    assert late == [None] * 12  # the cancelled job's progress does not bring the run back
    assert start is None  # a new start accepts payloads again ...
    assert fresh[0]["run"] == "r2" and fresh[7].startswith("Step 5 / 30 (training)")  # ... of the new run


def test_the_end_of_a_job_keeps_its_result():
    progress, result, stopped, late = in_one_page(
        ("merge_progress", [payload(step=20, snaps=(10, 20)), None, False, CONSTANTS]),
        ("merge_result", [payload(step=30, status="done", snaps=(10, 20, 30)), OLD_RECORD, CONSTANTS]),
        ("stopped", [True, "Step 20 / 30 (training) · RNN loss 0.123"]),  # the status line before the result
        ("merge_progress", [payload(step=20, snaps=(10, 20)), OLD_RECORD, True, CONSTANTS]))  # a late one
    assert progress[7].startswith("Step 20 / 30 (training)")
    assert result[7] == "Step 30 / 30 (done) · RNN loss 0.123" and result[1]["done"] is True
    assert stopped is None  # Pause turning off at the end does not write "paused" over "done"
    assert late == [None] * 12  # nor does progress older than the result


def test_a_refusal_stays_on_the_status_line():
    progress, refused, stopped = in_one_page(
        ("merge_progress", [payload(step=12, snaps=(10,)), None, False, CONSTANTS]),
        ("merge_result", [{"error": "You already have 1 training job running"}, OLD_RECORD, CONSTANTS]),
        ("stopped", [True, "Step 12 / 30 (training) · RNN loss 0.123"]))
    assert progress[7].startswith("Step 12 / 30 (training)")
    assert refused[7] == "Step 12 (stopped)." and refused[8].startswith("You already have 1")
    assert stopped is None


def test_a_step_then_play_continues_the_run():
    step = run_js("training.js", "training", "merge_result", payload(step=20, status="paused", snaps=(10, 20)),
                  None, CONSTANTS)
    play = run_js("training.js", "training", "merge_progress", payload(step=21, snaps=(20,)), step[0], False,
                  CONSTANTS)
    assert step[7].startswith("Step 20 / 30 (paused)")
    assert play[7].startswith("Step 21 / 30 (training)") and [s["step"] for s in play[0]["snaps"]["rnn"]] == [10, 20]


@pytest.mark.parametrize("current, keeps", [("0123456789abcdef", True), ("short", False), (None, False),
                                            ("<script>x</script>", False), ("a" * 65, False)])
def test_the_browser_id_follows_the_rule_from_python(current, keeps):
    rules = {"pattern": limits.USER_ID_PATTERN}
    out = run_js("identity.js", "identity", "assign", 0, current, rules)
    if keeps:
        assert out == "NU"
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", out) and limits.clean_user_id(out) == out


RETRY_RUNNER = r"""
const fs = require("fs"), vm = require("vm");
const [file, script] = process.argv.slice(1);
const outcomes = JSON.parse(script);
let calls = 0;
const window = {setTimeout: (f) => f(), Promise, Response};
vm.createContext(window);
vm.runInContext("var window = this;", window);
vm.runInContext(fs.readFileSync(file, "utf8"), window);
const fake = (url) => { const o = outcomes[Math.min(calls++, outcomes.length - 1)];
    if (o === "reset") { return Promise.reject(new TypeError("Failed to fetch")); }
    if (o === "cut") { return Promise.resolve({status: 200, arrayBuffer: () => Promise.reject(new TypeError("cut"))}); }
    return Promise.resolve(new Response(o === 204 ? null : "{}", {status: o})); };
const fetch = window.bpttlabRetry.withRetries(fake, () => Promise.resolve());
const url = process.argv[3];
fetch(url, {method: "POST"}).then(r => console.log(JSON.stringify({status: r.status, calls})),
                                  e => console.log(JSON.stringify({error: String(e), calls})));
"""


@pytest.mark.parametrize("outcomes, url, expected", [
    (["reset", 200], "/_dash-update-component", {"status": 200, "calls": 2}),  # a worker killed mid-request
    ([502, 503, 200], "/_dash-update-component", {"status": 200, "calls": 3}),
    (["reset"] * 9, "/_dash-update-component", {"error": "TypeError: Failed to fetch", "calls": 4}),
    ([500, 200], "/_dash-update-component", {"status": 500, "calls": 1}),  # an answer is an answer
    (["cut", 200], "/_dash-update-component", {"status": 200, "calls": 2}),  # the body was cut off
    ([204], "/_dash-update-component", {"status": 204, "calls": 1}),
    (["reset", 200], "/elsewhere", {"error": "TypeError: Failed to fetch", "calls": 1}),
])
def test_app_requests_are_retried_after_a_lost_connection(outcomes, url, expected):
    out = subprocess.run([NODE, "-e", RETRY_RUNNER, str(ASSETS / "retry.js"), json.dumps(outcomes), url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == expected


def test_ids_have_one_home():
    import visualizer.training_ui as ui

    assert not hasattr(ui, "STEPS") and not hasattr(limits, "USER_STORE")
    assert ids.STEPS == "train-steps-input"
