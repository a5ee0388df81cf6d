"""``bpttlab serve``: run the app for a class under gunicorn with several worker processes.

``bpttlab serve`` (3 workers) is the same as::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MALLOC_ARENA_MAX=2 BPTTLAB_POLL_MS=300 \\
    BPTTLAB_VIEW_SECONDS=1 gunicorn --workers 3 --threads 4 --bind 127.0.0.1:8050 --timeout 120 --keep-alive 20 \\
        --limit-request-line 4094 --limit-request-fields 50 --limit-request-field_size 8190 \\
        --no-control-socket visualizer.app:server

(``python -m visualizer.serve --print-command`` prints the exact command for your options.)
Background jobs use the embedded diskcache by default; for a class set ``BPTTLAB_REDIS_URL``
(or ``--redis``) and ``BPTTLAB_SECRET_KEY`` and start a Celery worker
(``celery -A visualizer.celery_worker worker``, see :mod:`visualizer.celery_worker`). Before
gunicorn starts, the command checks what it needs and stops with a message (exit status 1) if
something is missing: gunicorn (the server extra), a private cache folder, with Redis the shared
secret and settings that agree with the other machines'. Browsers ask for a running training's progress every 300 ms
(``--poll-ms``; the single-user ``bpttlab`` asks every 50 ms). A view request computes for about
1 s at most (``--view-seconds``; 3 s for a single user): the cores are shared by the class, so the
Jacobian, gating, spectra, connectivity and cost views analyse fewer sequences or steps sooner,
and their captions say so.

The host is 127.0.0.1 (this computer only) unless you choose otherwise: ``--host 0.0.0.0``
serves every network interface, so anyone who can reach this computer can use the app (there
is no login); a warning says so. Memory is bounded by the app's fixed-size caches; workers are
not recycled unless ``--max-requests`` asks for it (under load, a recycled worker's queued
requests wait for a new worker to boot: the load test saw them time out).
"""
from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import shlex
import sys

from . import budget, cluster, jobs, storage
from .training_ui import POLL_ENV, POLL_RANGE

