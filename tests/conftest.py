"""Shared test setup: Chrome options for the dash_duo browser tests (tests/e2e)."""


def pytest_setup_options():
    """Extra Chrome flags for dash[testing]'s webdriver (it already adds --no-sandbox etc.)."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.add_argument("--window-size=1400,1000")
    options.add_argument("--disable-quic")
    return options
