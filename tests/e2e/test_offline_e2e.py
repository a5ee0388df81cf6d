"""No request leaves the page: the app and its exported HTML report talk to no other host.

Chrome's DevTools performance log records every network event of the page (documents, scripts,
XHR/fetch, images, websockets, beacons); the test drives the app, every modebar button, a tab, a
preset and the HTML export, opens the report from disk, and fails on any request to a host other
than the app's own.
"""
import json
import os
import time
from urllib.parse import urlparse

import pytest
from dash.testing.wait import until
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from visualizer import ids, presets
from visualizer.app import create_app

pytestmark = pytest.mark.e2e

MODEBAR_JS = """
return Array.from(document.querySelectorAll('.modebar-btn'))
    .map(b => (b.getAttribute('data-attr') || '') + '|' + (b.getAttribute('data-val') || '') + '|'
              + (b.getAttribute('data-title') || ''));
"""
READY_JS = """
const graphs = document.querySelectorAll('.js-plotly-plot');
return graphs.length >= arguments[0] && Array.from(graphs).every(g => g._fullLayout !== undefined)
    && !document.querySelector('[data-dash-is-loading="true"]');
"""


@pytest.fixture
def logged_browser(tmp_path):
    """Headless Chromium recording its DevTools network events; downloads go to ``tmp_path``."""
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--disable-quic"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "SEVERE"})
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    yield driver
    driver.quit()


def requested_urls(driver) -> list[str]:
    """Every URL the page asked for since the last call (requests, websockets, navigations)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            urls.append(params["request"]["url"])
        elif message["method"] in ("Network.webSocketCreated", "Page.frameRequestedNavigation"):
            urls.append(params.get("url", ""))
    return urls


def foreign(urls, own_host) -> list[str]:
    """The URLs that go to another host than ``own_host`` (data:, blob: and file: stay local)."""
    bad = []
    for url in urls:
        parts = urlparse(url)
        if parts.scheme in ("data", "blob", "file", "about", "chrome-error") or parts.netloc == own_host:
            continue
        bad.append(url)
    return bad


def hover_and_click_modebars(driver):
    """Show each graph's modebar and click every button on it (PNG download, zoom, pan, reset)."""
    for graph in driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", graph)
        ActionChains(driver).move_to_element(graph).perform()
        for button in graph.find_elements(By.CSS_SELECTOR, ".modebar-btn"):
            try:
                ActionChains(driver).move_to_element(graph).click(button).perform()
            except Exception:  # a button hidden by the one before it (e.g. a reset after zoom)
                continue


def test_no_request_leaves_the_page_from_the_app_or_its_report(dash_thread_server, logged_browser, tmp_path):
    dash_thread_server(create_app())
    url = dash_thread_server.url
    own = urlparse(url).netloc
    driver = logged_browser
    driver.get(url + "/?arch=rnn,lstm,gru&seq_len=30&hidden=8&batch=2")
    until(lambda: driver.execute_script(READY_JS, 5), 60)
    buttons = driver.execute_script(MODEBAR_JS)
    assert buttons, "no modebar rendered"
    assert not [b for b in buttons if "sendDataToCloud" in b or "Cloud" in b or "Share" in b or "Studio" in b]
    hover_and_click_modebars(driver)
    driver.find_element(By.CSS_SELECTOR, f"#{ids.VIEW} .tab:nth-child(2)").click()  # another tab
    driver.find_element(By.CSS_SELECTOR, f"#{ids.PRESET_DROPDOWN}").click()  # and a preset
    title = presets.PRESETS["vanishing"].title
    until(lambda: driver.find_elements(By.CSS_SELECTOR, "[role=option]"), 10)
    next(o for o in driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == title).click()
    until(lambda: driver.execute_script(READY_JS, 5), 60)
    driver.find_element(By.CSS_SELECTOR, f"#{ids.EXPORT_HTML}").click()
    until(lambda: [n for n in os.listdir(tmp_path) if n.endswith(".html")], 60)
    time.sleep(0.5)
    report = next(tmp_path / n for n in os.listdir(tmp_path) if n.endswith(".html"))
    app_urls = requested_urls(driver)
    assert any(urlparse(u).netloc == own for u in app_urls)  # the log did record the app's requests
    assert foreign(app_urls, own) == []

    driver.get(report.as_uri())  # the report, opened from disk
    until(lambda: driver.execute_script(READY_JS, 2), 60)
    buttons = driver.execute_script(MODEBAR_JS)
    assert buttons and not [b for b in buttons if "sendDataToCloud" in b or "Cloud" in b or "Share" in b]
    hover_and_click_modebars(driver)
    time.sleep(0.5)
    report_urls = requested_urls(driver)
    assert any(u.startswith("file:") for u in report_urls)
    assert foreign(report_urls, "") == []  # from a file, nothing goes to any host at all
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
