"""Every view at the documented maxima: seconds, peak RSS and bytes kept in caches.

The maxima are the controls' upper limits (seq_len 2000, hidden 512, layers 4, all four
architectures; the work cap then lowers batch to 1). Each view runs cold in its own process
(what one request for it costs when nothing is cached), with a time limit:

    python benchmarks/bench_maxima.py [--timeout 120] [--views jacobian,gates] [--query '?hidden=256']

Prints the validated settings, then one line per view: wall and CPU seconds (payload + figure +
caption note), peak RSS, the bytes the memo caches hold afterwards and the caption's note. On a
shared machine the CPU seconds are the steadier number.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

MAXIMA = "?arch=rnn,rnn-relu,lstm,gru&seq_len=2000&hidden=512&layers=4&batch=64"
VIEW_KEYS = ("grad_norm", "heatmap", "jacobian", "spectra", "gates", "connectivity", "cost")


def run_one(view: str, query: str) -> dict:
    """Compute ``view`` once, cold, in this process; returns the measurements."""
    from visualizer import compute, views
    from visualizer.urlstate import parse_query

    params, messages = parse_query(query)
    v = views.VIEWS[view]
    t0, c0 = time.perf_counter(), time.process_time()
    keys = [compute.run_key(params, a) for a in params.arch]
    payload = v.payload(keys)
    figure = v.figure(payload)
    note = v.note(keys)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    cached = sum(getattr(fn, "cache_bytes", lambda: 0)() for fn in vars(compute).values() if callable(fn))
    return {"view": view, "seconds": round(seconds, 2), "cpu": round(cpu, 2), "note": note, "messages": messages,
            "figure_kb": round(len(json.dumps(figure, default=str)) / 1024),
            "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "cache_mb": round(cached / 2**20, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--views", default=",".join(VIEW_KEYS))
    ap.add_argument("--query", default=MAXIMA)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(run_one(a.child, a.query)))
        return
    print(f"settings {a.query} (load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores)")
    from visualizer.urlstate import parse_query

    params, messages = parse_query(a.query)
    print(f"validated: seq_len={params.seq_len} batch={params.batch} hidden={params.hidden} layers={params.layers} "
          f"arch={','.join(params.arch)}" + (f"; {' '.join(messages)}" if messages else ""))
    for view in a.views.split(","):
        t0 = time.perf_counter()
        try:
            out = subprocess.run([sys.executable, __file__, "--child", view, "--query", a.query],
                                 capture_output=True, text=True, timeout=a.timeout, check=False)
        except subprocess.TimeoutExpired:
            print(f"{view:13s} > {a.timeout:.0f} s (stopped)")
            continue
        if out.returncode:
            print(f"{view:13s} failed after {time.perf_counter() - t0:.1f} s: {out.stderr.strip()[-300:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{view:13s} {r['seconds']:7.2f} s (CPU {r['cpu']:6.2f} s)  RSS {r['rss_mb']:5d} MB  "
              f"caches {r['cache_mb']:6.1f} MB  figure {r['figure_kb']:5d} kB  note: {r['note']}")


if __name__ == "__main__":
    main()
