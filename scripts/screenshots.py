"""Screenshots of the running app in headless Chromium (Debian's chromium + chromedriver).

``python scripts/screenshots.py`` regenerates the README screenshots in ``docs/screenshots/``.
``python scripts/screenshots.py --matrix --out DIR`` captures every tab after every preset, in
normal and presentation mode, at 1600x1000 and at a projector's 1280x720 (one page per size and
mode, driven like a user: preset link, then each tab), for a person to look through before a
visual change is merged. The app starts on a free local port (or ``--url``); the script fails if
the browser console shows an error or a warning.
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
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
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
            errors += _console(driver, name)
        finally:
            driver.quit()
        print(f"saved {out / (name + '.png')}")
    return errors


MATRIX_SIZES = ((1600, 1000), (1280, 720))
TABS_JS = "return Array.from(document.querySelectorAll('#view-tabs .tab')).map(t => t.textContent)"
CARD_BOTTOM_JS = """
const card = document.querySelector('#view-tabs').closest('.card');
const r = card.getBoundingClientRect();
return Math.ceil(r.bottom + window.scrollY + 8);
"""


def _console(driver, label) -> list[str]:
    """Console errors and warnings since the last call, labelled."""
    return [f"{label}: {e['level']} {e['message']}" for e in driver.get_log("browser")
            if e["level"] in ("SEVERE", "WARNING")]


def _capture_to(driver, path: Path, width: int, bottom: int) -> None:
    """Save the page from its top to ``bottom`` px (beyond the window if need be) as a PNG."""
    import base64

    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": bottom, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


def shoot_matrix(url: str, out: Path, preset_keys=None) -> list[str]:
    """Every tab x every preset x (normal, presentation) x MATRIX_SIZES into ``out``, named
    ``<preset>-<tab>-<mode>-<width>x<height>.png``; return the console errors and warnings."""
    from visualizer.presets import PRESETS

    out.mkdir(parents=True, exist_ok=True)
    errors = []
    for width, height in MATRIX_SIZES:
        for mode in ("normal", "present"):
            driver = _driver(width, height)
            try:
                for key in preset_keys or list(PRESETS):
                    query = f"?preset={key}" + ("&present=1" if mode == "present" else "")
                    driver.get(url.rstrip("/") + "/" + query)
                    _wait(driver)
                    tabs = driver.execute_script(TABS_JS)
                    for i, tab in enumerate(tabs):
                        driver.find_elements("css selector", "#view-tabs .tab")[i].click()
                        _wait(driver)
                        name = f"{key}-{tab.lower()}-{mode}-{width}x{height}.png"
                        _capture_to(driver, out / name, width, driver.execute_script(CARD_BOTTOM_JS))
                        errors += _console(driver, name)
                    print(f"saved {key} ({mode}, {width}x{height}): {len(tabs)} tabs")
            finally:
                driver.quit()
    return errors


def _wait(driver, timeout=120) -> None:
    """Until every plot has drawn and no callback is running (and plotly has re-laid out)."""
    time.sleep(0.3)
    deadline = time.time() + timeout
    while time.time() < deadline and not driver.execute_script(WAIT_JS):
        time.sleep(0.2)
    time.sleep(0.6)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="use an app already running at this URL")
    parser.add_argument("--out", type=Path, default=None, help=f"folder for the PNGs (default {OUT}; "
                                                                "with --matrix a new temporary folder)")
    parser.add_argument("--matrix", action="store_true",
                        help="every tab x every preset x normal/presentation x 1600x1000/1280x720")
    parser.add_argument("scenes", nargs="*", help=f"README scenes: any of {', '.join(SCENES)} (default all); "
                                                  "with --matrix: preset keys (default all)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    url = args.url or _start_app()
    if args.matrix:
        import tempfile

        out = args.out or Path(tempfile.mkdtemp(prefix="bpttlab-screens-"))
        errors = shoot_matrix(url, out, args.scenes or None)
        print(f"screenshots in {out}")
    else:
        errors = shoot(url, args.scenes or list(SCENES), args.out or OUT)
    for e in errors:
        print("console error:", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
