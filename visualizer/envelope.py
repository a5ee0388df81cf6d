"""The guard in front of Dash's callback endpoint: every request is checked against the app's
own callback map before Dash reads it, and answered 4xx (with a short JSON reason) when it is
not a request the page could have made.

- Size: ``MAX_CONTENT_LENGTH`` = :data:`MAX_REQUEST_BYTES` (an upload at its limit, base64,
  plus the rest of the page's state); larger bodies get 413 before they are read.
- Shape: a JSON object whose ``output`` is a server-side callback of this app, whose ``inputs`` and
  ``state`` list exactly that callback's ids and properties in order, whose ``outputs`` match
  ``output``, and whose ``changedPropIds`` is a short list of strings (``parsedChangedPropsIds``:
  strings or pattern ids).
- Depth: values nested at most :data:`MAX_DEPTH` levels (the app's stores use six);
  unparseable or too deeply nested JSON is 400, never a RecursionError.

Nothing from a refused request is logged or echoed beyond :data:`SHOWN` characters.

Dash's script route (``/_dash-component-suites/<package>/<path>``) raises for a package or path
it does not serve; that is answered 404 (not a 500 with a traceback listing every script).
"""
from __future__ import annotations

import logging

from dash.exceptions import DependencyException
from flask import jsonify, request
from werkzeug.exceptions import HTTPException

from .npz import MAX_BYTES

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4 * MAX_BYTES // 3 + 4 * 1024 * 1024
MAX_DEPTH = 32
MAX_CHANGED = 64  # entries of changedPropIds
SHOWN = 60  # characters of a refused id quoted in the answer
ENDPOINT = "_dash-update-component"
SCRIPTS = "_dash-component-suites/"


class Refused(ValueError):
    """A callback request that the page could not have made; ``str(e)`` is the reason."""


def _short(text) -> str:
    """A bounded quote of a client's string (or its type)."""
    if not isinstance(text, str):
        return f"a {type(text).__name__}"
    return repr(text[:SHOWN] + ("…" if len(text) > SHOWN else ""))


def split_output(output: str) -> list[tuple[str, str]]:
    """``"..a.b...c.d.."`` or ``"a.b"`` -> [(id, property), ...] (``@hash`` suffixes kept)."""
    parts = output[2:-2].split("...") if output.startswith("..") and output.endswith("..") else [output]
    return [tuple(p.rsplit(".", 1)) if "." in p else (p, "") for p in parts]


def _check_items(section: str, got, expected: list) -> None:
    """``got`` must list the ids and properties of ``expected`` in order (values are free)."""
    if not isinstance(got, list):
        raise Refused(f"{section} must be a list, got {_short(got)}.")
    if len(got) != len(expected):
        raise Refused(f"{section} must have {len(expected)} items for this callback, got {len(got)}.")
    for i, (item, want) in enumerate(zip(got, expected, strict=True)):
        if not isinstance(want.get("id"), str):  # a pattern-matching id: a list of matches or one dict
            if not isinstance(item, (list, dict)):
                raise Refused(f"{section}[{i}] must be a list or an object.")
            continue
        if not isinstance(item, dict):
            raise Refused(f"{section}[{i}] must be an object with id, property and value.")
        if item.get("id") != want["id"] or item.get("property") != want["property"]:
            raise Refused(f"{section}[{i}] must be {want['id']}.{want['property']}, got "
                          f"{_short(item.get('id'))}.{_short(item.get('property'))}.")


def _check_outputs(outputs, output: str) -> None:
    """``outputs`` must name the (id, property) pairs of ``output`` (one object, or a list)."""
    expected = split_output(output)
    multi = output.startswith("..")
    items = outputs if multi else [outputs]
    if not isinstance(items, list) or len(items) != len(expected):
        raise Refused(f"outputs must list the {len(expected)} outputs of this callback.")
    for i, (item, (cid, prop)) in enumerate(zip(items, expected, strict=True)):
        ok = isinstance(item, dict) and item.get("id") == cid and item.get("property") in (prop, prop.split("@")[0])
        if not ok:
            raise Refused(f"outputs[{i}] must be {cid}.{prop.split('@')[0]}.")


def _check_depth(value, limit: int = MAX_DEPTH) -> None:
    """Raise Refused when ``value`` nests lists/objects deeper than ``limit`` (iterative)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (list, dict)):
            if depth >= limit:
                raise Refused(f"values may nest at most {limit} levels.")
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))


def check(body, callback_map) -> None:
    """Raise :class:`Refused` unless ``body`` is a callback request this app's page could make."""
    if not isinstance(body, dict):
        raise Refused(f"the request body must be a JSON object, got {_short(body)}.")
    output = body.get("output")
    if not isinstance(output, str) or output not in callback_map:
        raise Refused(f"unknown callback output {_short(output)}.")
    cb = callback_map[output]
    if not callable(cb.get("callback")):
        raise Refused(f"{_short(output)} is computed in the browser, not on the server.")
    _check_items("inputs", body.get("inputs"), cb.get("inputs", []))
    _check_items("state", body.get("state", []), cb.get("state", []))
    if not cb.get("no_output"):
        _check_outputs(body.get("outputs"), output)
    for key, kinds in (("changedPropIds", str), ("parsedChangedPropsIds", (str, dict))):
        changed = body.get(key, [])  # the renderer sends "id.prop" strings; parsed: pattern ids as objects
        if not isinstance(changed, list) or len(changed) > MAX_CHANGED or not all(
                isinstance(c, kinds) for c in changed):
            raise Refused(f"{key} must be a list of at most {MAX_CHANGED} property ids.")
    for item in [*body["inputs"], *body.get("state", [])]:
        _check_depth(item.get("value") if isinstance(item, dict) else item)


def _refuse(status: int, reason: str):
    """The 4xx answer: a small JSON object with the reason."""
    response = jsonify(error=reason[:300])
    response.status_code = status
    return response


def guard(app):
    """The ``before_request`` function checking :data:`ENDPOINT` requests of ``app``."""
    path = app.config.routes_pathname_prefix + ENDPOINT

    def before_request():
        if request.path != path or request.method != "POST":
            return None
        length = request.content_length
        if length is not None and length > MAX_REQUEST_BYTES:
            return _refuse(413, f"the request is {length:,} bytes; the limit is {MAX_REQUEST_BYTES:,}.")
        try:
            body = request.get_json(silent=False)
        except HTTPException as e:  # 400 unparseable, 413 too large (chunked), 415 not JSON
            return _refuse(e.code or 400, "the request body is not JSON the app can read.")
        except (RecursionError, ValueError):
            return _refuse(400, "the request body is not JSON the app can read (too deeply nested?).")
        try:
            check(body, app.callback_map)
        except Refused as e:
            log.info("refused a callback request: %s", str(e)[:200])
            return _refuse(400, f"Bad callback request: {e}")
        return None
    return before_request


def unknown_script(app):
    """The error handler answering 404 for a script Dash does not serve (other errors go on)."""
    prefix = app.config.routes_pathname_prefix + SCRIPTS

    def handler(e):
        if not request.path.startswith(prefix):
            raise e
        return _refuse(404, f"no such script: {_short(request.path[len(prefix):])}.")
    return handler


def install(app) -> None:
    """Limit the request size of ``app``'s server, check every callback request first and
    answer requests for unknown scripts 404."""
    app.server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.server.before_request(guard(app))
    app.server.register_error_handler(DependencyException, unknown_script(app))
