"""Malformed and oversized uploads: each is refused from its headers with a message naming the
problem (never MemoryError, AttributeError or a 500), within a small memory budget; a good
upload is decoded once and its run computed once per setting, however many pages ask for it.
"""
from __future__ import annotations

import io
import warnings
import zipfile

import numpy as np
import pytest

import core
from tests.uploads import as_upload, peak_mb
from visualizer import callbacks, classroom, weights
from visualizer.npz import MAX_MEMBERS, MAX_UNCOMPRESSED
from visualizer.urlstate import Params
from visualizer.weights import WeightsError, load_weights


def npy_header(descr: str, shape: tuple, version=(1, 0)) -> bytes:
    """An NPY magic + header declaring ``descr`` and ``shape`` (no data)."""
    buf = io.BytesIO()
    d = {"descr": descr, "fortran_order": False, "shape": shape}
    write = np.lib.format.write_array_header_1_0 if version == (1, 0) else np.lib.format.write_array_header_2_0
    write(buf, d)
    return buf.getvalue()


def npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def zip_of(members, compression=zipfile.ZIP_STORED) -> bytes:
    """A zip of (name, bytes) pairs, duplicates allowed."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names; that is the attack
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def good_members(arch="gru", hidden=4, dtype=np.float64):
    m = core.build(arch, input_size=2, hidden_size=hidden, output_size=1, seed=0)
    return [(f"{k}.npy", npy(v.astype(dtype))) for k, v in m.state_dict().items()]


def refused(data: bytes, *words) -> str:
    """The message of the upload's refusal; it must contain ``words`` and cost < 40 MB."""
    out = {}

    def load():
        with pytest.raises(WeightsError) as info:
            load_weights(as_upload(data), "m.npz")
        out["message"] = str(info.value)
    assert peak_mb(load) < 40
    for w in words:
        assert w in out["message"], out["message"]
    assert len(out["message"]) < 400
    return out["message"]


@pytest.mark.parametrize("descr, shape", [("<f8", (10**12,)), ("<f8", (2**62, 2**62)), ("<f8", (10**7, 10**7)),
                                          ("|V2000000000", (1,)), ("<U500000000", (1,))])
def test_a_huge_declared_shape_or_itemsize_is_refused_from_the_header(descr, shape):
    members = [(n, d) for n, d in good_members() if n != "weight_hh_l0.npy"]
    refused(zip_of([*members, ("weight_hh_l0.npy", npy_header(descr, shape) + bytes(64))]), "'weight_hh_l0'")


def test_a_member_named_npy_without_the_magic_is_refused():
    refused(zip_of([*good_members()[1:], ("weight_ih_l0.npy", b"just some text, no magic")]),
            "'weight_ih_l0.npy'", "no NPY magic")


def test_duplicate_member_names_are_refused():
    members = good_members()
    refused(zip_of([*members, members[1]]), members[1][0], "twice")


def test_a_zip_nested_in_a_member_is_refused():
    inner = zip_of(good_members())
    refused(zip_of([*good_members()[1:], ("weight_ih_l0.npy", inner)]), "'weight_ih_l0.npy'", "zip archive inside")


@pytest.mark.parametrize("cut", [1, 8, 100])
def test_truncated_data_is_refused(cut):
    members = good_members()
    name, data = members[1]
    refused(zip_of([members[0], (name, data[:-cut]), *members[2:]]), name[:-4])


def test_extra_bytes_after_the_data_are_refused():
    members = good_members()
    name, data = members[1]
    refused(zip_of([members[0], (name, data + b"\0" * 16), *members[2:]]), name[:-4], "extra bytes")


def test_an_object_dtype_header_is_refused_without_unpickling():
    members = [(n, d) for n, d in good_members() if n != "bias_ih_l0.npy"]
    refused(zip_of([*members, ("bias_ih_l0.npy", npy_header("|O", (12,)) + b"\x80\x04N.")]), "'bias_ih_l0'", "pickle")


def test_the_int8_zeros_bomb_of_the_report_is_refused_before_decoding():
    """The report's 80 KB file: an RNN with H=9000 stored as int8 zeros, about 1000x compressed."""
    state = {"weight_ih_l0": np.zeros((9000, 1), np.int8), "weight_hh_l0": np.zeros((9000, 9000), np.int8),
             "bias_ih_l0": np.zeros(9000, np.int8), "bias_hh_l0": np.zeros(9000, np.int8),
             "readout.weight": np.zeros((1, 9000), np.int8), "readout.bias": np.zeros(1, np.int8)}
    buf = io.BytesIO()
    np.savez_compressed(buf, **state)
    assert len(buf.getvalue()) < 200_000
    refused(buf.getvalue(), "weight_hh_l0", "times larger")


