import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataclasses import replace

from visualizer.budget import VIEW_WORK_CAP
from visualizer.urlstate import (ARCH_CHOICES, DEFAULTS, INIT_CHOICES, SPEC, TASK_CHOICES, VIEW_CHOICES, WORK_CAP,
                                 Params, parse_query, to_query, validate, view_work, work)


def test_defaults_round_trip_without_messages():
    params, messages = parse_query(to_query(DEFAULTS))
    assert params == DEFAULTS
    assert messages == []


def test_empty_query_gives_defaults():
    assert parse_query("") == (DEFAULTS, [])
    assert parse_query(None) == (DEFAULTS, [])
    assert parse_query("?") == (DEFAULTS, [])


def test_query_holds_every_field_and_the_issue_keys():
    query = to_query(DEFAULTS)
    assert query.startswith("?arch=rnn,lstm,gru&seq_len=100&hidden=32&")
    for key in ("arch", "seq_len", "hidden", "layers", "task", "init", "seed"):
        assert f"&{key}=" in query or query.startswith(f"?{key}=")


def test_full_query_is_parsed():
    params, messages = parse_query("?arch=gru,rnn-relu&seq_len=250&hidden=64&layers=2&batch=4&task=copy&loss_on=all"
                                   "&init=orthogonal&scale=1.25&forget_bias=1&truncate=20&clip=5&optimizer=sgd"
                                   "&lr=0.1&seed=7&match_params=1&view=spectra")
    assert messages == []
    assert params == Params(arch=("rnn-relu", "gru"), seq_len=250, hidden=64, layers=2, batch=4, task="copy",
                            loss_on="all", init="orthogonal", scale=1.25, forget_bias=1.0, truncate=20, clip=5.0,
                            optimizer="sgd", lr=0.1, seed=7, match_params=True, view="spectra")


@pytest.mark.parametrize("query, field, value, words", [
    ("seq_len=5000", "seq_len", 2000, "above the maximum 2000"),
    ("seq_len=0", "seq_len", 1, "below the minimum 1"),
    ("seq_len=-3", "seq_len", 1, "below the minimum 1"),
    ("hidden=abc", "hidden", 32, "not a finite number"),
    ("hidden=nan", "hidden", 32, "not a finite number"),
    ("scale=inf", "scale", 1.0, "not a finite number"),
    ("hidden=12.5", "hidden", 12, "not a whole number"),
    ("layers=9", "layers", 4, "above the maximum 4"),
    ("task=mnist", "task", "adding", "not one of"),
    ("init=zeros", "init", "pytorch", "not one of"),
    ("view=3d", "view", "heatmap", "not one of"),
    ("match_params=maybe", "match_params", False, "not true/false"),
    ("seed=-1", "seed", 0, "below the minimum 0"),
    ("hidden=", "hidden", 32, "empty"),
])
def test_bad_values_are_clamped_or_replaced_with_a_message_naming_the_field(query, field, value, words):
    params, messages = parse_query("?" + query)
    assert getattr(params, field) == value
    assert len(messages) == 1
    assert messages[0].startswith(field) and words in messages[0]


def test_arch_list_drops_unknown_names_and_sorts():
    params, messages = parse_query("?arch=GRU,transformer,rnn-tanh,gru")
    assert params.arch == ("rnn", "gru")
    assert len(messages) == 1 and "'transformer'" in messages[0]


def test_arch_with_nothing_valid_falls_back_to_default():
    params, messages = parse_query("?arch=foo")
    assert params.arch == DEFAULTS.arch
    assert any("no valid architecture" in m for m in messages)


def test_empty_arch_is_allowed_from_the_controls():
    params, messages = validate({"arch": []}, allow_empty_arch=True)
    assert params.arch == () and messages == []


def test_optional_fields_accept_none_words():
    params, messages = parse_query("?forget_bias=none&truncate=&clip=off")
    assert (params.forget_bias, params.truncate, params.clip) == (None, None, None)
    assert messages == []


def test_clip_zero_means_no_clipping():
    for query in ("?clip=0", "?clip=0.0"):
        assert parse_query(query) == (Params(clip=None), [])
    assert validate({"clip": 0})[0].clip is None  # from the control too
    params, messages = parse_query("?clip=0.0001")  # a positive threshold below the minimum is still clamped
    assert params.clip == 0.001 and messages


def test_unknown_and_repeated_parameters_get_messages():
    params, messages = parse_query("?foo=1&seed=3&seed=4")
    assert params.seed == 4
    assert any("'foo'" in m for m in messages)
    assert any("twice" in m for m in messages)


