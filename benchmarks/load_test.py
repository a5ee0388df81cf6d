"""A class on one server: simulated students against gunicorn, through the browser's own requests.

Starts ``gunicorn`` with 3 workers (the ``bpttlab serve`` command line) on a free loopback port,
then runs N simulated students for D seconds. Each student loads the page (HTML, layout,
dependencies, the initial callbacks) and then, every 1-3 s, changes one control, sending the
POST /_dash-update-component requests the renderer sends (the changed control's callback, then
every callback its outputs trigger, with the real payload shapes taken from the app's
/_dash-dependencies and layout). One student in five also runs training jobs, when the app has
a background callback: it presses the button that starts it and polls it as the browser does,
starts another a few seconds after one ends, and so on.

Reported: requests and failed requests (HTTP error, connection error or timeout; target 0),
latency percentiles per kind of request (aim: p95 <= 1 s), the RSS of every server process
(gunicorn master and workers, plus job processes: diskcache children or the Celery worker) at
start and at end.

    python benchmarks/load_test.py [--users 50] [--duration 60] [--workers 3] [--backend diskcache|celery]
    python benchmarks/load_test.py --kill-worker-at 30        # one gunicorn worker SIGKILLed mid-run
    python benchmarks/load_test.py --cluster-workers 2 --job-workers 1 --workers 1   # two "machines"

A student resends a request whose connection was lost (or that got 502/503/504), as the page's
``assets/retry.js`` does (``--no-retry``: not); lost attempts are counted apart from failures.
``--cluster-workers K`` runs two web servers behind a round-robin balancer, K Celery workers and
Redis (``benchmarks/local_cluster.py``), and reports training throughput in jobs per minute.

Loopback only; every loop is bounded by the duration; the servers it starts are stopped at the end.
``benchmarks/locustfile.py`` drives the same students with locust instead.
"""
from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import requests  # noqa: E402

from local_cluster import LocalCluster, free_port  # noqa: E402
from server_procs import cpu_seconds, kill_a_worker, rss_mb, stop_servers  # noqa: E402
from students import control_changes  # noqa: E402
from tests.server.dash_http import DashSession  # noqa: E402
from visualizer.serve import CLASS_VIEW_SECONDS, CLASS_WORKERS, SERVER_ENV, gunicorn_args, server_env  # noqa: E402
from visualizer.serve import parse_args as serve_args  # noqa: E402