@pytest.mark.parametrize("arch, hidden, layers, word", [("rnn", 600, 1, "hidden size H is 600"),
                                                        ("gru", 8, 5, "number of layers is 5")])
def test_a_model_beyond_the_apps_maxima_is_refused_before_its_arrays_are_decoded(monkeypatch, arch, hidden, layers,
                                                                                  word):
    m = core.build(arch, input_size=1, hidden_size=hidden, output_size=1, num_layers=layers, seed=0)
    data = zip_of([(f"{k}.npy", npy(v.astype(np.float16))) for k, v in m.state_dict().items()])
    decoded = []
    real = weights.read_npz
    monkeypatch.setattr(weights, "read_npz", lambda data, keys=None: decoded.append(keys) or real(data, keys))
    refused(data, word)
    assert decoded == []


def test_input_sizes_beyond_the_cap_are_refused():
    m = core.build("rnn", input_size=weights.MAX_IO + 1, hidden_size=2, output_size=1, seed=0)
    refused(zip_of([(f"{k}.npy", npy(v)) for k, v in m.state_dict().items()]), "input size")


def test_member_count_and_ratio_are_bounded():
    refused(zip_of([(f"x{i}.npy", npy(np.zeros(1))) for i in range(MAX_MEMBERS + 1)]), "at most")
    big = npy(np.zeros(MAX_UNCOMPRESSED // 80))  # 8 MB of zeros, deflated ~1000x
    refused(zip_of([("weight_hh_l0.npy", big)], zipfile.ZIP_DEFLATED), "times larger")


def test_an_upload_is_decoded_once_and_its_run_computed_once(monkeypatch):
    contents = as_upload(zip_of(good_members(hidden=5)))
    decodes, runs = [], []
    real_read, real_flow = weights.read_npz, classroom.uploaded_flow
    monkeypatch.setattr(weights, "read_npz", lambda data, keys=None: decodes.append(keys) or real_read(data, keys))
    monkeypatch.setattr(classroom, "uploaded_flow", lambda m, p: runs.append(p) or real_flow(m, p))
    meta = classroom.upload_weights(contents, "mine.npz")[2]
    assert meta and decodes == [None]
    values = callbacks.params_to_controls(Params(arch=("rnn",), seq_len=12, hidden=4, batch=2))
    for view in ["heatmap", "jacobian", "spectra", "heatmap"]:  # page changes that keep the model settings
        callbacks.page([*values[:-1], view], meta, "", None)
    assert decodes == [None] and len(runs) == 1
    values[callbacks.FIELDS.index("seed")] = 3  # a setting the run depends on: one more run, no decode
    callbacks.page(values, meta, "", None)
    assert decodes == [None] and len(runs) == 2


def test_a_refused_upload_is_not_checked_again(monkeypatch):
    contents = as_upload(zip_of([*good_members(), good_members()[0]]))
    calls = []
    real = weights.read_headers
    monkeypatch.setattr(weights, "read_headers", lambda data: calls.append(1) or real(data))
    for _ in range(3):
        with pytest.raises(WeightsError, match="twice"):
            load_weights(contents)
    assert calls == [1]


def test_a_failing_uploaded_run_is_a_note_in_view_one(monkeypatch):
    contents = as_upload(zip_of(good_members(hidden=6)))
    meta = classroom.upload_weights(contents, "mine.npz")[2]

    def broken(model, params):
        raise RuntimeError("boom")
    monkeypatch.setattr(classroom, "uploaded_flow", broken)
    store = callbacks.store_data(Params(arch=("gru",), seq_len=9, hidden=3, batch=2, seed=11))
    fig, _banner, info = callbacks.overview(store, meta)
    assert "your" not in str(fig) and "cannot run here" in str(info)


def test_the_uploaded_run_is_capped_by_the_work_cap():
    m = core.build("lstm", input_size=2, hidden_size=512, output_size=1, num_layers=4, seed=0)
    T, B, note = weights.run_size(m.config, 2000, 64)
    assert T * B * 4 * 512**2 * 4 <= weights.UPLOAD_WORK_CAP and B == 1 and "batch=1" in note
    assert weights.run_size(m.config, 10, 2) == (10, 2, None)
    wide = core.build("rnn", input_size=weights.MAX_IO, hidden_size=1, output_size=weights.MAX_IO, seed=0)
    T, B, note = weights.run_size(wide.config, 2000, 64)
    assert T * B * 2 * weights.MAX_IO <= weights.IO_CAP and note