def test_malformed_queries_never_raise():
    for q in ("?%%%", "?&&&=", "?=5", "?arch", "?" + "x=1&" * 500, "?seq_len=1e400", "?hidden=0x10",
              "?arch=" + "," * 1000, "?seed=99999999999999999999999"):
        params, _messages = parse_query(q)
        assert isinstance(params, Params)


def test_work_cap_lowers_batch_then_seq_len():
    params, messages = validate({"arch": "rnn", "seq_len": 2000, "hidden": 512, "layers": 4, "batch": 64})
    assert params.seq_len * params.batch * params.layers * params.hidden ** 2 <= WORK_CAP
    assert params.hidden == 512 and params.layers == 4
    assert any("over the limit" in m for m in messages)
    assert params.batch == 1 and params.seq_len == 2000  # lowering the batch was enough


def test_view_work_cap_counts_gate_blocks_of_every_architecture():
    """Three architectures (1 + 4 + 3 gate blocks) at the maxima: view 1's BPTT runs must fit
    VIEW_WORK_CAP, so the batch goes to 1 and then the sequence is shortened, with a message."""
    params, messages = validate({"arch": "rnn,lstm,gru", "seq_len": 2000, "hidden": 512, "layers": 4, "batch": 64})
    assert view_work(params) == work(params) * 8 <= VIEW_WORK_CAP
    assert view_work(replace(params, seq_len=params.seq_len + 1)) > VIEW_WORK_CAP
    assert params.batch == 1 and params.seq_len < 2000 and params.hidden == 512 and params.layers == 4
    assert any("gate blocks" in m and f"seq_len={params.seq_len}" in m for m in messages)
    small, messages = validate({"arch": "rnn,lstm,gru", "seq_len": 100, "hidden": 32})
    assert small.batch == DEFAULTS.batch and messages == []


def test_work_is_seq_len_batch_layers_hidden_squared():
    p = Params(seq_len=10, batch=2, layers=3, hidden=4)
    assert work(p) == 10 * 2 * 3 * 4 ** 2
    assert work(p, batch=5) == 10 * 5 * 3 * 16 and work(p, seq_len=1) == 2 * 3 * 16


def test_validate_accepts_control_values():
    params, messages = validate({"arch": ["lstm"], "seq_len": 300, "scale": 1.5, "forget_bias": None,
                                 "match_params": True, "truncate": None})
    assert params.arch == ("lstm",) and params.seq_len == 300 and params.match_params is True
    assert messages == []


def test_store_round_trip():
    p = Params(arch=("gru",), seq_len=7, forget_bias=-1.5)
    assert Params.from_dict(p.to_dict()) == p
    assert Params.from_dict(None) == DEFAULTS


params_strategy = st.builds(
    Params,
    arch=st.lists(st.sampled_from(ARCH_CHOICES), min_size=1, unique=True).map(
        lambda a: tuple(x for x in ARCH_CHOICES if x in a)),
    seq_len=st.integers(1, 300), hidden=st.integers(1, 64), layers=st.integers(1, 4), batch=st.integers(1, 64),
    task=st.sampled_from(TASK_CHOICES), init=st.sampled_from(INIT_CHOICES),
    scale=st.floats(0, 5, allow_nan=False), forget_bias=st.none() | st.floats(-10, 10, allow_nan=False),
    truncate=st.none() | st.integers(1, 2000), seed=st.integers(0, 2**31 - 1),
    lr=st.floats(1e-6, 10, allow_nan=False), match_params=st.booleans(), view=st.sampled_from(VIEW_CHOICES))


@settings(max_examples=200, deadline=None)
@given(params_strategy)
def test_any_valid_params_round_trip_through_the_url(p):
    parsed, messages = parse_query(to_query(p))
    assert messages == []
    assert parsed == p


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["arch", "seq_len", "hidden", "scale", "truncate", "task", "junk"]),
                       st.text(max_size=12) | st.floats() | st.integers() | st.none() | st.booleans(), max_size=6))
def test_hostile_values_give_valid_params(values):
    params, messages = validate(values)
    assert 1 <= params.seq_len <= 2000 and 1 <= params.hidden <= 512
    assert math.isfinite(params.scale) and params.arch
    assert all(isinstance(m, str) for m in messages)


def test_training_steps_live_in_the_url():
    from visualizer import training
    assert SPEC["steps"][1:] == (1, training.MAX_STEPS) and Params().steps == training.DEFAULT_STEPS
    p, messages = parse_query("?steps=750")
    assert p.steps == 750 and not messages
    assert "steps=750" in to_query(p) and parse_query(to_query(p))[0] == p
    p, messages = parse_query("?steps=99999")
    assert p.steps == training.MAX_STEPS and any(m.startswith("steps=") for m in messages)
