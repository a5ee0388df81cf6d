"""The results a class server's worker processes share (visualizer.sharedcache through visualizer.cache.memoize)."""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import core
from visualizer import compute, facts, serve, sharedcache, storage
from visualizer.urlstate import Params

ROOT = Path(__file__).resolve().parents[2]
KEY = compute.run_key(Params(arch=("gru",), seq_len=15, hidden=5, batch=3, seed=3), "gru")


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """The shared store on, in a private folder of its own; every memo of compute emptied (a fresh worker)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(sharedcache.ENV, "1")
    monkeypatch.setenv(storage.CACHE_ENV, str(folder))
    monkeypatch.setattr(sharedcache, "_state", {"pid": None, "store": None})
    fresh_worker()
    yield folder
    store = sharedcache._state.get("store")
    if store is not None:
        store.close()
    fresh_worker()


def fresh_worker():
    """Empty this process's memos, as in another worker process."""
    for fn in [*vars(compute).values(), *vars(facts).values()]:
        if hasattr(fn, "cache_clear"):
            fn.cache_clear()


def counting(monkeypatch, name):
    calls, real = [], getattr(core, name)
    monkeypatch.setattr(core, name, lambda *a, **kw: calls.append(1) or real(*a, **kw))
    return calls


def test_a_result_computed_by_one_worker_is_read_by_another(shared, monkeypatch):
    calls = counting(monkeypatch, "jacobian_norms")
    first = compute.jacobian_norms(KEY)
    fresh_worker()
    second = compute.jacobian_norms(KEY)
    assert len(calls) == 1 and second is not first
    np.testing.assert_array_equal(second, first)
    assert not second.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        second.flat[0] = 1.0
    assert (shared / "results").is_dir() and (shared / "results").stat().st_mode & 0o777 == 0o700


def test_dataclass_results_come_back_read_only(shared, monkeypatch):
    calls = counting(monkeypatch, "bptt")
    first = compute.grad_flow(KEY)
    fresh_worker()
    second = compute.grad_flow(KEY)
    assert len(calls) == 1 and second is not first and second.loss == first.loss
    for name in ("hidden_grad_norms", "hidden_grad_units"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
        assert not getattr(second, name).flags.writeable
    assert facts.weight_facts(KEY) == facts.weight_facts(KEY)


def test_identity_keys_oversized_values_and_other_code_are_not_shared(shared, monkeypatch):
    calls = counting(monkeypatch, "jacobian_norms")
    run = compute.model_run(compute.get_model(KEY), compute.get_task(KEY.data))
    compute.jacobian_norms(run)
    fresh_worker()
    compute.jacobian_norms(run)
    assert len(calls) == 2  # a ModelRun's key is its identity: never shared
    monkeypatch.setattr(sharedcache, "MAX_VALUE_BYTES", 0)
    compute.jacobian_norms(KEY)
    fresh_worker()
    compute.jacobian_norms(KEY)
    assert len(calls) == 4
    monkeypatch.setattr(sharedcache, "MAX_VALUE_BYTES", 2**20)
    fresh_worker()
    compute.jacobian_norms(KEY)  # shared now
    fresh_worker()
    monkeypatch.setattr(sharedcache, "context", lambda: "another version")
    compute.jacobian_norms(KEY)
    assert len(calls) == 6


def test_off_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(sharedcache.ENV, raising=False)
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(sharedcache, "_state", {"pid": None, "store": None})
    fresh_worker()
    compute.jacobian_norms(KEY)
    assert not (tmp_path / "cache").exists()
    fresh_worker()


def test_an_unsafe_folder_is_refused_and_the_worker_computes(shared, monkeypatch, caplog):
    shared.mkdir(mode=0o700)
    (shared / "results").mkdir(mode=0o777)
    os.chmod(shared / "results", 0o777)
    calls = counting(monkeypatch, "jacobian_norms")
    with caplog.at_level(logging.WARNING, logger="visualizer.sharedcache"):
        first = compute.jacobian_norms(KEY)
        fresh_worker()
        np.testing.assert_array_equal(compute.jacobian_norms(KEY), first)
    assert len(calls) == 2
    assert "can be read or changed by other accounts" in caplog.text and caplog.text.count("shared results") == 1


def test_a_broken_database_is_logged_and_the_worker_computes(shared, monkeypatch, caplog):
    compute.jacobian_norms(KEY)  # opens the store

    def broken(*args, **kwargs):
        raise OSError("disk I/O error")

    store = sharedcache._state["store"]
    monkeypatch.setattr(store, "get", broken)
    monkeypatch.setattr(store, "set", broken)
    fresh_worker()
    calls = counting(monkeypatch, "gate_products")
    with caplog.at_level(logging.WARNING, logger="visualizer.sharedcache"):
        assert compute.gate_products(KEY).shape[1] == 15
    assert len(calls) == 1 and "disk I/O error" in caplog.text


CHILD = """
import json, sys
from visualizer import compute
from visualizer.urlstate import Params
key = compute.run_key(Params(arch=("lstm",), seq_len=14, hidden=4, batch=2, seed=5), "lstm")
print(json.dumps([compute.jacobian_norms(key).tolist(), compute.grad_flow(key).loss]))
"""


def test_two_processes_share_results(shared, monkeypatch):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True)
    norms, loss = json.loads(out.stdout)

    def not_here(*args, **kwargs):
        raise AssertionError("computed again: the other process's result was not read")

    key = compute.run_key(Params(arch=("lstm",), seq_len=14, hidden=4, batch=2, seed=5), "lstm")
    monkeypatch.setattr(core, "jacobian_norms", not_here)
    monkeypatch.setattr(core, "bptt", not_here)
    got = compute.jacobian_norms(key)
    assert compute.grad_flow(key).loss == loss
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(norms, dtype=float), rtol=0, atol=0)
    monkeypatch.undo()
    monkeypatch.setenv(sharedcache.ENV, "0")
    fresh_worker()
    np.testing.assert_allclose(compute.jacobian_norms(key), got, rtol=1e-12, atol=0)  # as computed here


def test_serve_shares_results_between_several_workers_only():
    assert serve.server_env(serve.parse_args(["--workers", "2"]))[sharedcache.ENV] == "1"
    assert sharedcache.ENV not in serve.server_env(serve.parse_args(["--workers", "1"]))
