"""Live training: how many updates a second does the training panel show?

Two measurements at the app's default size (adding problem, T=100, H=32, batch 8, one layer,
RNN + LSTM + GRU, Adam):

1. engine: :func:`visualizer.training.run_job` as the background job runs it, with a progress
   callback that only timestamps: training steps per second (one step = all three
   architectures), progress payloads written per second and their size, checkpoint size.
2. browser (``--browser``): the training panel served by Dash with the process's background
   manager (diskcache), driven by headless chromium: after a click on Train, every re-render
   of the live gradient-flow graph (Plotly's ``plotly_afterplot`` event) is counted in the
   page; reported as updates per second over the run (median of 1-second windows and overall).

    python benchmarks/bench_training_live.py [--steps 150] [--browser]
"""
import argparse
import json
import socket
import statistics
import time

from visualizer import ids, training
from visualizer.urlstate import Params


def engine(steps: int) -> dict:
    """Steps/s, progress writes/s and payload sizes of one run_job at the default size."""
    stamps, sizes = [], []

    def progress(payload):
        stamps.append(time.perf_counter())
        sizes.append(len(json.dumps(payload)))

    t0 = time.perf_counter()
    result = training.run_job(progress, Params(), steps, steps)
    elapsed = time.perf_counter() - t0
    ckpt = result["checkpoint"]["data"] if result["checkpoint"] else ""
    return {"steps_per_s": steps / elapsed, "writes_per_s": len(stamps) / elapsed,
            "payload_kb": statistics.median(sizes) / 1024 if sizes else 0, "checkpoint_kb": len(ckpt) / 1024,
            "result_kb": len(json.dumps(result)) / 1024, "seconds": elapsed}


COUNTER_JS = """
window.__updates = [];
const gd = document.querySelector('#%s .js-plotly-plot');
gd.on('plotly_afterplot', () => window.__updates.push(performance.now()));
return true;
"""


def browser(steps: int) -> dict:
    """Re-renders per second of the live graph during one run in headless chromium."""
    from dash import Dash, dcc, html
    from dash.testing.application_runners import ThreadedRunner
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    from visualizer import jobs, limits, training_ui
    from visualizer.app import ASSETS

    app = Dash(__name__, background_callback_manager=jobs.background_manager(), assets_folder=str(ASSETS),
               update_title=None)
    app.layout = html.Div([limits.user_store(), dcc.Store(id="params-store", data=Params().to_dict()),
                           training_ui.panel(steps)])
    limits.register_identity(app)
    training_ui.register(app)
    with socket.socket() as sock:  # a free port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runner = ThreadedRunner()
    runner.start(app, port=port)
    options = Options()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        deadline = time.time() + 30
        plot_ready = f"return !!document.querySelector('#{ids.TRAIN_FLOW_GRAPH} .js-plotly-plot')"
        while not driver.execute_script(plot_ready):
            if time.time() > deadline:
                raise RuntimeError("the page did not load")
            time.sleep(0.1)
        time.sleep(1.0)
        driver.execute_script(COUNTER_JS % ids.TRAIN_FLOW_GRAPH)
        driver.find_element("id", ids.TRAIN_PLAY).click()
        t0 = time.time()
        while "(done)" not in driver.find_element("id", ids.TRAIN_STATUS_LINE).text:
            if time.time() - t0 > 600:
                raise RuntimeError("the run did not finish")
            time.sleep(0.2)
        stamps = driver.execute_script("return window.__updates;")
    finally:
        driver.quit()
        runner.stop()
    if len(stamps) < 2:
        return {"updates": len(stamps)}
    start, end = stamps[0], stamps[-1]
    windows = [sum(1 for s in stamps if start + 1000 * i <= s < start + 1000 * (i + 1))
               for i in range(int((end - start) // 1000))]
    return {"updates": len(stamps), "seconds": (end - start) / 1000,
            "per_s_overall": (len(stamps) - 1) / ((end - start) / 1000),
            "per_s_median_window": statistics.median(windows) if windows else float("nan")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--browser", action="store_true", help="also measure in headless chromium")
    args = ap.parse_args()
    e = engine(args.steps)
    print(f"engine: {e['steps_per_s']:.1f} training steps/s (RNN+LSTM+GRU, T=100, H=32, B=8), "
          f"{e['writes_per_s']:.1f} progress payloads/s of {e['payload_kb']:.1f} kB (median), "
          f"checkpoint {e['checkpoint_kb']:.0f} kB, final result {e['result_kb']:.0f} kB, {e['seconds']:.1f} s")
    if args.browser:
        b = browser(args.steps)
        print(f"browser: {b.get('per_s_overall', 0):.1f} live-graph updates/s overall, "
              f"{b.get('per_s_median_window', 0):.1f}/s median over 1-s windows "
              f"({b['updates']} updates in {b.get('seconds', 0):.1f} s)")


if __name__ == "__main__":
    main()
