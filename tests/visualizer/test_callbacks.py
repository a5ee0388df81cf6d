import pytest
from dash import no_update

from visualizer import callbacks, presets
from visualizer.plotstyle import decode
from visualizer.urlstate import DEFAULTS, Params, to_query

FIELDS = callbacks.FIELDS


def controls_of(p):
    return callbacks.params_to_controls(p)


def test_page_load_sets_controls_and_store_and_leaves_the_url_alone():
    search = "?seq_len=50&arch=gru"
    p = Params(arch=("gru",), seq_len=50)
    controls = callbacks.apply_url("/", search)
    assert controls == controls_of(p)
    query, messages, store = callbacks.url_and_messages(controls, search)
    assert query is no_update  # the controls show what the URL says: no history entry at page load
    assert store == callbacks.store_data(p) and "view" not in store
    assert messages == []


def test_bad_url_value_gives_a_visible_message_and_clamped_control():
    search = "?seq_len=99999&hidden=x"
    controls = callbacks.apply_url("/", search)
    _query, messages, store = callbacks.url_and_messages(controls, search)
    texts = [m.children for m in messages]
    assert any(t.startswith("seq_len=99999 is above the maximum 2000") for t in texts)
    assert any(t.startswith("hidden is not a finite number") for t in texts)
    assert controls[FIELDS.index("seq_len")] == 2000 and store["seq_len"] == 2000


def test_a_control_change_writes_the_canonical_url_and_store():
    values = controls_of(DEFAULTS)
    values[FIELDS.index("seq_len")] = 300
    query, _messages, store = callbacks.url_and_messages(values, to_query(DEFAULTS))
    assert query == to_query(Params(seq_len=300))
    assert store["seq_len"] == 300


def test_switching_tabs_changes_the_url_and_redraws_only_the_tab():
    values = controls_of(DEFAULTS)
    values[FIELDS.index("view")] = "spectra"
    query, _messages, store = callbacks.url_and_messages(values, to_query(DEFAULTS))
    assert "view=spectra" in query
    assert store == callbacks.store_data(DEFAULTS)
    values[FIELDS.index("seq_len")] = 20  # small, so the tab's figure is cheap
    out = callbacks.page(values, None, to_query(DEFAULTS), changed={"view"})
    assert out[0:3] == [no_update] * 3  # view 1, banner and info untouched
    assert out[3] is not no_update and out[4].startswith("Left: singular values")


def test_an_out_of_range_control_value_is_clamped_with_a_message():
    values = controls_of(DEFAULTS)
    values[FIELDS.index("truncate")] = -4
    query, messages, store = callbacks.url_and_messages(values, "")
    assert store["truncate"] == 1 and "truncate=1&" in query
    assert messages and "truncate" in messages[0].children


def test_unticking_every_architecture_shows_a_hint_not_an_error():
    values = controls_of(DEFAULTS)
    values[FIELDS.index("arch")] = []
    _query, _messages, store = callbacks.url_and_messages(values, "")
    assert store["arch"] == []
    fig, _banner, _info = callbacks.overview(store)
    assert "Pick at least one" in fig["layout"]["annotations"][0]["text"]


def test_overview_builds_view_one_banner_and_info():
    store = callbacks.store_data(Params(seq_len=40, hidden=8, batch=2))
    fig, banner, info = callbacks.overview(store)
    traces = [t for t in fig["data"] if t.get("showlegend", True)]
    assert [t["name"] for t in traces] == ["RNN", "LSTM", "GRU"]
    assert all(len(decode(t["x"])) == 40 for t in traces)
    assert banner == [] and len(info) == 4  # three architectures and the note: all of them vanish here
    assert "landing-note" in info[3].className


def test_overview_banner_when_a_run_explodes():
    store = callbacks.store_data(Params(arch=("rnn-relu",), seq_len=1100, hidden=8, batch=2, init="identity",
                                        scale=2.0))
    _fig, banner, _info = callbacks.overview(store)
    assert len(banner) == 1 and banner[0].children.startswith("RNN-relu exploded at step")


def test_impossible_configuration_shows_its_message():
    store = callbacks.store_data(Params(seq_len=1, task="adding"))
    fig, _banner, _info = callbacks.overview(store)
    assert fig["layout"]["annotations"][0]["text"].startswith("The adding task cannot use sequence length 1")
    fig, _caption = callbacks.view(store, "jacobian")
    assert "lag" in fig["layout"]["annotations"][0]["text"]


def test_no_store_yet_changes_nothing():
    assert callbacks.overview(None) == [no_update] * 3
    assert callbacks.view(None, "heatmap") == [no_update] * 2


@pytest.mark.parametrize("tab", ["heatmap", "jacobian", "spectra", "gates", "connectivity", "bogus"])
def test_every_tab_renders(tab):
    store = callbacks.store_data(Params(seq_len=12, hidden=4, batch=2, arch=("rnn", "lstm")))
    fig, caption = callbacks.view(store, tab)
    assert fig["data"], fig["layout"].get("annotations")
    assert isinstance(caption, str) and caption


