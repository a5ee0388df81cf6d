"""Upload attacks against :mod:`visualizer.weights`: each is rejected with its message, and no
upload (good or bad) writes a file anywhere (checked with an audit hook on every ``open``)."""
from __future__ import annotations

import contextlib
import io
import os
import sys
import zipfile

import numpy as np
import pytest

import core
from tests.uploads import as_upload
from visualizer import weights
from visualizer.npz import MAX_UNCOMPRESSED
from visualizer.weights import WeightsError, load_weights

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_WRITES: list = []
_WATCH = {"on": False}


def _audit(event, args):
    """Record every open-for-writing while watching (audit hooks cannot be removed, so gate them)."""
    if not _WATCH["on"] or event != "open":
        return
    path, mode, flags = ([*list(args), None, None, None])[:3]
    writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
              (isinstance(flags, int) and flags & WRITE_FLAGS)
    if writing:
        _WRITES.append((path, mode, flags))


sys.addaudithook(_audit)


@contextlib.contextmanager
def no_writes():
    """Fail if anything inside the block opens a file for writing."""
    _WRITES.clear()
    _WATCH["on"] = True
    try:
        yield
    finally:
        _WATCH["on"] = False
    assert _WRITES == [], f"files opened for writing: {_WRITES}"


def npz(**arrays) -> bytes:
    """An .npz in memory."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def good_state():
    """A valid 1-layer GRU state dict of the core's layout."""
    m = core.build("gru", input_size=2, hidden_size=4, output_size=1, seed=0)
    return dict(m.state_dict())


def rejected(contents, filename="model.npz") -> str:
    """The message of the WeightsError an upload raises (no file written meanwhile)."""
    with no_writes(), pytest.raises(WeightsError) as info:
        load_weights(contents, filename)
    return str(info.value)


def test_a_good_upload_loads_without_writing_anything():
    with no_writes():
        up = load_weights(as_upload(npz(**good_state())), "model.npz")
    assert up.arch == "gru"


def test_over_size_is_rejected_before_decoding():
    huge = "data:application/octet-stream;base64," + "A" * (4 * weights.MAX_BYTES // 3 + 1024)
    assert "limit" in rejected(huge)


def test_zip_bomb_is_rejected_before_unpacking():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (MAX_UNCOMPRESSED // 8 + 1,)})
        zf.writestr("weight_hh_l0.npy", header.getvalue() + bytes(MAX_UNCOMPRESSED + 8))
    assert len(buf.getvalue()) < weights.MAX_BYTES
    assert "limit" in rejected(as_upload(buf.getvalue()))


@pytest.mark.parametrize("data", [b"", b"hello, not a zip", b"\x89PNG\r\n\x1a\n" + bytes(64),
                                  b"PK\x03\x04" + bytes(40), b"#!/bin/sh\nrm -rf /\n"])
def test_non_npz_bytes_are_rejected(data):
    message = rejected(as_upload(data))
    assert "npz" in message or "empty" in message or "damaged" in message


def test_not_base64_and_not_a_file():
    assert "base64" in rejected("data:application/octet-stream;base64,%%%not-base64%%%")
    assert "No file" in rejected(None)
    assert "No file" in rejected(12345)


@pytest.mark.parametrize("filename", ["model.pkl", "../../etc/passwd", "model.npz.exe", "C:\\Windows\\x.dll"])
def test_names_other_than_npz_are_rejected_and_never_used_as_paths(filename):
    assert "not an .npz" in rejected(as_upload(npz(**good_state())), filename)


def test_pickled_objects_are_never_loaded():
    marker = {"called": False}

    class Evil:
        def __reduce__(self):
            return (marker.update, ({"called": True},))
    state = good_state()
    state["weight_hh_l0"] = np.array([Evil()], dtype=object)
    message = rejected(as_upload(npz(**state)))
    assert "weight_hh_l0" in message and "pickle" in message
    assert marker == {"called": False}


def test_a_plain_pickle_file_is_not_an_npz():
    import pickle

    assert "not an .npz" in rejected(as_upload(pickle.dumps({"weight_hh_l0": [1.0]})))


def test_zip_members_with_paths_are_rejected_and_not_extracted():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../evil.sh", b"echo owned")
    message = rejected(as_upload(buf.getvalue()))
    assert "evil.sh" in message


@pytest.mark.parametrize("change, word", [
    (lambda s: s.pop("weight_hh_l0"), "weight_hh_l0"),
    (lambda s: s.pop("readout.weight"), "readout.weight"),
    (lambda s: s.update(extra=np.zeros(3)), "extra"),
    (lambda s: s.update(weight_hh_l0=np.zeros((12, 5))), "weight_hh_l0"),
    (lambda s: s.update(bias_ih_l0=np.zeros(7)), "bias_ih_l0"),
    (lambda s: s.update(weight_hh_l0=np.zeros((12, 4), dtype=complex)), "weight_hh_l0"),
    (lambda s: s.update(arch=np.array("transformer")), "arch"),
])
def test_wrong_keys_and_shapes_name_the_key(change, word):
    state = good_state()
    change(state)
    assert word in rejected(as_upload(npz(**state)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_rejected(bad):
    state = good_state()
    w = state["weight_ih_l0"].copy()
    w[1, 0] = bad
    state["weight_ih_l0"] = w
    message = rejected(as_upload(npz(**state)))
    assert "weight_ih_l0" in message and ("NaN" in message or "inf" in message)


def test_the_write_detector_detects_writes(tmp_path):
    with pytest.raises(AssertionError, match="opened for writing"), no_writes():
        (tmp_path / "x.txt").write_text("x")
