"""In-browser latency of the app: from a control change to the re-rendered plots.

Starts ``python -m visualizer`` on a free port, opens it in headless Chromium (Debian's chromium
+ chromedriver) and measures *inside the page*: the clock starts at the control's ``blur`` (the
moment a number box commits its value) and stops when both graphs (view 1 and the open tab) have
fired ``plotly_afterplot`` with new data. Every change uses a value not seen before, so nothing
comes from the app's cache unless the scenario says so.

    python benchmarks/bench_app_latency.py            # default view + T=1000, H=256
    python benchmarks/bench_app_latency.py --tabs     # also time every tab once at the default size
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ("grad-norm-graph", "view-graph")

ARM_JS = """
const ids = arguments[0], boxSel = arguments[1];
const box = document.querySelector(boxSel);
window.__bench = {start: null, done: {}, before: {}};
for (const id of ids) {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  window.__bench.before[id] = gd.data;
  if (!gd.__benchHooked) {
    gd.__benchHooked = true;
    gd.on('plotly_afterplot', () => {
      const b = window.__bench;
      if (b.start !== null && !(id in b.done) && gd.data !== b.before[id]) { b.done[id] = performance.now(); }
    });
  }
}
if (!box.__benchHooked) {
  box.__benchHooked = true;
  box.addEventListener('blur', () => { window.__bench.start = performance.now(); }, true);
}
"""

WAIT_JS = """
const ids = arguments[0], done = arguments[arguments.length - 1];
const t0 = performance.now();
const tick = () => {
  const b = window.__bench;
  if (b.start !== null && ids.every(id => id in b.done)) {
    done(Math.max(...ids.map(id => b.done[id])) - b.start);
  } else if (performance.now() - t0 > 300000) { done(-1); } else { setTimeout(tick, 2); }
};
tick();
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app():
    """(process, url) of the app started by its CLI."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "visualizer", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the app did not start")


def driver():
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,1100"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    d = webdriver.Chrome(options=opts)
    d.set_script_timeout(330)
    return d


def wait_ready(d, timeout=300):
    """Wait until both graphs have drawn data."""
    js = ("return arguments[0].every(id => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');"
          " return gd && gd._fullData && gd._fullData.length > 0; })")
    t0 = time.time()
    while time.time() - t0 < timeout:
        if d.execute_script(js, list(GRAPHS)):
            return
        time.sleep(0.05)
    raise RuntimeError("plots did not appear")


def change(d, box_selector, value) -> float:
    """Type ``value`` into a number box, commit it, return ms until both graphs re-rendered."""
    from selenium.webdriver.common.keys import Keys

    d.execute_script(ARM_JS, list(GRAPHS), box_selector)
    box = d.find_element("css selector", box_selector)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value))
    box.send_keys(Keys.TAB)
    return d.execute_async_script(WAIT_JS, list(GRAPHS))


def scenario(d, url, query, box, values, warmup=2):
    """Load ``url + query``, then time one change per value (after ``warmup`` untimed ones)."""
    d.get(url + query)
    wait_ready(d)
    times = []
    for i, v in enumerate(values):
        ms = change(d, box, v)
        if ms < 0:
            raise RuntimeError("timed out waiting for the plots")
        if i >= warmup:
            times.append(ms)
    return times


def report(name, times):
    times = sorted(times)
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print(f"{name:58s} median {statistics.median(times):8.1f} ms   p90 {p90:8.1f} ms   "
          f"min {times[0]:7.1f}   n={len(times)}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="timed changes per default-size scenario")
    parser.add_argument("--big", type=int, default=3, help="timed changes at T=1000, H=256 (0 to skip)")
    parser.add_argument("--tabs", action="store_true", help="also time each tab's first render")
    args = parser.parse_args(argv)
    proc, url = start_app()
    d = driver()
    seed_box = "#seed-input"
    seq_box = "#seq-len-slider input.dash-range-slider-input"
    try:
        base = "?arch=rnn,lstm,gru&seq_len=100&hidden=32&view=heatmap"
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        report("default view (T=100, H=32, 3 archs): new seed",
               scenario(d, url, base, seed_box, range(1, args.n + 3)))
        report("default view: new sequence length (100..)",
               scenario(d, url, base, seq_box, range(101, 101 + args.n + 2)))
        report("default view: seed back to a cached value",
               scenario(d, url, base, seed_box, [1, 2] * (args.n // 2 + 1)))
        if args.big:
            big = "?arch=rnn,lstm,gru&seq_len=1000&hidden=256&view=heatmap"
            report("T=1000, H=256, 3 archs (heatmap tab): new seed",
                   scenario(d, url, big, seed_box, range(1, args.big + 2), warmup=1))
        if args.tabs:
            for tab in ("jacobian", "spectra", "gates", "connectivity"):
                report(f"default view with the {tab} tab open: new seed",
                       scenario(d, url, base.replace("heatmap", tab), seed_box, range(100, 100 + 5), warmup=1))
        errors = [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"]
        print("browser console errors:", errors or "none")
    finally:
        d.quit()
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
