"""A small HTTP client that makes the requests Dash's renderer makes (no browser).

It loads the page config (for the ``endId`` token), the layout and ``/_dash-dependencies``,
keeps every component's props, and on a change fires the server-side callbacks that listen to
it, as the renderer does: POST ``/_dash-update-component`` with ``output``, ``outputs``,
``inputs``, ``state`` and ``changedPropIds``, apply the response, repeat for the outputs that
changed. Background callbacks follow the renderer's poll loop (``cacheKey`` / ``job`` query
arguments, inputs nulled) and its cancel request (``cancelJob``). Clientside callbacks are not
run; set their outputs by hand if a test needs them.

Used by the server tests and by ``benchmarks/load_test.py`` (with a ``requests.Session`` or
locust's client, which has the same interface).
"""
from __future__ import annotations

import json
import re
import time
from urllib.parse import quote

CONFIG_RE = re.compile(r'<script id="_dash-config" type="application/json">(.*?)</script>', re.S)


class CallbackFailed(RuntimeError):
    """A callback request came back with an HTTP error."""

    def __init__(self, status, text, output):
        super().__init__(f"HTTP {status} from callback {output}: {text[:300]}")
        self.status = status


def walk_layout(node, props):
    """Collect ``props[(id, prop)] = value`` for every component with a string id in ``node``."""
    if isinstance(node, list):
        for child in node:
            walk_layout(child, props)
        return
    if not isinstance(node, dict) or "props" not in node:
        return
    p = node["props"] or {}
    cid = p.get("id")
    for key, value in p.items():
        if isinstance(cid, str):
            props[(cid, key)] = value
        if isinstance(value, (dict, list)):
            walk_layout(value, props)


def split_outputs(output: str) -> list[tuple[str, str]]:
    """``"..a.b...c.d.."`` or ``"a.b"`` -> [(id, prop), ...]."""
    parts = output[2:-2].split("...") if output.startswith("..") and output.endswith("..") else [output]
    return [tuple(p.rsplit(".", 1)) for p in parts]