def test_unexpected_errors_keep_the_app_serving(monkeypatch):
    def boom(key):
        raise RuntimeError("kaput")
    monkeypatch.setattr(callbacks.compute, "grad_flow", boom)
    fig, _banner, _info = callbacks.overview(callbacks.store_data(Params(seq_len=5)))
    assert "kaput" in fig["layout"]["annotations"][0]["text"]


def test_apply_url_sets_every_control_from_the_query():
    controls = callbacks.apply_url("/", "?arch=lstm&seq_len=70&view=spectra&truncate=bad")
    p = Params(arch=("lstm",), seq_len=70, view="spectra")
    assert controls == controls_of(p)


def test_a_corrected_url_is_rewritten_and_its_messages_stay():
    search = "?seq_len=99999&present=1&arch_hide=1&foo=2"
    controls = callbacks.apply_url("/", search)
    query, messages, store = callbacks.url_and_messages(controls, search)
    assert query == to_query(Params(seq_len=2000)) + "&present=1&arch_hide=1"  # display flags kept
    assert [m.children for m in messages] == ["seq_len=99999 is above the maximum 2000; using 2000.",
                                              "unknown parameter 'foo' ignored."]
    assert store["seq_len"] == 2000
    assert callbacks.url_and_messages(callbacks.apply_url("/", query), query)[0] is no_update  # now clean


def test_a_clean_url_is_left_alone_while_the_controls_show_it():
    query, messages, store = callbacks.url_and_messages(controls_of(DEFAULTS), "")  # plain "/": stays plain
    assert query is no_update and messages == []
    search = "?preset=irnn&present=1"  # a teacher's short link stays as it was typed
    query, messages, store = callbacks.url_and_messages(callbacks.apply_url("/", search), search)
    assert query is no_update and messages == [] and store["seq_len"] == presets.PRESETS["irnn"].params.seq_len


def test_a_change_writes_the_canonical_url_and_clears_url_messages():
    controls = callbacks.apply_url("/", "?seq_len=99999")
    controls[FIELDS.index("hidden")] = 64
    query, messages, store = callbacks.url_and_messages(controls, "?seq_len=99999")
    assert query == to_query(Params(seq_len=2000, hidden=64))
    assert messages == [] and store["hidden"] == 64


def test_a_bad_control_value_is_named_in_a_message():
    controls = controls_of(DEFAULTS)
    controls[FIELDS.index("truncate")] = -4
    query, messages, store = callbacks.url_and_messages(controls, "")
    assert "truncate=1" in query and store["truncate"] == 1
    assert messages[0].children.startswith("truncate=-4 is below the minimum 1")


def test_the_page_callback_takes_control_values():
    values = controls_of(Params(seq_len=15, hidden=4, batch=2, arch=("gru",), view="gates"))
    assert "lr" not in callbacks.VIEW_FIELDS and "seed" in callbacks.VIEW_FIELDS
    fig, _banner, _info, view_fig, _caption, query, _messages, store = callbacks.page(values, (None, None), "")
    assert [t["name"] for t in fig["data"] if t.get("meta") == "main"] == ["GRU"]
    assert [t["name"] for t in view_fig["data"] if t.get("meta") == "main"] == ["GRU: carry path ∏ z"]
    assert query.startswith("?arch=gru&seq_len=15")
    assert store["seq_len"] == 15 and "view" not in store


def test_the_page_callback_rebuilds_only_what_a_change_touches():
    values = controls_of(Params(seq_len=15, hidden=4, batch=2, arch=("gru",)))
    tab_only = callbacks.page(values, None, "", {"view"})
    assert tab_only[:3] == [no_update] * 3 and tab_only[3]["data"] and tab_only[5].startswith("?")
    training_only = callbacks.page(values, None, "", {"lr"})
    assert training_only[:5] == [no_update] * 5 and training_only[5].startswith("?")
    weights_only = callbacks.page(values, None, "", {callbacks.WEIGHTS})
    assert weights_only[0]["data"] and weights_only[3:] == [no_update] * 5
    model = callbacks.page(values, None, "", {"seed"})
    assert no_update not in model[:5]


@pytest.mark.parametrize("triggered, expected", [
    ([{"prop_id": ".", "value": None}], None),  # initial call
    ([{"prop_id": "seed-input.value", "value": 3}], {"seed"}),
    ([{"prop_id": "view-tabs.value", "value": "gates"}, {"prop_id": "seq-len-slider.value", "value": 9}],
     {"view", "seq_len"}),
])
def test_changed_fields_reads_the_triggering_controls(triggered, expected):
    assert callbacks._changed_fields(triggered) == expected


@pytest.mark.parametrize("tab", [None, 3, [], ["heatmap"], {"a": 1}])
def test_a_tab_of_any_json_type_falls_back_to_the_heatmaps(tab):
    fig, _caption = callbacks.view(callbacks.store_data(Params(seq_len=5, hidden=4, batch=1)), tab)
    assert fig["data"][0]["type"] == "heatmap"
