"""The server processes of a load test: their trees, memory and CPU, a worker killed on purpose,
and stopping them (used by load_test.py)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import psutil


def kill_a_worker(pids, when, args):
    """At ``when``, SIGKILL one gunicorn worker of the first server (gunicorn starts a new one)."""
    time.sleep(max(0.0, when - time.monotonic()))
    for p in server_processes(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            if "gunicorn" in " ".join(p.cmdline()) and p.pid not in pids and p.ppid() in pids:
                args.killed_at = time.monotonic()
                os.kill(p.pid, signal.SIGKILL)
                print(f"killed gunicorn worker {p.pid}", flush=True)
                return


def server_processes(pids) -> list[psutil.Process]:
    """The given processes and all their descendants, alive."""
    procs = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            procs += [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return procs


def rss_mb(pids) -> tuple[float, int, float]:
    """(total RSS in MB, number of processes, RSS of the gunicorn master + workers alone) of the
    server process trees (the rest: job processes, the Celery worker)."""
    total, n, web = 0, 0, 0
    for p in server_processes(pids):
        try:
            rss = p.memory_info().rss
            total += rss
            n += 1
            if "gunicorn" in " ".join(p.cmdline()) and (p.pid in pids or p.ppid() in pids):
                web += rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20, n, web / 2**20


def cpu_seconds(pids) -> tuple[float, float]:
    """(all, web): user + system CPU seconds used so far by the server process trees (children
    included), and by the gunicorn master and workers alone (without their job processes)."""
    total = web = 0.0
    for p in server_processes(pids):
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
            if "gunicorn" in " ".join(p.cmdline()) and (p.pid in pids or p.ppid() in pids):
                web += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total, web


def stop_servers(procs):
    for p in reversed(procs):
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
