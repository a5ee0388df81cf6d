"""Shared test setup: Chrome options for the dash_duo browser tests (tests/e2e), and a cache
folder of the test session's own, so job slots, background results and the signing secret never
mix with an app running on the same machine (or with a previous run's leftovers)."""
import os
import tempfile

os.environ["BPTTLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="bpttlab-test-cache-")


def pytest_setup_options():
    """Extra Chrome flags for dash[testing]'s webdriver (it already adds --no-sandbox etc.)."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.add_argument("--window-size=1400,1000")
    options.add_argument("--disable-quic")
    return options
