"""Server CPU per page change after a student uploaded a model, against the same changes without one.

The requests are the page callback's, as the browser sends them (every Input and State of the
callback, from the app's own callback map), through Flask's test client in this process; the
upload is an LSTM (H=512, 2 layers, float32: about 12 MB, 17 MB in base64). Each change is made
once to warm the caches (results are memoized per setting), then timed: CPU seconds of this
process (all threads) per request, the mean over the rounds. Then the parts of one request.

    python benchmarks/bench_upload.py [--rounds 5]            # in this process (Flask's test client)
    python benchmarks/bench_upload.py --gunicorn 2            # over HTTP to gunicorn with 2 workers

With ``--gunicorn N`` the CPU is that of the gunicorn processes (master and workers, from
/proc), and a student's requests land on either worker as the kernel hands them out.
"""
import argparse
import base64
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import statistics
import time

import numpy as np

import core
from visualizer import callbacks, envelope, ids, weights
from visualizer.app import create_app
from visualizer.npz import decode_upload
from visualizer.urlstate import Params

PARAMS = Params(arch=("rnn", "lstm", "gru"), seq_len=50, hidden=16, batch=4)
TABS = ["heatmap", "jacobian", "spectra", "gates"]
SEEDS = [0, 1, 2, 3]


def upload_contents() -> str:
    model = core.build("lstm", input_size=2, hidden_size=512, output_size=1, num_layers=2, seed=0)
    buf = io.BytesIO()
    np.savez(buf, **{k: v.astype(np.float32) for k, v in model.state_dict().items()})
    return "data:application/octet-stream;base64," + base64.b64encode(buf.getvalue()).decode()


def page_output(app) -> str:
    return next(k for k in app.callback_map if k.startswith(f"..{ids.GRAD_GRAPH}.figure"))


def body(app, values: dict, changed: str) -> bytes:
    """The page callback's request: every input and state, ``values`` by "id.property"."""
    output = page_output(app)
    cb = app.callback_map[output]

    def items(section):
        return [{"id": x["id"], "property": x["property"], "value": values.get(f"{x['id']}.{x['property']}")}
                for x in cb[section]]
    outs = [{"id": i, "property": p} for i, p in envelope.split_output(output)]
    return json.dumps({"output": output, "outputs": outs, "inputs": items("inputs"), "state": items("state"),
                       "changedPropIds": [changed]}).encode()


def control_values(p: Params) -> dict:
    return {f"{ids.CONTROL_IDS[f]}.value": v for f, v in zip(callbacks.FIELDS, callbacks.params_to_controls(p),
                                                               strict=True)}


def upload(client, app, contents) -> dict | None:
    """Send the upload as the Upload card does; the weights store the server answers with."""
    output = next(k for k in app.callback_map if k.startswith(f"..{ids.UPLOAD_STATUS}.children"))
    cb = app.callback_map[output]
    values = {f"{ids.UPLOAD_PENDING}.data": {"contents": contents, "filename": "big.npz"}}
    items = [{"id": x["id"], "property": x["property"], "value": values.get(f"{x['id']}.{x['property']}")}
             for x in cb["inputs"]]
    outs = [{"id": i, "property": p} for i, p in envelope.split_output(output)]
    r = client.post("/_dash-update-component", data=json.dumps(
        {"output": output, "outputs": outs, "inputs": items, "changedPropIds": [f"{ids.UPLOAD_PENDING}.data"]}),
        content_type="application/json")
    assert r.status_code == 200, r.get_data()[:300]
    answer = r.get_json()["response"]
    print("upload:", answer[ids.UPLOAD_STATUS]["children"][:100])
    return answer[ids.WEIGHTS_STORE]["data"]


def changes(app, extra: dict):
    """(label, request body) of each page change: tab switches, then seed changes."""
    for tab in TABS:
        p = Params(**{**PARAMS.to_dict(), "view": tab})
        yield "tab", body(app, {**control_values(p), **extra}, f"{ids.VIEW}.value")
    for seed in SEEDS:
        p = Params(**{**PARAMS.to_dict(), "seed": seed, "view": TABS[-1]})
        yield "seed", body(app, {**control_values(p), **extra}, f"{ids.CONTROL_IDS['seed']}.value")


