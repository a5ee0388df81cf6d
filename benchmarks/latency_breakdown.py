"""Where the time of one control change goes: page -> request -> server -> response -> Plotly.

A diagnostic companion of ``bench_app_latency.py`` (same page, same clock start at the control's
blur). For each change it prints every ``_dash-update-component`` request (sent, headers, body,
size), every ``Plotly.react`` call (start, synchronous return, done) in page time, and the server's
time per request; then the medians of: ``pre`` blur -> request sent, ``srv`` request -> response
headers, ``post`` headers -> first Plotly.react, ``r1``/``r2`` the two Plotly.react calls, ``total``.

    python benchmarks/latency_breakdown.py [box-selector] [query] [first value]     (N=8 changes)
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_app_latency as B  # noqa: E402 - found through the sys.path entry above


def serve(port, logpath):
    """Run the app with per-request server timing appended to ``logpath`` (JSON lines)."""
    from flask import g, request

    from visualizer.app import create_app

    app = create_app()
    lock = threading.Lock()

    @app.server.before_request
    def _t0():
        g.t0 = time.perf_counter()

    @app.server.after_request
    def _t1(resp):
        if request.path.endswith("_dash-update-component"):
            body = request.get_json(silent=True) or {}
            rec = dict(out=body.get("output", "")[:80], ms=(time.perf_counter() - g.t0) * 1e3,
                       bytes=resp.calculate_content_length())
            with lock, open(logpath, "a") as f:
                f.write(json.dumps(rec) + "\n")
        return resp

    app.run(host="127.0.0.1", port=port, debug=False)


HOOK_JS = r"""
if (!window.__probe) {
  window.__probe = {events: []};
  const P = window.__probe;
  const ofetch = window.fetch;
  window.fetch = function(url, opts) {
    const t0 = performance.now();
    let out = '';
    try { out = JSON.parse(opts.body).output.slice(0, 60); } catch (e) {}
    return ofetch.apply(this, arguments).then(r => {
      const t1 = performance.now();
      const c = r.clone();
      c.text().then(txt => P.events.push({kind: 'fetch', out, t0, t1, t2: performance.now(), bytes: txt.length}));
      return r;
    });
  };
  const oreact = window.Plotly.react;
  window.Plotly.react = function(gd) {
    const id = gd.parentElement && gd.parentElement.id || gd.id;
    const t0 = performance.now();
    const res = oreact.apply(this, arguments);
    const t1 = performance.now();
    Promise.resolve(res).then(() => P.events.push({kind: 'react', out: id, t0, t1, t2: performance.now()}));
    return res;
  };
  const onew = window.Plotly.newPlot;
  window.Plotly.newPlot = function(gd) {
    const t0 = performance.now();
    const res = onew.apply(this, arguments);
    Promise.resolve(res).then(() => P.events.push({kind: 'newPlot', out: gd.id, t0, t2: performance.now()}));
    return res;
  };
}
window.__probe.events = [];
"""

def main():
    port = B._free_port()
    log = os.path.join(tempfile.gettempdir(), f"bpttlab-latency-{port}.jsonl")
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), log], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    d = B.driver()
    box_sel = sys.argv[1] if len(sys.argv) > 1 else "#seed-input"
    query = sys.argv[2] if len(sys.argv) > 2 else "?arch=rnn,lstm,gru&seq_len=100&hidden=32&view=heatmap"
    values = list(range(int(sys.argv[3]) if len(sys.argv) > 3 else 1, 200))
    n = int(os.environ.get("N", "8"))
    try:
        d.get(url + query)
        B.wait_ready(d)
        time.sleep(1)
        css = os.environ.get("CSS")
        if css:
            d.execute_script("const s = document.createElement('style'); s.textContent = arguments[0]; "
                             "document.head.appendChild(s);", css)
        summary = []
        for i in range(n):
            d.execute_script(HOOK_JS)
            Path(log).write_text("")
            total = B.change(d, box_sel, values[i])
            time.sleep(0.4)
            start = d.execute_script("return window.__bench.start")
            ev = d.execute_script("return window.__probe.events")
            srv = [json.loads(line) for line in Path(log).read_text().splitlines()]
            print(f"--- change {i}: total {total:.1f} ms")
            summary.append(total)
            fe = [e for e in ev if e['kind'] == 'fetch' and 'grad' in e['out']]
            re_ = sorted([e for e in ev if e['kind'] == 'react'], key=lambda e: e['t0'])
            if fe and re_:
                f = fe[0]
                summary.append(dict(pre=round(f['t0'] - start), srv=round(f['t1'] - f['t0']),
                                    post=round(re_[0]['t0'] - f['t1']), r1=round(re_[0]['t1'] - re_[0]['t0']),
                                    r2=round(re_[-1]['t1'] - re_[-1]['t0']), total=round(total)))
            for e in sorted(ev, key=lambda e: e['t0']):
                if e['kind'] == 'fetch':
                    print(f"  fetch {e['out'][:50]:52s} sent +{e['t0']-start:6.1f}  headers +{e['t1']-start:6.1f}  "
                          f"body +{e['t2']-start:6.1f}  {e['bytes']/1024:7.1f} KiB")
                else:
                    print(f"  {e['kind']:5s} {e['out']:52s} call +{e['t0']-start:6.1f}  "
                          f"sync-ret +{e['t1']-start:6.1f}  done +{e['t2']-start:6.1f}")
            for r in srv:
                print(f"  server {r['out'][:50]:52s} {r['ms']:6.1f} ms  {r['bytes'] and r['bytes']/1024:7.1f} KiB")
        print("SUMMARY")
        for x in summary:
            if isinstance(x, dict):
                print("  ", x)
        ds = [x for x in summary if isinstance(x, dict)]
        print("MEDIANS", {k: statistics.median(x[k] for x in ds) for k in ds[0]})
    finally:
        d.quit()
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        main()
