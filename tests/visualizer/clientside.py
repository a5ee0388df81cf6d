"""Run the browser-side callbacks of ``assets/*.js`` in node, with a stubbed ``window``.

:func:`run_cases` loads an asset (or several) in a fresh ``vm`` context whose ``window.dash_clientside``
holds only ``no_update`` (the string :data:`NO_UPDATE` here), calls
``window.dash_clientside[namespace][fn](...args)`` for every case and returns the JSON results.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ASSETS = Path(__file__).parents[2] / "assets"
NO_UPDATE = "<no_update>"

RUNNER = r"""
const fs = require("fs"), vm = require("vm");
const input = JSON.parse(fs.readFileSync(0, "utf8"));
const window = {dash_clientside: {no_update: input.no_update}};
const context = vm.createContext({window: window, console: console});
[].concat(input.asset).forEach(function (file) { vm.runInContext(fs.readFileSync(file, "utf8"), context); });
const fns = window.dash_clientside[input.namespace] || {};
if (input.list) {
    process.stdout.write(JSON.stringify(Object.keys(fns).filter(k => typeof fns[k] === "function").sort()));
    process.exit(0);
}
const out = input.cases.map(([fn, args]) => {
    if (typeof fns[fn] !== "function") { return {error: "no function " + input.namespace + "." + fn}; }
    try { const r = fns[fn](...args); return {result: r === undefined ? null : r}; }
    catch (e) { return {error: String(e)}; }
});
process.stdout.write(JSON.stringify(out));
"""


def node() -> str:
    """Path of the node executable (.ci/run installs Debian's ``nodejs`` when it is missing)."""
    exe = shutil.which("node") or shutil.which("nodejs")
    if exe is None:
        pytest.fail("these tests run the app's JavaScript in node: apt-get install nodejs")
    return exe


def _run(payload: dict):
    proc = subprocess.run([node(), "-e", RUNNER], input=json.dumps(payload), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def functions(asset: str, namespace: str) -> list[str]:
    """Names of the functions the asset defines in ``window.dash_clientside[namespace]``."""
    return _run({"asset": str(ASSETS / asset), "namespace": namespace, "no_update": NO_UPDATE, "list": True})


def run_cases(asset: str | tuple[str, ...], namespace: str, cases: list[tuple[str, list]]) -> list:
    """Results of ``namespace.fn(*args)`` for each ``(fn, args)`` in ``cases``, in order. ``asset``: one file,
    or several loaded in order into the same ``window`` (as the page loads ``assets/``: by name)."""
    files = [str(ASSETS / a) for a in ((asset,) if isinstance(asset, str) else asset)]
    out = _run({"asset": files, "namespace": namespace, "no_update": NO_UPDATE,
                "cases": [[fn, list(args)] for fn, args in cases]})
    errors = [(case, o["error"]) for case, o in zip(cases, out, strict=True) if "error" in o]
    assert not errors, errors
    return [o["result"] for o in out]