class Http:
    """gunicorn serving the app on a free port; ``post`` like Flask's test client; CPU from /proc."""

    def __init__(self, workers: int):
        import psutil
        import requests

        from visualizer.serve import SERVER_ENV
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, **SERVER_ENV, "BPTTLAB_CACHE_DIR": tempfile.mkdtemp(prefix="bench-upload-")}
        self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", "4",
                                      "--bind", f"127.0.0.1:{port}", "visualizer.app:server"], env=env)
        self.base, self.session = f"http://127.0.0.1:{port}", requests.Session()
        for _ in range(600):
            try:
                if self.session.get(self.base + "/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        procs = [self.ps, *self.ps.children(recursive=True)]
        return sum(sum(p.cpu_times()[:2]) for p in procs)

    def post(self, url, data, content_type):
        r = self.session.post(self.base + url, data=data, headers={"Content-Type": content_type}, timeout=120)
        r.status_code, r.get_data, r.get_json = r.status_code, (lambda: r.content), r.json
        return r

    def close(self):
        self.proc.terminate()
        self.proc.wait(30)


def timed(client, app, extra: dict, rounds: int) -> dict:
    reqs = list(changes(app, extra))
    for _ in range(2):  # warm every cache (of every worker, most likely)
        for _, b in reqs:
            r = client.post("/_dash-update-component", data=b, content_type="application/json")
            assert r.status_code == 200, r.get_data()[:300]
    clock = getattr(client, "cpu", time.process_time)
    out = {}
    for label in ("tab", "seed"):
        cpu = []
        for _ in range(rounds):
            for lab, b in reqs:
                if lab != label:
                    continue
                t0 = clock()
                r = client.post("/_dash-update-component", data=b, content_type="application/json")
                cpu.append(clock() - t0)
                assert r.status_code == 200
        out[label] = (statistics.fmean(cpu) * 1e3, len(reqs[0][1]) if label == "tab" else len(reqs[-1][1]))
    return out


def parts(app, contents: str, page_body: bytes, rounds: int) -> None:
    """CPU of the pieces of one request carrying the upload (median ms)."""
    def ms(fn):
        t = []
        for _ in range(rounds):
            t0 = time.process_time()
            fn()
            t.append(time.process_time() - t0)
        return statistics.median(t) * 1e3
    parsed = json.loads(page_body)
    print(f"  json.loads of the body ({len(page_body) / 2**20:.1f} MB)  {ms(lambda: json.loads(page_body)):7.1f} ms")
    print(f"  envelope.check                         {ms(lambda: envelope.check(parsed, app.callback_map)):7.1f} ms")
    data = decode_upload(contents)
    print(f"  base64 decoding of the upload          {ms(lambda: decode_upload(contents)):7.1f} ms")
    print(f"  SHA-256 of the file                    {ms(lambda: hashlib.sha256(data).hexdigest()):7.1f} ms")
    print(f"  weights.load_weights (memo hit)        {ms(lambda: weights.load_weights(contents)):7.1f} ms")
    print(f"  json.dumps of the body                 {ms(lambda: json.dumps(parsed)):7.1f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gunicorn", type=int, default=0, metavar="WORKERS", help="measure gunicorn over HTTP")
    args = ap.parse_args()
    app = create_app()
    client = Http(args.gunicorn) if args.gunicorn else app.server.test_client()
    contents = upload_contents()
    print(f"upload: {len(contents) * 3 / 4 / 2**20:.1f} MB file, {len(contents) / 2**20:.1f} MB base64")
    plain = timed(client, app, {}, args.rounds)
    meta = upload(client, app, contents)
    extra = {f"{ids.WEIGHTS_STORE}.data": meta,
             f"{ids.UPLOAD_PENDING}.data": {"contents": contents, "filename": "big.npz"}}
    with_upload = timed(client, app, extra, args.rounds)
    print("server CPU per page change (mean ms; request size)")
    for label in ("tab", "seed"):
        (a, na), (b, nb) = plain[label], with_upload[label]
        print(f"  {label:5s} change: without upload {a:7.1f} ms ({na / 1024:,.0f} kB)   with upload {b:7.1f} ms "
              f"({nb / 1024:,.0f} kB)   difference {b - a:+7.1f} ms")
    if args.gunicorn:
        client.close()
        return
    page_body = next(changes(app, extra))[1]
    if len(page_body) < len(contents):
        print("(a page change does not carry the upload: it sends the weights store, "
              f"{len(json.dumps(meta))} bytes)")
        return
    print("parts of one request carrying the upload:")
    parts(app, contents, page_body, args.rounds)


if __name__ == "__main__":
    main()
