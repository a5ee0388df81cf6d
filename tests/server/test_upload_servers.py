"""An upload over real servers: sent once, then every page change (which sends only its digest)
draws it, whichever gunicorn worker or web machine answers; a machine that cannot have it says
to send it again."""
from __future__ import annotations

import importlib.util
import io
import shutil

import numpy as np
import pytest
import requests

import core
from tests.server.conftest import ROOT, stop
from tests.server.dash_http import DashSession
from tests.uploads import as_upload
from visualizer import ids

pytestmark = pytest.mark.slow


def upload(s: DashSession, seed: int = 0) -> dict:
    """Upload a GRU as the Upload card does (its browser-side check passed); the weights store."""
    buf = io.BytesIO()
    np.savez(buf, **core.build("gru", input_size=2, hidden_size=6, output_size=1, seed=seed).state_dict())
    s.set(ids.UPLOAD_PENDING, "data", {"contents": as_upload(buf.getvalue()), "filename": "mine.npz"})
    assert s.props[(ids.UPLOAD_STATUS, "children")].startswith("Loaded mine.npz: GRU"), \
        s.props[(ids.UPLOAD_STATUS, "children")]
    return s.props[(ids.WEIGHTS_STORE, "data")]


def names(s: DashSession) -> list:
    return [t.get("name") for t in s.props[(ids.GRAD_GRAPH, "figure")]["data"]]


def info(s: DashSession) -> str:
    return str(s.props[(ids.INFO, "children")])


def page(base: str, meta: dict, seed: int) -> DashSession:
    """A page change on ``base`` (a new connection, so any worker may answer) with the upload."""
    s = DashSession(base, requests).load()
    s.props[(ids.WEIGHTS_STORE, "data")] = meta
    s.set(ids.SEED, "value", seed)
    return s


def test_every_worker_and_a_restarted_server_draw_an_upload_sent_once(procs):
    _proc, base = procs.gunicorn(workers=2, threads=2)
    s = DashSession(base, requests).load()
    meta = upload(s)
    assert "your GRU" in names(s)
    for seed in range(1, 9):  # each on a new connection: both workers answer some of them
        other = page(base, meta, seed)
        assert "your GRU" in names(other) and "Dashed: mine.npz (GRU" in info(other), info(other)[:300]
    stop(_proc)
    procs.procs.remove(_proc)
    _again, base = procs.gunicorn(workers=1, threads=2)  # new processes, the same machine (cache folder)
    assert "your GRU" in names(page(base, meta, 11))


def test_a_machine_that_never_saw_the_upload_says_so(procs, tmp_path):
    _a, base_a = procs.gunicorn(workers=1, threads=2)
    meta = upload(DashSession(base_a, requests).load(), seed=1)
    procs.env = {**procs.env, "BPTTLAB_CACHE_DIR": str(tmp_path / "other-machine")}
    _b, base_b = procs.gunicorn(workers=1, threads=2)
    s = page(base_b, meta, 3)
    assert not any(str(n).startswith("your") for n in names(s)) and "no longer on the server" in info(s), info(s)[:300]
    forged = page(base_a, {**meta, "digest": "0" * 64}, 4)  # knowing the digest is the only way to an upload
    assert not any(str(n).startswith("your") for n in names(forged)) and "no longer on the server" in info(forged)


def test_web_machines_behind_a_balancer_share_an_upload_through_redis(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    spec = importlib.util.spec_from_file_location("local_cluster", ROOT / "benchmarks" / "local_cluster.py")
    local_cluster = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(local_cluster)
    with local_cluster.LocalCluster(tmp_path, web=2, workers=0, web_workers=1) as c:
        meta = upload(DashSession(c.web_urls[0], requests).load(), seed=2)
        other = page(c.web_urls[1], meta, 5)  # the other machine: its own cache folder, the same Redis
        assert "your GRU" in names(other) and "Dashed: mine.npz" in info(other), info(other)[:300]
        for seed in range(6, 10):  # through the round-robin balancer
            assert "your GRU" in names(page(c.base, meta, seed))
