"""The load test's simulated students (benchmarks/students.py, benchmarks/load_test.py)."""
import importlib.util
import random
import subprocess
import sys

from tests.server.conftest import ROOT
from visualizer import ids


def _students():
    spec = importlib.util.spec_from_file_location("students", ROOT / "benchmarks" / "students.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_student_changes_a_control_to_another_value():
    """As in a browser, where setting a control to the value it has sends nothing."""
    students, rng = _students(), random.Random(0)
    props = {(ids.LAYERS, "value"): 1, (ids.LOSS_ON, "value"): "last", (ids.VIEW, "value"): "jacobian"}
    seen = set()
    for _ in range(2000):
        cid, prop, value = students.control_changes(rng, props)
        assert props.get((cid, prop)) != value
        props[(cid, prop)] = value
        seen.add(cid)
    assert len(seen) == 13  # every kind of move is still made


def test_the_load_test_starts():
    out = subprocess.run([sys.executable, "benchmarks/load_test.py", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--kill-worker-at" in out.stdout and "--env" in out.stdout