WSGI_APP = "visualizer.app:server"
# One BLAS thread per request thread: a class server gets its parallelism from workers and
# threads; BLAS pools on top of them oversubscribe the cores (measured: the same view 5-7 times
# slower on a busy 2-core machine). Two malloc arenas: with one per thread, freed NumPy buffers
# fragment the heap and a worker's memory keeps creeping up (measured: 800 MB and rising after
# 3 min of load, vs about 540 MB and level with this).
SERVER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
# What one request's line and headers may hold (gunicorn answers 414/431 beyond): the app's longest
# URL (every setting and display flag) is under 1,000 characters; browsers send about 20 headers.
REQUEST_LIMITS = ["--limit-request-line", "4094", "--limit-request-fields", "50", "--limit-request-field_size", "8190"]
# One worker per core plus one: each worker runs its Python one thread at a time (the GIL), so with one
# per core a core idles while its worker's threads wait for each other. Measured on 2 cores, 50 students:
# p95 0.69-0.87 s with 3 workers against 0.95-1.17 s with 2, for about 150-250 MB more memory in all.
CLASS_WORKERS = 3
CLASS_POLL_MS = 300  # training progress polls per student: ~3 a second instead of ~20 (training_ui.POLL_MS)
CLASS_VIEW_SECONDS = 1.0  # what one view request may compute on a shared server (budget.VIEW_SECONDS: 3 s alone)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options of ``bpttlab serve``."""
    parser = argparse.ArgumentParser(prog="bpttlab serve",
                                     description="Serve bpttlab to a class with gunicorn (several workers).")
    parser.add_argument("--workers", "-w", type=int, default=CLASS_WORKERS,
                        help=f"worker processes (default {CLASS_WORKERS}: one per core of a 2-core machine, plus one)")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per worker (default 4: progress polls are answered while a plot computes)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0: every network "
                             "interface, anyone who can reach this computer can use the app)")
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    parser.add_argument("--timeout", type=int, default=120,
                        help="seconds a worker may stop answering gunicorn before it is restarted (default 120); "
                             "with threads a long request does not count: the app bounds each request's work")
    parser.add_argument("--keep-alive", type=int, default=20,
                        help="seconds an idle browser connection stays open (default 20; gunicorn's own default "
                             "of 2 s makes browsers and clients race the server's close)")
    parser.add_argument("--max-requests", type=int, default=0,
                        help="recycle a worker after about this many requests (default 0: never; the app's caches "
                             "are bounded, and a recycle under load costs a worker's boot and its queued requests)")
    parser.add_argument("--redis", metavar="URL", default=None,
                        help=f"Redis URL for background jobs on Celery (sets {cluster.REDIS_ENV}; "
                             "start `celery -A visualizer.celery_worker worker` too)")
    parser.add_argument("--poll-ms", type=int, default=CLASS_POLL_MS,
                        help=f"how often a browser asks for training progress, in ms (default {CLASS_POLL_MS}; "
                             "the single-user app polls every 50 ms, a class of 30 would send 600 requests a second)")
    parser.add_argument("--view-seconds", type=float, default=CLASS_VIEW_SECONDS,
                        help=f"seconds of computation one view request may use (default {CLASS_VIEW_SECONDS:g}; "
                             "the single-user app allows 3): beyond it a view analyses fewer sequences or steps "
                             "and its caption says so; raise it for a small class on a big machine")
    parser.add_argument("--print-command", action="store_true", help="print the equivalent gunicorn command and exit")
    args = parser.parse_args(argv)
    for name in ("workers", "threads", "timeout", "keep_alive"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    if args.max_requests < 0:
        parser.error("--max-requests must be 0 or more")
    if not POLL_RANGE[0] <= args.poll_ms <= POLL_RANGE[1]:
        parser.error(f"--poll-ms must be between {POLL_RANGE[0]} and {POLL_RANGE[1]}")
    if not budget.SECONDS_RANGE[0] <= args.view_seconds <= budget.SECONDS_RANGE[1]:
        parser.error(f"--view-seconds must be between {budget.SECONDS_RANGE[0]:g} and {budget.SECONDS_RANGE[1]:g}")
    return args


def server_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment the workers get for ``args``: :data:`SERVER_ENV` (where not already set), the
    poll interval, the view budget and, with ``--redis``, the Redis URL."""
    env = dict(SERVER_ENV)
    env.update({POLL_ENV: str(args.poll_ms), budget.SECONDS_ENV: f"{args.view_seconds:g}"})
    if args.redis:
        env[cluster.REDIS_ENV] = args.redis
    return env


def bind_address(host: str, port: int) -> str:
    """gunicorn's ``--bind`` value (IPv6 addresses in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def gunicorn_args(args: argparse.Namespace) -> list[str]:
    """The gunicorn command line (without the program name) for ``args``."""
    out = ["--workers", str(args.workers), "--threads", str(args.threads),
           "--bind", bind_address(args.host, args.port), "--timeout", str(args.timeout),
           "--keep-alive", str(args.keep_alive), *REQUEST_LIMITS]
    if args.max_requests:
        out += ["--max-requests", str(args.max_requests), "--max-requests-jitter", str(max(1, args.max_requests // 10))]
    if has_control_socket():
        out.append("--no-control-socket")  # one fixed socket path per user: two servers would fight over it
    return [*out, WSGI_APP]


def has_control_socket() -> bool:
    """True if this gunicorn has a control socket (gunicorn >= 25), which we switch off."""
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:
        return False
    return any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warning_for(host: str, port: int) -> str | None:
    """The warning printed when serving beyond this computer, else None."""
    if is_loopback(host):
        return None
    where = "every network interface" if host in ("0.0.0.0", "::") else host
    return (f"WARNING: serving on {where}, port {port}: anyone who can reach this computer can use the app "
            "(there is no login). Use it only on a network you trust, e.g. your classroom's.")


MISSING_SERVER = ("bpttlab serve needs {missing}, which {verb} not installed. Install the server extra: "
                  "pip install 'bpttlab[server]' (from a clone: pip install '.[server]'); "
                  "or run the single-user app with: bpttlab")


def missing_server_packages(find_spec=importlib.util.find_spec) -> list[str]:
    """The packages ``bpttlab serve`` needs that are not installed (gunicorn; celery and redis
    when ``BPTTLAB_REDIS_URL`` is set; diskcache, psutil and multiprocess otherwise)."""
    names = ["gunicorn", *(["celery", "redis"] if cluster.redis_url() else ["diskcache", "psutil", "multiprocess"])]
    return [n for n in names if find_spec(n) is None]


def main(argv=None, exec_fn=os.execvp, find_spec=importlib.util.find_spec) -> int:
    """Print the URL (and a warning for non-loopback hosts), then replace this process with gunicorn.
    Without the server extra: a message naming what to install, and exit status 1."""
    args = parse_args(argv)
    command = [sys.executable, "-m", "gunicorn", *gunicorn_args(args)]
    if args.redis:
        os.environ[cluster.REDIS_ENV] = args.redis
    if args.print_command:
        env = server_env(args)
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        print(prefix + " " + shlex.join(["gunicorn", *gunicorn_args(args)]))
        return 0
    missing = missing_server_packages(find_spec)
    if missing:
        print(MISSING_SERVER.format(missing=", ".join(missing), verb="is" if len(missing) == 1 else "are"),
              file=sys.stderr, flush=True)
        return 1
    try:  # the private cache folder; with Redis, the shared secret and the cluster's settings
        if cluster.redis_url() is None:
            storage.shared_secret()
        note = jobs.check_cluster()
    except (storage.UnsafeStorage, cluster.ConfigMismatch) as e:
        print(f"bpttlab serve: {e}", file=sys.stderr, flush=True)
        return 1
    if note:
        print(f"bpttlab serve: {note}", file=sys.stderr, flush=True)
    warning = warning_for(args.host, args.port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    shown = f"[{shown}]" if ":" in shown else shown
    backend = f"Celery + Redis ({cluster.redis_url()})" if cluster.redis_url() else "embedded diskcache"
    print(f"bpttlab serve: {args.workers} workers x {args.threads} threads, background jobs on {backend}; "
          f"open http://{shown}:{args.port}/ (Ctrl+C to stop)", flush=True)
    for name, value in server_env(args).items():
        if name in SERVER_ENV:
            os.environ.setdefault(name, value)
        else:
            os.environ[name] = value
    exec_fn(command[0], command)
    return 0  # only reached with a test's exec_fn


if __name__ == "__main__":
    sys.exit(main())
