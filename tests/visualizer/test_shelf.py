"""Page changes after an upload send its digest, not the file: the server finds the checked upload
in its own cache or on the shelf (:mod:`visualizer.shelf`), and a forged or unknown digest is a
note in the info line, never an error."""
from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import uuid

import numpy as np
import pytest

import core
from tests.uploads import as_upload
from visualizer import callbacks, classroom, ids, shelf, weights
from visualizer.app import create_app
from visualizer.urlstate import Params

SMALL = Params(arch=("rnn",), seq_len=10, hidden=4, batch=2)


def npz_of(model) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **model.state_dict())
    return buf.getvalue()


def uploaded(seed=0, hidden=5):
    data = npz_of(core.build("gru", input_size=2, hidden_size=hidden, output_size=1, seed=seed))
    text, _cls, meta = classroom.upload_weights(as_upload(data), "mine.npz")
    assert text.startswith("Loaded mine.npz: GRU"), text
    return data, meta


def curves(meta):
    fig, _banner, info = callbacks.overview(callbacks.store_data(SMALL), meta)
    return [t["name"] for t in fig["data"]], " ".join(str(c.children) for c in info)


def test_the_page_callback_does_not_send_the_upload():
    app = create_app()
    page = next(v for k, v in app.callback_map.items() if k.startswith(f"..{ids.GRAD_GRAPH}.figure"))
    sent = [x["id"] for x in page["inputs"] + page["state"]]
    assert ids.UPLOAD_PENDING not in sent and ids.WEIGHTS_STORE in sent


def test_the_weights_store_holds_the_digest_of_the_file_not_the_file():
    data, meta = uploaded(seed=1)
    assert meta["digest"] == hashlib.sha256(data).hexdigest()
    assert set(meta) == {"filename", "summary", "arch", "digest"} and len(str(meta)) < 400


def test_another_process_finds_the_upload_on_the_shelf(monkeypatch):
    _, meta = uploaded(seed=2)
    weights._checked.cache_clear()  # a worker that never saw the upload
    reads = []
    real = shelf.get
    monkeypatch.setattr(shelf, "get", lambda key: reads.append(key) or real(key))
    names, info = curves(meta)
    assert "your GRU" in names and "Dashed: mine.npz (GRU" in info and reads == [meta["digest"]]
    curves(meta)  # checked once per process: the shelf is not read again
    assert reads == [meta["digest"]]


def test_an_upload_on_no_shelf_is_sent_again_once(monkeypatch):
    _, meta = uploaded(seed=3)
    weights._checked.cache_clear()
    monkeypatch.setattr(shelf, "get", lambda key: None)  # another machine, or dropped as the oldest
    names, info = curves(meta)
    assert not any(n.startswith("your") for n in names)
    assert classroom.MISSING in info and classroom.RESENDING in info and "mine.npz" in info
    # the page sends the file again (assets/classroom.js, once): the store says so, and if the
    # server still cannot find it the note says what the student can do
    resent = classroom.upload_status({"contents": as_upload(npz_of(core.build(
        "gru", input_size=2, hidden_size=5, output_size=1, seed=3))), "filename": "mine.npz", "resent": "x"})[2]
    assert resent == {**meta, "resent": True}
    assert "your GRU" in curves(resent)[0]  # this process checked it again
    weights._checked.cache_clear()
    names, info = curves(resent)
    assert not any(n.startswith("your") for n in names) and classroom.GIVE_UP in info


@pytest.mark.parametrize("forged", [
    {"digest": None}, {"digest": 5}, {"digest": ["a"]}, {"digest": "g" * 64}, {"digest": "A" * 64},
    {"digest": "0" * 63}, {"digest": "0" * 65}, {"digest": "../" * 30}, {}, {"digest": {"$ne": 1}},
    {"digest": "0" * 64, "filename": {"x": 1}, "summary": ["<script>"]}])
def test_forged_weights_stores_are_a_note(forged):
    names, info = curves(forged)
    assert not any(n.startswith("your") for n in names) and "Your uploaded model" in info
    assert ("'digest'" in info) or (classroom.MISSING in info)