class Recorder:
    """Thread-safe list of (kind, seconds, ok, detail)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rows = []
        self.changes = 0  # controls changed by the students

    def changed(self):
        with self.lock:
            self.changes += 1

    def add(self, kind, seconds, ok, detail="", output="", start=0.0):
        with self.lock:
            self.rows.append((kind, seconds, ok, detail, output, start))


RETRY_STATUS = (502, 503, 504)


def _is_json(response) -> bool:
    """True if the body parses as JSON."""
    try:
        response.json()
    except ValueError:
        return False
    return True


RETRY_PAUSES = (0.25, 0.75, 2.0)  # as assets/retry.js: the page resends after a lost connection


class TimedHTTP:
    """A requests.Session that records every request's latency and outcome; with ``retry``, a
    request that loses its connection (or gets 502/503/504) is resent as the page's
    ``assets/retry.js`` does, and each attempt is recorded (kind ``retried`` for the lost ones)."""

    def __init__(self, recorder: Recorder, retry: bool = False):
        self.session, self.recorder, self.retry = requests.Session(), recorder, retry

    def _kind(self, method, url, body):
        if "_dash-update-component" not in url:
            return f"GET {url.split('?')[0].split('/', 3)[-1] or '/'}"
        if "cancelJob=" in url:
            return "POST job cancel"
        if "cacheKey=" in url:
            return "POST job poll"
        return "POST callback"

    def request(self, method, url, **kwargs):
        kind = self._kind(method, url, kwargs.get("json"))
        output = (kwargs.get("json") or {}).get("output", "")
        for attempt in range(len(RETRY_PAUSES) + 1):
            last = attempt == len(RETRY_PAUSES) or not self.retry
            t0, start = time.perf_counter(), time.monotonic()
            try:
                r = self.session.request(method, url, **kwargs)
            except requests.RequestException as e:
                self.recorder.add(kind if last else "retried", time.perf_counter() - t0, False,
                                  f"{type(e).__name__} {output[:60]}", output, start)
                if last:
                    raise
                time.sleep(RETRY_PAUSES[attempt])
                continue
            cut = r.status_code == 200 and method == "POST" and not _is_json(r)  # connection cut mid-body
            if (r.status_code in RETRY_STATUS or cut) and not last:
                self.recorder.add("retried", time.perf_counter() - t0, False, "cut" if cut else f"HTTP {r.status_code}",
                                  output, start)
                time.sleep(RETRY_PAUSES[attempt])
                continue
            ok = r.status_code in (200, 204)
            self.recorder.add(kind, time.perf_counter() - t0, ok, "" if ok else f"HTTP {r.status_code} {output[:60]}",
                              output, start)
            return r
        raise AssertionError("unreachable")

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.request("POST", url, **kwargs)


def student(base, seconds, seed, recorder, stop_at, retry=False):
    """Load the page, then change a control every 1-3 s until ``stop_at``."""
    rng = random.Random(seed)
    http = TimedHTTP(recorder, retry)
    try:
        time.sleep(rng.uniform(0, 3))  # students do not all arrive in the same millisecond
        s = DashSession(base, http, timeout=30).load()
        while True:
            wait = rng.uniform(1, 3)
            if time.monotonic() + wait >= stop_at:
                break
            time.sleep(wait)
            cid, prop, value = control_changes(rng, s.props)
            recorder.changed()
            try:
                s.set(cid, prop, value)
            except Exception as e:  # recorded by TimedHTTP (or here), the student goes on
                recorder.add("student error", 0.0, False, f"{type(e).__name__}: {e}"[:200])
    except Exception as e:
        recorder.add("student error", 0.0, False, f"{type(e).__name__}: {e}"[:200])
    finally:
        http.session.close()


def trainer(base, seed, recorder, stop_at, outcomes, retry=False, steps=None):
    """A second tab of a student: start a training run, poll it to its end, wait, start another."""
    rng = random.Random(seed)
    http = TimedHTTP(recorder, retry)
    try:
        time.sleep(rng.uniform(0, 10))
        s = DashSession(base, http, timeout=30).load()
        s.props[("user-id-store", "data")] = f"loadtest-{seed:04d}-{rng.getrandbits(64):016x}"
        if steps:
            s.props[("train-steps-input", "value")] = steps
        dep = next(d for d in s.deps if d.get("background"))
        trigger = dep["inputs"][0]
        while time.monotonic() < stop_at - 5:
            key = (trigger["id"], trigger["property"])
            s.props[key] = (s.props.get(key) or 0) + 1
            t0 = time.monotonic()
            try:  # poll as often as the renderer does (the callback's ``interval``)
                out = s.run_background(dep, [f"{trigger['id']}.{trigger['property']}"],
                                       interval=dep["background"].get("interval", 500) / 1000,
                                       timeout=max(1.0, stop_at - time.monotonic()))
                result = next(iter(((out or {}).get("response") or {}).values()), {})
                result = next(iter(result.values()), None) if isinstance(result, dict) else None
                if isinstance(result, dict) and result.get("error"):
                    outcomes.append((f"refused: {result['error'][:70]}", time.monotonic() - t0))
                else:
                    outcomes.append(("done", time.monotonic() - t0))
                    time.sleep(rng.uniform(3, 8))  # a student looks at the result before training again
                    continue
            except TimeoutError:
                outcomes.append(("still running at the end", time.monotonic() - t0))
                break
            except Exception as e:
                outcomes.append((f"error {type(e).__name__}", time.monotonic() - t0))
            time.sleep(rng.uniform(1, 3))  # refused (busy, or queue full): try again soon
    except StopIteration:
        outcomes.append(("no background callback in this app", 0.0))
    except Exception as e:
        recorder.add("trainer error", 0.0, False, f"{type(e).__name__}: {e}"[:200])
    finally:
        http.session.close()


def wait_http(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def start_servers(args, folder: Path):
    """gunicorn (and for --backend celery a redis-server and a Celery worker); returns (procs, base)."""
    serve = serve_args(["--workers", str(args.workers), "--threads", str(args.threads),
                        "--max-requests", str(args.max_requests), "--view-seconds", str(args.view_seconds)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPTTLAB_")}
    env.update(BPTTLAB_CACHE_DIR=str(folder / "cache"), PYTHONPATH=str(ROOT), BPTTLAB_APP=args.app.split(":")[0],
               BPTTLAB_SECRET_KEY=secrets.token_hex(32),
               **{k: v for k, v in server_env(serve).items() if k not in SERVER_ENV or k not in env})  # as serve does
    env.update(kv.split("=", 1) for kv in args.env)
    procs = []
    if args.backend == "celery":
        port = free_port()
        procs.append(subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", str(folder)],
                                      stdout=subprocess.DEVNULL, start_new_session=True))
        env["BPTTLAB_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.5)
        with open(folder / "celery.log", "ab") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "celery", "-A", "visualizer.celery_worker", "worker",
                                           "-c", str(args.job_workers), "-l", "warning", "--without-gossip",
                                           "--without-mingle", "--without-heartbeat"],
                                          cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
    serve.port = port = free_port()
    with open(args.log or folder / "gunicorn.log", "ab") as log:
        command = [*gunicorn_args(serve)[:-1], args.app]
        procs.append(subprocess.Popen([sys.executable, "-m", "gunicorn", *command], cwd=ROOT, env=env,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/")
    return procs, base


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


def report(recorder, outcomes, mem_start, mem_end, args, elapsed):
    rows = recorder.rows
    failed = [r for r in rows if not r[2] and r[0] != "retried"]
    retried = [r for r in rows if r[0] == "retried"]
    print(f"\n{args.users} students ({args.users // 5 if args.training else 0} also training), {elapsed:.0f} s, "
          f"gunicorn {args.workers} workers x {args.threads} threads, jobs on {args.backend}, app {args.app}, "
          f"views {args.view_seconds:g} s, progress polls every {serve_args([]).poll_ms} ms (as bpttlab serve)")
    print(f"requests: {len(rows) - len(retried)}   failed: {len(failed)}"
          + (f"   lost and resent by the page: {len(retried)}" if retried else ""))
    if args.kill_worker_at is not None and getattr(args, "killed_at", None) is not None:
        inflight = [r for r in retried if r[5] <= args.killed_at]
        print(f"one gunicorn worker SIGKILLed at {args.kill_worker_at:.0f} s: {len(inflight)} requests in flight on it "
              f"lost their connection and were resent ({len(retried) - len(inflight)} later attempts lost too); "
              f"requests that failed for the page: {len(failed)}")
    causes = {}
    for kind, seconds, _, detail, *_ in failed:
        causes.setdefault(f"{kind}: {detail}", []).append(seconds)
    for cause, times in sorted(causes.items(), key=lambda kv: -len(kv[1]))[:8]:
        print(f"  {len(times):4d} x {cause} (after {statistics.median(times):.2f} s median)")
    slow = {}
    for kind, seconds, ok, _, output, *_ in rows:
        if ok and kind == "POST callback":
            slow.setdefault(output, []).append(seconds)
    print("slowest callbacks (p95 ms, count):",
          "; ".join(f"{o.strip('.')[:40]} {percentile(t, 95) * 1000:.0f} ({len(t)})"
                    for o, t in sorted(slow.items(), key=lambda kv: -percentile(kv[1], 95))[:4]))
    print(f"{'request':<24}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    kinds = sorted({r[0] for r in rows})
    for kind in [*kinds, "ALL"]:
        lat = [r[1] * 1000 for r in rows if r[2] and r[1] > 0 and (kind == "ALL" or r[0] == kind)]
        if lat:
            print(f"{kind:<24}{len(lat):>7}{percentile(lat, 50):>9.0f}{percentile(lat, 95):>9.0f}"
                  f"{percentile(lat, 99):>9.0f}{max(lat):>9.0f}")
    if outcomes:
        done = [t for o, t in outcomes if o == "done"]
        print(f"training runs: {len(outcomes)} ({len(done)} finished"
              + (f", median {statistics.median(done):.1f} s start to result" if done else "") + "); "
              + ", ".join(sorted({o for o, _ in outcomes if o != 'done'})))
        print(f"throughput: {len(done) / elapsed * 60:.1f} training jobs per minute")
    print(f"server RSS: start {mem_start[0]:.0f} MB in {mem_start[1]} processes, "
          f"end {mem_end[0]:.0f} MB in {mem_end[1]} processes; gunicorn master + workers "
          f"{mem_start[2]:.0f} -> {mem_end[2]:.0f} MB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (max 600)")
    parser.add_argument("--workers", type=int, default=CLASS_WORKERS,
                        help=f"gunicorn workers (default {CLASS_WORKERS}, as serve)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--backend", choices=["diskcache", "celery"], default="diskcache")
    parser.add_argument("--max-requests", type=int, default=0, help="gunicorn worker recycling (0: never, as serve)")
    parser.add_argument("--view-seconds", type=float, default=CLASS_VIEW_SECONDS,
                        help=f"what one view request may compute (default {CLASS_VIEW_SECONDS:g}, as serve)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the servers, set last (to compare settings, e.g. "
                             "BPTTLAB_SHARED_RESULTS=0); repeatable")
    parser.add_argument("--job-workers", type=int, default=2, help="Celery worker processes (--backend celery)")
    parser.add_argument("--no-training", dest="training", action="store_false", help="no training students")
    parser.add_argument("--app", default="visualizer.app:server",
                        help="WSGI app (default: the whole app with its training panel)")
    parser.add_argument("--log", default=None, help="keep gunicorn's log in this file")
    parser.add_argument("--url", default=None, help="use a server already running on 127.0.0.1 instead")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="steps of each training run (default: the page's)")
    parser.add_argument("--kill-worker-at", type=float, default=None, metavar="SECONDS",
                        help="SIGKILL one gunicorn worker this many seconds into the run")
    parser.add_argument("--no-retry", dest="retry", action="store_false",
                        help="students do not resend a request whose connection was lost (the page does)")
    parser.add_argument("--cluster-workers", type=int, default=0, metavar="K",
                        help="instead: two web servers (--workers each) behind a round-robin balancer, "
                             "K Celery workers (-c --job-workers each), one Redis (benchmarks/local_cluster.py)")
    args = parser.parse_args(argv)
    if any("=" not in kv for kv in args.env):
        parser.error("--env takes NAME=VALUE")
    args.users = max(1, min(args.users, 200))
    args.duration = max(5.0, min(args.duration, 600.0))
    folder = Path(tempfile.mkdtemp(prefix="bpttlab-load-"))
    procs = []
    try:
        if args.url:
            host = args.url.split("//", 1)[-1].split(":")[0].split("/")[0]
            if host not in ("127.0.0.1", "localhost", "::1"):
                parser.error("--url must be a loopback address")
            base = args.url.rstrip("/")
            pids = []
        elif args.cluster_workers:
            serve = serve_args(["--view-seconds", str(args.view_seconds)])
            cluster = LocalCluster(folder, web=2, workers=args.cluster_workers, web_workers=args.workers,
                                   concurrency=args.job_workers,
                                   env={k: v for k, v in server_env(serve).items() if k not in SERVER_ENV}).start()
            procs, base = cluster.procs, cluster.base
            pids = [p.pid for p in procs if p.name.startswith(("web", "worker"))]
            args.backend = f"Celery, {args.cluster_workers} workers x {args.job_workers}, 2 web servers, balancer"
        else:
            procs, base = start_servers(args, folder)
            pids = [p.pid for p in procs if p.args[0] != shutil.which("redis-server")]
        warm = DashSession(base, requests.Session()).load()  # imports, first compute: not the class's cost
        warm.http.close()
        time.sleep(1)
        mem_start = rss_mb(pids)
        cpu_start, load_start = cpu_seconds(pids), os.getloadavg()[0]
        recorder, outcomes = Recorder(), []
        t0, client_start = time.monotonic(), time.process_time()
        stop_at = t0 + args.duration
        threads = [threading.Thread(target=student, args=(base, args.duration, i, recorder, stop_at, args.retry),
                                    daemon=True) for i in range(args.users)]
        if args.training:
            threads += [
                threading.Thread(target=trainer, args=(base, 10_000 + i, recorder, stop_at, outcomes, args.retry,
                                                       args.train_steps), daemon=True)
                for i in range(args.users // 5)
            ]
        if args.kill_worker_at is not None:
            threading.Thread(target=kill_a_worker, args=(pids, t0 + args.kill_worker_at, args), daemon=True).start()
        for t in threads:
            t.start()
        samples = []  # gunicorn master + workers RSS every 10 s: caches fill, then it levels off
        while time.monotonic() < stop_at and pids:
            time.sleep(min(10.0, max(0.0, stop_at - time.monotonic())))
            samples.append(round(rss_mb(pids)[2]))
        for t in threads:
            t.join(max(0.0, stop_at - time.monotonic()) + 60)
        elapsed = time.monotonic() - t0
        mem_end = rss_mb(pids)
        report(recorder, outcomes, mem_start, mem_end, args, elapsed)
        if samples:
            print("gunicorn RSS every 10 s (MB):", " ".join(map(str, samples)))
        if pids:
            cpu_all, cpu_web = (now - start for now, start in zip(cpu_seconds(pids), cpu_start, strict=True))
            print(f"server CPU: {cpu_all / elapsed:.2f} cores busy on average (of {os.cpu_count()}), "
                  f"{cpu_web / elapsed:.2f} of them answering requests (the rest: training jobs), that is "
                  f"{1000 * cpu_web / max(recorder.changes, 1):.0f} ms per control change ({recorder.changes}); "
                  f"machine load average {load_start:.1f} before, "
                  f"{os.getloadavg()[0]:.1f} after")
        print(f"load generator CPU: {(time.process_time() - client_start) / elapsed:.2f} cores (the simulated "
              "students run on the same machine; in a class their browsers do this work)")
        return 0
    finally:
        stop_servers(procs)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
