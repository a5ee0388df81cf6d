"""The students of ``benchmarks/load_test.py``, driven by locust (same requests, same moves).

Start a server (``bpttlab serve --workers 2``), then, for 50 students of whom one in five also
trains (the 10 training tabs are separate users here)::

    locust -f benchmarks/locustfile.py --headless -u 60 -r 10 -t 60s --host http://127.0.0.1:8050

locust needs urllib3 >= 2 while ``dash[testing]`` pins urllib3 1.26, so run locust from its own
virtual environment (this file imports only the standard library, locust and ``visualizer.ids``)::

    python -m venv /tmp/locust-venv && /tmp/locust-venv/bin/pip install locust
    /tmp/locust-venv/bin/locust -f benchmarks/locustfile.py --headless -u 60 -r 10 -t 60s --host http://127.0.0.1:8050

Loopback only: the host must be 127.0.0.1 / localhost.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

from locust import HttpUser, between, task

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from students import control_changes  # noqa: E402
from tests.server.dash_http import DashSession  # noqa: E402


def _loopback(host: str) -> str:
    name = host.split("//", 1)[-1].split("/")[0].rsplit(":", 1)[0].strip("[]")
    if name not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"load tests target this computer only, not {host}")
    return host


class Student(HttpUser):
    """Loads the page, then changes one control every 1-3 s."""

    weight = 5
    wait_time = between(1, 3)

    def on_start(self):
        self.rng = random.Random()
        self.dash = DashSession(_loopback(self.host), self.client).load()

    @task
    def change_a_control(self):
        cid, prop, value = control_changes(self.rng, self.dash.props)
        self.dash.set(cid, prop, value)


class TrainingTab(HttpUser):
    """A student's tab that starts a training run, polls it to its end, waits, starts another."""

    weight = 1
    wait_time = between(3, 8)

    def on_start(self):
        self.dash = DashSession(_loopback(self.host), self.client).load()
        self.dash.props[("user-id-store", "data")] = f"locust-{random.getrandbits(64):016x}"
        self.job = next((d for d in self.dash.deps if d.get("background")), None)

    @task
    def train(self):
        if self.job is None:
            return
        trigger = self.job["inputs"][0]
        key = (trigger["id"], trigger["property"])
        self.dash.props[key] = (self.dash.props.get(key) or 0) + 1
        self.dash.run_background(self.job, [f"{key[0]}.{key[1]}"], interval=0.5, timeout=120)