def test_a_digest_is_the_only_way_to_an_upload():
    _, meta = uploaded(seed=4)
    assert "your GRU" in curves(meta)[0]
    other = "0" * 64 if meta["digest"] != "0" * 64 else "1" * 64
    assert "your GRU" not in curves({**meta, "digest": other})[0]
    # what the browser says about the upload is not what the page shows: the server's summary is
    _, info = curves({**meta, "summary": "a forged summary"})
    assert "forged" not in info and meta["summary"] in info


def test_a_refused_upload_is_not_shelved():
    state = core.build("gru", input_size=2, hidden_size=3, output_size=1, seed=0).state_dict()
    state["bias_ih_l0"] = np.full(9, np.nan)
    buf = io.BytesIO()
    np.savez(buf, **state)
    text, _cls, meta = classroom.upload_weights(as_upload(buf.getvalue()), "nan.npz")
    assert text.startswith("Rejected") and meta is None
    assert shelf.get(hashlib.sha256(buf.getvalue()).hexdigest()) is None


def test_the_disk_shelf_is_bounded_and_checks_what_it_returns(tmp_path):
    disk = shelf.DiskShelf(tmp_path / "uploads", size_limit=3 * 2**20)
    blobs = [os.urandom(2**20) for _ in range(6)]
    for b in blobs:
        disk.put(hashlib.sha256(b).hexdigest(), b)
    kept = [b for b in blobs if disk.get(hashlib.sha256(b).hexdigest()) is not None]
    assert kept == blobs[len(blobs) - len(kept):] and 1 <= len(kept) <= 3  # the newest, within the bound
    assert disk.cache.volume() <= 4 * 2**20
    # bytes that are not what their key is the SHA-256 of are never handed out
    key = hashlib.sha256(b"a").hexdigest()
    disk.put(key, b"b")
    assert disk.get(key) == b"b"
    real = shelf.shelf
    try:
        shelf.shelf = lambda: disk
        assert shelf.get(key) is None and shelf.get(hashlib.sha256(blobs[-1]).hexdigest()) == blobs[-1]
        assert shelf.get("../" * 10) is None and shelf.put("x", b"1") is False
    finally:
        shelf.shelf = real


@pytest.mark.skipif(not os.environ.get("BPTTLAB_TEST_REDIS_URL"), reason="needs BPTTLAB_TEST_REDIS_URL (see .ci/run)")
def test_the_redis_shelf_is_bounded(monkeypatch):
    monkeypatch.setattr(shelf, "KEY", f"bpttlab-test-{uuid.uuid4().hex}:upload:")
    monkeypatch.setattr(shelf, "INDEX", shelf.KEY + "index")
    monkeypatch.setattr(shelf, "SIZES", shelf.KEY + "sizes")
    red = shelf.RedisShelf(os.environ["BPTTLAB_TEST_REDIS_URL"], max_bytes=3 * 2**20)
    blobs = [os.urandom(2**20) for _ in range(5)]
    try:
        for b in blobs:
            red.put(hashlib.sha256(b).hexdigest(), b)
        kept = [b for b in blobs if red.get(hashlib.sha256(b).hexdigest()) is not None]
        assert kept == blobs[2:]
        assert sum(int(v) for v in red.client.hvals(shelf.SIZES)) <= 3 * 2**20
        assert red.client.zcard(shelf.INDEX) == 3
    finally:
        keys = list(red.client.scan_iter(shelf.KEY + "*"))
        if keys:
            red.client.delete(*keys)


class Broken:
    """A shelf whose disk or Redis fails on every call."""

    def __init__(self, error):
        self.error = error

    def has(self, key):
        raise self.error

    put = get = has


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), sqlite3.OperationalError("locked"),
                                   ConnectionError("refused")])
def test_a_failing_shelf_keeps_the_upload_in_this_process(monkeypatch, error):
    monkeypatch.setattr(shelf, "shelf", lambda: Broken(error))
    data = npz_of(core.build("gru", input_size=2, hidden_size=7, output_size=1, seed=9))
    text, cls, meta = classroom.upload_weights(as_upload(data), "mine.npz")
    assert text.startswith("Loaded mine.npz") and "Kept by one server process only" in text and "ok" in cls
    assert "your GRU" in curves(meta)[0]  # this process has it
    weights._checked.cache_clear()
    names, info = curves(meta)  # another process: nothing on the shelf, the page will send it again
    assert "your GRU" not in names and classroom.MISSING in info
