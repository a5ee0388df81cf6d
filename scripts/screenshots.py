"""Regenerate the README screenshots from the running app: ``python scripts/screenshots.py``.

Starts the app on a free local port (or uses ``--url``), opens each scene in headless Chromium
(Debian's chromium + chromedriver, as the browser tests do), waits until every plot has drawn and
saves PNGs into ``docs/screenshots/``. Also fails if the browser console shows an error.
"""
from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"

# name -> (query, window width, minimum height); the page is captured whole
SCENES = {
    "overview": ("?arch=rnn,lstm,gru&seq_len=100&hidden=32&task=adding&view=heatmap", 1600, 1000),
    "jacobian": ("?arch=rnn,lstm,gru&seq_len=100&hidden=32&init=orthogonal&scale=1&task=adding&view=jacobian",
                 1600, 1000),
    "exploding": ("?arch=rnn,rnn-relu,lstm,gru&seq_len=1200&hidden=32&init=identity&scale=2&task=adding&view=gates",
                  1600, 1000),
    "spectra": ("?arch=rnn,lstm,gru&seq_len=100&hidden=32&init=orthogonal&scale=1&task=adding&view=spectra",
                1600, 1000),
    "connectivity": ("?arch=rnn,lstm,gru&seq_len=60&hidden=32&task=sine&loss_on=all&view=connectivity", 1600, 1000),
    "cost": ("?preset=cost", 1600, 1400),
}

WAIT_JS = """
const graphs = document.querySelectorAll('.js-plotly-plot');
const loading = document.querySelector('[data-dash-is-loading="true"]');
return graphs.length >= 2 && !loading && Array.from(graphs).every(g => g._fullData !== undefined);
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_app() -> str:
    """Run the app in a daemon thread; return its URL."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    sys.path.insert(0, str(ROOT))
    from visualizer.app import create_app

    port = _free_port()
    server = make_server("127.0.0.1", port, create_app().server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}/"


def _driver(width, height):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    return webdriver.Chrome(options=opts)


def shoot(url: str, names, out: Path) -> list[str]:
    """Save one PNG per scene; return the console errors seen."""
    out.mkdir(parents=True, exist_ok=True)
    errors = []
    for name in names:
        query, width, height = SCENES[name]
        driver = _driver(width, height)
        try:
            driver.get(url.rstrip("/") + "/" + query)
            deadline = time.time() + 120
            while time.time() < deadline and not driver.execute_script(WAIT_JS):
                time.sleep(0.2)
            full = max(height, driver.execute_script("return document.documentElement.scrollHeight"))
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": full, "deviceScaleFactor": 1, "mobile": False})
            time.sleep(1.0)  # plots resize to the new viewport
            driver.save_screenshot(str(out / f"{name}.png"))
            errors += [f"{name}: {e['message']}" for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        finally:
            driver.quit()
        print(f"saved {out / (name + '.png')}")
    return errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="use an app already running at this URL")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("scenes", nargs="*", default=list(SCENES), help=f"any of {', '.join(SCENES)}")
    args = parser.parse_args(argv)
    url = args.url or _start_app()
    errors = shoot(url, args.scenes, args.out)
    for e in errors:
        print("console error:", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
