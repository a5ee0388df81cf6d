"""Property-based: the app's callbacks, called directly, under random and hostile input.

Thousands of configurations (zero, negative, huge, NaN, strings where numbers belong, unknown
names, junk types, malformed URL queries, forged stores): every call returns (no exception
escapes), and every value the app had to correct comes with a message naming its field. The
views are computed whenever the validated sizes are small (huge values are clamped by
validation, with a message; computing them is the speed benchmarks' business, not this test's).
"""
from __future__ import annotations

import math
from urllib.parse import quote

import pytest
from dash import no_update
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from visualizer import callbacks, views
from visualizer.urlstate import ARCH_ALIASES, ARCH_CHOICES, NONE_WORDS, SPEC, ZERO_MEANS_NONE, Params, validate, work

SMALL_WORK = 40 * 4 * 2 * 16**2  # views are computed up to this seq_len x batch x layers x hidden^2
SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])

JUNK_TEXT = ["", " ", "nan", "NaN", "inf", "-inf", "1e309", "-1e309", "0x10", "1_000", " 5 ", "None", "null",
             "true", "[]", "{}", "\x00", "💥", "<script>alert(1)</script>", "../../etc/passwd",
             "__import__('os').system('id')", "%00", "%ff", "a" * 300, "rnn;drop", "Ω"]
