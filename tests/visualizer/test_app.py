import subprocess
import sys

import pytest

from visualizer import app as app_module
from visualizer import cli, ids


def test_server_is_the_flask_app():
    assert app_module.server is app_module.app.server


def test_every_app_gets_every_callback():
    a, b = app_module.create_app(), app_module.create_app()
    for app in (a, b):
        outputs = " ".join(app.callback_map)
        assert ids.GRAD_GRAPH in outputs and ids.VIEW_GRAPH in outputs and ids.URL in outputs


def test_page_assets_and_layout_are_served_locally():
    client = app_module.create_app().server.test_client()
    page = client.get("/?seq_len=20")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "style.css" in html and "https://" not in html.split("_dash-config")[0]
    assert '"serve_locally":true' in html
    assert client.get("/_dash-layout").status_code == 200
    css = next(line for line in html.splitlines() if "style.css" in line)
    href = css.split('href="')[1].split('"')[0]
    response = client.get(href)
    assert response.status_code == 200
    response.close()


def test_layout_has_every_control():
    layout = app_module.create_app().layout()
    found = set()

    def walk(node):
        if hasattr(node, "id") and isinstance(getattr(node, "id", None), str):
            found.add(node.id)
        children = getattr(node, "children", None)
        for child in children if isinstance(children, (list, tuple)) else [children]:
            if child is not None and not isinstance(child, str):
                walk(child)
    walk(layout)
    assert set(ids.CONTROL_IDS.values()) <= found


def test_cli_defaults():
    args = cli.parse_args([])
    assert (args.host, args.port, args.debug) == ("127.0.0.1", 8050, False)
    args = cli.parse_args(["--host", "0.0.0.0", "--port", "9000", "--debug"])
    assert (args.host, args.port, args.debug) == ("0.0.0.0", 9000, True)


def test_cli_prints_the_url_and_runs(monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr("dash.Dash.run", lambda self, **kw: seen.update(kw))
    assert cli.main(["--port", "8123"]) == 0
    out = capsys.readouterr()
    assert "http://127.0.0.1:8123/" in out.out and out.err == ""  # this computer only: no warning
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123 and seen["debug"] is False
    assert seen["dev_tools_disable_version_check"] is True  # no call home, even with --debug
    assert seen["use_debugger"] is False


def test_cli_debug_never_serves_werkzeugs_console_and_warns_beyond_this_computer(monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr("dash.Dash.run", lambda self, **kw: seen.update(kw))
    assert cli.main(["--host", "0.0.0.0", "--debug"]) == 0
    assert seen["debug"] is True and seen["use_debugger"] is False
    err = capsys.readouterr().err
    assert "anyone who can reach this computer" in err and "tracebacks" in err


@pytest.mark.parametrize("argv", [[sys.executable, "-m", "visualizer", "--help"], ["bpttlab", "--help"]])
def test_entry_points_start(argv):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--port" in out.stdout
