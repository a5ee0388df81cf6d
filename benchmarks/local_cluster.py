"""A class cluster on one machine, as processes: Redis, two web servers, two Celery workers and a
round-robin load balancer in front (what ``docs/serving.md`` describes for several machines).

Each "machine" (web server i, worker i) has its own temporary folder and home, nothing shared on
disk: only Redis, the secret and the settings are shared, as between real machines.

    python benchmarks/local_cluster.py [--port 8050] [--web 2] [--workers 2] [--web-workers 2] [-c 1]

prints the address and runs until Ctrl+C. The tests (``tests/server/test_cluster.py``) and
``benchmarks/load_cluster.py`` use :class:`LocalCluster`.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str, proc=None, log=None) -> None:
    """Poll ``check()`` until truthy, else raise naming ``what`` (with the log's tail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    tail = Path(log).read_text()[-3000:] if log and Path(log).exists() else ""
    raise RuntimeError(f"{what} did not start in {timeout} s\n{tail}")


def http_ok(url: str) -> bool:
    """True if GET ``url`` answers 200."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status == 200


class LocalCluster:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager).

    ``base`` is the balancer's URL, ``web_urls`` the web servers', ``redis_url`` the shared Redis.
    ``app`` is the module the servers and workers load (``visualizer.app``; tests use a smaller app).
    """

    def __init__(self, folder: Path | None = None, web: int = 2, workers: int = 2, web_workers: int = 2,
                 concurrency: int = 1, port: int | None = None, app: str = "visualizer.app", env: dict | None = None):
        self.folder = Path(folder or tempfile.mkdtemp(prefix="bpttlab-cluster-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.n_web, self.n_workers, self.web_workers, self.concurrency = web, workers, web_workers, concurrency
        self.port, self.app = port or free_port(), app
        self.extra_env = dict(env or {})
        self.secret = secrets.token_hex(32)
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.web_urls: list[str] = []
        self.redis_url = self.base = None

    # ------------------------------------------------------------------ processes
    def _env(self, machine: str) -> dict:
        """The environment of one "machine": its own folders; the shared Redis, secret and settings."""
        home = self.folder / machine
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BPTTLAB_")}
        env.update(HOME=str(home), TMPDIR=str(home / "tmp"), BPTTLAB_CACHE_DIR=str(home / "cache"),
                   BPTTLAB_REDIS_URL=self.redis_url, BPTTLAB_SECRET_KEY=self.secret, BPTTLAB_APP=self.app,
                   PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        env.update(self.extra_env)
        return env

    def _spawn(self, args, name: str, env: dict) -> subprocess.Popen:
        log = self.folder / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        proc.log, proc.name = log, name
        self.procs.append(proc)
        return proc

    def start_redis(self) -> None:
        port = free_port()
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        proc = self._spawn([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--dir", str(self.folder)], "redis", dict(os.environ))

        def pong():
            with socket.create_connection(("127.0.0.1", port), 1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        wait_for(pong, 20, "redis-server", proc, proc.log)

    def start_web(self, i: int) -> str:
        """``bpttlab serve`` of machine ``i`` (the documented command); its URL."""
        port = free_port()
        wsgi = "visualizer.app:server" if self.app == "visualizer.app" else f"{self.app}:server"
        args = [sys.executable, "-m", "visualizer.serve", "--workers", str(self.web_workers), "--port", str(port)]
        if wsgi != "visualizer.app:server":  # a test app: the same options, another WSGI module
            from visualizer import serve

            opts = serve.parse_args(["--workers", str(self.web_workers), "--port", str(port)])
            args = [sys.executable, "-m", "gunicorn", *serve.gunicorn_args(opts)[:-1], wsgi]
        proc = self._spawn(args, f"web{i}", self._env(f"machine{i}"))
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(url + "/"), 90, f"web server {i}", proc, proc.log)
        return url

    def start_worker(self, i: int) -> subprocess.Popen:
        """The Celery worker of machine ``i``, ready and announced in Redis."""
        proc = self._spawn([sys.executable, "-m", "celery", "-A", "visualizer.celery_worker", "worker", "-c",
                            str(self.concurrency), "-P", "prefork", "-l", "info", "--without-gossip",
                            "--without-mingle", "-n", f"worker{i}-{secrets.token_hex(3)}@%h"],
                           f"worker{i}", self._env(f"machine{i}"))
        wait_for(lambda: "ready." in proc.log.read_text(), 90, f"worker {i}", proc, proc.log)
        self.workers.append(proc)
        return proc

    def start_balancer(self) -> None:
        proc = self._spawn([sys.executable, str(ROOT / "benchmarks" / "round_robin.py"), "--port", str(self.port),
                            *self.web_urls], "balancer", dict(os.environ))
        self.base = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: http_ok(self.base + "/"), 30, "load balancer", proc, proc.log)

    def start(self) -> LocalCluster:
        self.start_redis()
        for i in range(self.n_workers):
            self.start_worker(i)
        self.web_urls = [self.start_web(i) for i in range(self.n_web)]
        self.start_balancer()
        return self

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL a process group of this cluster (a machine that dies)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.kill(proc)

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8050, help="the load balancer's port")
    parser.add_argument("--web", type=int, default=2, help="web servers (machines)")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (machines)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers per web server")
    parser.add_argument("-c", "--concurrency", type=int, default=1, help="jobs each Celery worker runs at once")
    args = parser.parse_args(argv)
    with LocalCluster(web=args.web, workers=args.workers, web_workers=args.web_workers,
                      concurrency=args.concurrency, port=args.port) as cluster:
        print(f"open {cluster.base}/ ({args.web} web servers: {', '.join(cluster.web_urls)}; {args.workers} workers; "
              f"Redis {cluster.redis_url}; logs in {cluster.folder}). Ctrl+C stops everything.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while all(p.poll() is None for p in cluster.procs):
                time.sleep(1)


if __name__ == "__main__":
    main()