hashable_hostile = st.one_of(
    st.none(), st.booleans(), st.integers(max_value=0), st.integers(min_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(JUNK_TEXT), st.text(max_size=12))
hostile_scalar = st.one_of(
    st.none(), st.booleans(),
    st.integers(max_value=0), st.integers(min_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(JUNK_TEXT), st.text(max_size=12),
    st.lists(st.integers(-5, 5), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def plausible(name):
    """Valid, small values for one field (so that computing the views stays cheap)."""
    small = {"seq_len": st.integers(1, 40), "hidden": st.integers(1, 16), "layers": st.integers(1, 2),
             "batch": st.integers(1, 4), "scale": st.floats(0, 5), "forget_bias": st.none() | st.floats(-10, 10),
             "truncate": st.none() | st.integers(1, 50), "clip": st.none() | st.floats(1e-3, 1e3),
             "lr": st.floats(1e-6, 10), "seed": st.integers(0, 2**31 - 1), "steps": st.integers(1, 2000)}
    if name in small:
        return small[name]
    if name == "arch":
        names = st.sampled_from([*list(ARCH_CHOICES), "RNN", "tanh", "irnn", "transformer", "", "lstm "])
        return st.lists(names, max_size=5)
    if name == "match_params":
        return st.sampled_from([[], ["match"]])
    return st.sampled_from(SPEC[name][1])  # choices


def field_value(name):
    """Mostly plausible, often hostile."""
    return st.one_of(plausible(name), plausible(name), hostile_scalar)


control_values = st.fixed_dictionaries({name: field_value(name) for name in callbacks.FIELDS})


def texts(messages) -> list[str]:
    """The message lines of the messages box."""
    return [str(getattr(m, "children", m)) for m in messages or []]


def unknown_archs(value) -> list:
    """The names in a raw arch value that are neither architectures nor their aliases."""
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    names = [str(x).strip().lower() for x in items if x is not None and str(x).strip()]
    return [n for n in names if n not in ARCH_CHOICES and n not in ARCH_ALIASES]


def _zero(raw) -> bool:
    """True if ``raw`` reads as the number 0."""
    try:
        return not isinstance(raw, bool) and float(str(raw).strip()) == 0
    except ValueError:
        return False


def same_value(raw, new, name=None) -> bool:
    """True if the control's ``raw`` value means ``new`` (a normalisation, not a correction); an
    empty optional number box shows ``""``, and ``clip=0`` means no clipping."""
    if new is None or new == "":
        return (raw is None or (isinstance(raw, str) and raw.strip().lower() in NONE_WORDS)
                or (name in ZERO_MEANS_NONE and _zero(raw)))
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        return False
    if isinstance(new, str):
        return str(raw).strip().lower() == new
    try:
        return float(str(raw).strip()) == float(new)
    except ValueError:
        return False


def check_views(store, tab):
    """Compute view 1 and the tab's view for a validated store when small enough."""
    params = Params.from_dict(store)
    if work(params) > SMALL_WORK:
        return
    figure, banner, info = callbacks.overview(store)
    assert isinstance(figure, dict) and "layout" in figure
    assert isinstance(banner, list) and isinstance(info, list)
    figure, caption = callbacks.view(store, tab)
    assert isinstance(figure, dict) and "layout" in figure
    assert isinstance(caption, str)


@SETTINGS
@given(values=control_values, tab=st.one_of(st.sampled_from(list(views.TAB_KEYS)), hashable_hostile))
def test_control_values(values, tab):
    raw = [values[name] for name in callbacks.FIELDS]
    search, messages, store = callbacks.url_and_messages(raw, "")
    assert isinstance(search, str) and search.startswith("?arch=")
    used, _ = validate(callbacks.controls_to_raw(raw), allow_empty_arch=True)  # what the page now uses
    lines = texts(messages)
    for name, new in zip(callbacks.FIELDS, callbacks.params_to_controls(used), strict=True):
        if name == "match_params":  # a checklist's junk reads as checked/unchecked
            continue
        if name == "arch" and not unknown_archs(values[name]):  # None -> [], "RNN" -> "rnn": same choice
            continue
        if name != "arch" and same_value(values[name], new, name):  # " 5 " -> 5, "" -> None: same value
            continue
        assert any(name in line for line in lines), f"{name}: {values[name]!r} -> {new!r} without a message: {lines}"
    check_views(store, tab)


def query_value(name):
    """A query-string value for ``name``: valid text, hostile text or a number as text."""
    return st.one_of(plausible(name).map(_as_text), hostile_scalar.map(_as_text))


def _as_text(v) -> str:
    if isinstance(v, list):
        return ",".join(map(str, v))
    if isinstance(v, float) and math.isfinite(v):
        return repr(v)
    return str(v)


query_items = st.lists(st.one_of(
    st.sampled_from(list(SPEC)).flatmap(lambda k: st.tuples(st.just(k), query_value(k))),
    st.tuples(st.text(max_size=10), st.text(max_size=10)),  # unknown keys
), max_size=8)
junk = st.sampled_from(["", "&", "&&", "=", "==", "%", "%zz", "%ff%fe", "#frag", "?", ";", "+", "seq_len", "arch=",
                        "\u0000", "%0a%0d", "a=b=c", "[]=1", "seq_len[]=5"])


@SETTINGS
@given(items=query_items, noise=st.lists(junk, max_size=3), quoted=st.booleans(),
       tab=st.sampled_from(["jacobian", "heatmap"]))
def test_url_queries(items, noise, quoted, tab):
    parts = [f"{quote(k) if quoted else k}={quote(v) if quoted else v}" for k, v in items] + list(noise)
    search = "?" + "&".join(parts)
    controls = callbacks.apply_url("/", search)
    assert len(controls) == len(callbacks.FIELDS)
    search_out, messages, store = callbacks.url_and_messages(controls, search)
    if search_out is not no_update:
        assert search_out.startswith("?arch=")
    assert isinstance(store, dict)
    lines = texts(messages)
    shown = dict(zip(callbacks.FIELDS, controls, strict=True))
    for key, value in dict(items).items():  # the last value of a repeated key counts
        if key in SPEC and key not in ("arch", "match_params") and _rejected(value, shown[key], key):
            assert any(key in line for line in lines), f"{key}={value!r} changed without a message: {lines}"
    check_views(store, tab)


def _rejected(text, shown, key=None) -> bool:
    """True if the URL's text is not what the app shows (so a message must name the key); an empty
    optional number box shows ``""``, and ``clip=0`` means no clipping."""
    if shown is None or shown == "":
        return text.strip().lower() not in ("", "none", "null", "off", "default") and not (
            key in ZERO_MEANS_NONE and _zero(text))
    if isinstance(shown, str):
        return text.strip().lower() != shown
    try:
        return not math.isclose(float(text), float(shown), rel_tol=1e-9, abs_tol=0.0)
    except ValueError:
        return True


forged_store = st.fixed_dictionaries({}, optional={name: field_value(name) for name in callbacks.STORE_FIELDS})


@SETTINGS
@given(store=st.one_of(forged_store, hostile_scalar),
       tab=st.one_of(st.sampled_from(["gates", "spectra"]), hashable_hostile))
def test_forged_stores(store, tab):
    """A client may post any JSON as the store: it is validated, never trusted."""
    check_views(store if isinstance(store, dict) else {"junk": store}, tab)


@pytest.mark.parametrize("tab", [[], ["heatmap"], {"a": 1}])
def test_view_tab_of_any_json_type(tab):
    """The tab value comes from the client as any JSON; an unhashable one must not crash the view."""
    store = callbacks.store_data(Params(seq_len=5, hidden=4, batch=1))
    figure, _ = callbacks.view(store, tab)
    assert isinstance(figure, dict)