class DashSession:
    """One simulated browser tab on a Dash app at ``base`` (e.g. ``http://127.0.0.1:8050``).

    ``http`` is a requests-like session (``requests.Session()`` or locust's ``self.client``);
    ``request_kwargs`` go to every request (e.g. ``timeout``, or locust's ``name``).
    """

    def __init__(self, base: str, http, timeout: float = 30.0):
        self.base = base.rstrip("/")
        self.http = http
        self.timeout = timeout
        self.props: dict = {}
        self.deps: list = []
        self.end_id = None

    # ------------------------------------------------------------------ page load
    def load(self, search: str = "", initial: bool = True) -> DashSession:
        """GET the page, its layout and dependencies; then run the initial callbacks."""
        page = self._get("/" + search, name="/")
        match = CONFIG_RE.search(page.text)
        config = json.loads(match.group(1)) if match else {}
        self.end_id = config.get("end_id")
        layout = self._get("/_dash-layout").json()
        self.deps = self._get("/_dash-dependencies").json()
        self.props = {}
        walk_layout(layout, self.props)
        if search:
            self.props[("url", "search")] = search
        if initial:
            self.initial_callbacks()
        return self

    def _get(self, path, name=None):
        kwargs = {"timeout": self.timeout}
        if name is not None and _is_locust(self.http):
            kwargs["name"] = name
        r = self.http.get(self.base + path, **kwargs)
        r.raise_for_status()
        return r

    def server_side(self):
        """The callbacks that run on the server (not clientside, not Dash's cancel helpers)."""
        return [d for d in self.deps if not d.get("clientside_function")]

    def initial_callbacks(self) -> None:
        """Fire every server-side, non-background callback that is not prevent_initial_call."""
        for dep in self.server_side():
            if dep.get("prevent_initial_call") or dep.get("background"):
                continue
            self.fire(dep, changed=[])

    # ------------------------------------------------------------------ callbacks
    def find(self, output_part: str):
        """The dependency whose output string contains ``output_part``."""
        for dep in self.deps:
            if output_part in dep["output"]:
                return dep
        raise KeyError(output_part)

    def body(self, dep, changed, null_values: bool = False) -> dict:
        """The JSON body the renderer posts for ``dep``."""
        outs = [{"id": i, "property": p} for i, p in split_outputs(dep["output"])]

        def spec(items):
            return [{"id": x["id"], "property": x["property"],
                     "value": None if null_values else self.props.get((x["id"], x["property"]))} for x in items]
        body = {"output": dep["output"], "outputs": outs if dep["output"].startswith("..") else outs[0],
                "inputs": spec(dep["inputs"]), "changedPropIds": list(changed)}
        if dep.get("state"):
            body["state"] = spec(dep["state"])
        return body

    def _post(self, body, args: dict, name="/_dash-update-component"):
        """POST one callback request; returns (status, parsed JSON or None)."""
        query = [("endId", self.end_id)] if self.end_id else []
        query += list(args.items())
        url = self.base + "/_dash-update-component"
        if query:
            url += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query)
        kwargs = {"json": body, "timeout": self.timeout}
        if _is_locust(self.http):
            kwargs["name"] = name
        r = self.http.post(url, **kwargs)
        if r.status_code == 204:
            return 204, None
        if r.status_code != 200:
            raise CallbackFailed(r.status_code, r.text, body["output"])
        return 200, r.json()

    def apply(self, response: dict | None) -> list[tuple[str, str]]:
        """Store the props in a callback response; returns the (id, prop) pairs that changed."""
        changed = []
        for section in ("response", "sideUpdate"):
            for cid, props in ((response or {}).get(section) or {}).items():
                for prop, value in props.items():
                    if self.props.get((cid, prop), object()) != value:
                        changed.append((cid, prop))
                    self.props[(cid, prop)] = value
        return changed

    def fire(self, dep, changed, depth: int = 0) -> dict | None:
        """Run one (non-background) callback, apply its outputs and fire what they trigger."""
        status, data = self._post(self.body(dep, changed), {})
        if status == 204:
            return None
        updated = self.apply(data)
        if depth < 8:
            self.cascade(updated, depth + 1, skip=dep)
        return data

    def cascade(self, updated, depth: int = 0, skip=None) -> None:
        """Fire the server-side callbacks with an input among ``updated``."""
        keys = {f"{i}.{p}" for i, p in updated}
        for dep in self.server_side():
            if dep is skip or dep.get("background"):
                continue
            hit = [f"{x['id']}.{x['property']}" for x in dep["inputs"] if f"{x['id']}.{x['property']}" in keys]
            if hit:
                self.fire(dep, hit, depth)

    def search(self) -> str | None:
        """The query the page shows in the address bar (the app writes it to ``url-write`` or ``url``)."""
        return self.props.get(("url-write", "search"), self.props.get(("url", "search")))

    def set(self, cid: str, prop: str, value) -> None:
        """A user changes ``cid.prop`` to ``value``: fire every callback listening to it."""
        self.props[(cid, prop)] = value
        self.cascade([(cid, prop)])

    # ------------------------------------------------------------------ background callbacks
    def start_background(self, dep, changed) -> dict:
        """Start a background callback; returns the job handles ``{"cacheKey", "job", ...}``, or
        the finished response if it completed (or failed with an ``on_error`` message) at once."""
        _status, data = self._post(self.body(dep, changed), {}, name="/_dash-update-component [start job]")
        return data or {}

    def poll_background(self, dep, handles) -> dict | None:
        """One poll of a running background callback: the server's answer (``progress`` while it
        runs, ``response`` once done; None for 204)."""
        _, data = self._post(self.body(dep, [], null_values=True),
                             {"cacheKey": handles["cacheKey"], "job": handles["job"]},
                             name="/_dash-update-component [poll job]")
        for key, value in ((data or {}).get("progress") or {}).items():  # {"id.prop": value}
            cid, prop = key.rsplit(".", 1)
            self.props[(cid, prop)] = value
        return data

    def cancel_background(self, handles) -> None:
        """Press the job's cancel input, as the renderer does (``cancelJob`` on Dash's cancel callback)."""
        for c in handles.get("cancel") or []:
            dep = next(d for d in self.deps if d["output"] == f"{c['id']}.id")
            self._post(self.body(dep, [f"{c['id']}.{c['property']}"]), {"cancelJob": handles["job"]},
                       name="/_dash-update-component [cancel job]")

    def run_background(self, dep, changed, interval: float = 0.2, timeout: float = 120.0,
                       on_progress=None, cancel_when=None) -> dict | None:
        """Start and poll a background callback to its end; returns the final response (applied).

        ``on_progress(data)`` sees every poll answer; ``cancel_when(data)`` returning True cancels
        the job (then the loop runs until the server closes it, as the renderer's does).
        """
        handles = self.start_background(dep, changed)
        if "cacheKey" not in handles:  # finished (or refused) without a job
            self.apply(handles)
            return handles
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(interval)
            data = self.poll_background(dep, handles)
            if on_progress is not None and data is not None:
                on_progress(data)
            if data is None or data.get("response") is not None:
                self.apply(data)
                return data
            if cancel_when is not None and cancel_when(data):
                self.cancel_background(handles)
                cancel_when = None
        raise TimeoutError(f"background callback {dep['output']} did not finish in {timeout} s")


def _is_locust(http) -> bool:
    """True for locust's HttpSession (which takes a ``name`` keyword)."""
    return type(http).__module__.startswith("locust")
