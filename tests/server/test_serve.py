"""``bpttlab serve`` / ``python -m visualizer.serve``: the gunicorn command, the host warning, a real start."""
from __future__ import annotations

import shlex
import subprocess
import sys

import psutil
import pytest
import requests

from tests.server.conftest import ROOT, free_port, stop, wait_until
from visualizer import budget, cli, serve, training_ui


def test_the_documented_command_is_the_one_run():
    printed = subprocess.run([sys.executable, "-m", "visualizer.serve", "--print-command"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed.startswith("OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MALLOC_ARENA_MAX=2 "
                              "BPTTLAB_POLL_MS=300 BPTTLAB_VIEW_SECONDS=1 "
                              "gunicorn --workers 3 --threads 4 --bind 127.0.0.1:8050 ")
    assert printed.endswith(" visualizer.app:server")
    documented = " ".join(serve.__doc__.split("same as::")[1].split("(``python")[0].replace("\\", " ").split())
    assert documented == printed


def test_bpttlab_serve_is_the_cli_subcommand(capsys):
    assert cli.main(["serve", "--workers", "3", "--print-command"]) == 0
    assert "gunicorn --workers 3 " in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    assert "bpttlab serve" in capsys.readouterr().out


def test_options_reach_gunicorn():
    args = serve.parse_args(["--workers", "5", "--threads", "2", "--host", "::1", "--port", "9000",
                             "--timeout", "30", "--max-requests", "5000"])
    argv = serve.gunicorn_args(args)
    assert argv[:4] == ["--workers", "5", "--threads", "2"]
    assert "[::1]:9000" in argv and argv[argv.index("--max-requests") + 1] == "5000"
    assert "--max-requests" not in serve.gunicorn_args(serve.parse_args([]))
    assert argv[-1] == "visualizer.app:server"


@pytest.fixture(autouse=True)
def _restore_poll_env(monkeypatch):
    """serve.main sets BPTTLAB_POLL_MS and BPTTLAB_VIEW_SECONDS for the gunicorn it execs; undo that after each test."""
    monkeypatch.setenv(training_ui.POLL_ENV, "")
    monkeypatch.setenv(budget.SECONDS_ENV, "")


@pytest.mark.parametrize("bad", [["--workers", "0"], ["--port", "70000"], ["--threads", "-1"],
                                 ["--workers", "two"], ["--max-requests", "-5"], ["--poll-ms", "5"],
                                 ["--poll-ms", "9999"], ["--view-seconds", "0"], ["--view-seconds", "nan"],
                                 ["--view-seconds", "1e9"]])
def test_bad_options_are_refused(bad, capsys):
    with pytest.raises(SystemExit):
        serve.parse_args(bad)
    assert "error" in capsys.readouterr().err


def fake_exec(calls):
    return lambda prog, argv: calls.append(argv)


def test_loopback_by_default_without_warning(capsys):
    calls = []
    assert serve.main([], exec_fn=fake_exec(calls)) == 0
    out = capsys.readouterr()
    assert "WARNING" not in out.err
    assert "http://127.0.0.1:8050/" in out.out
    assert calls[0][:3] == [sys.executable, "-m", "gunicorn"] and "127.0.0.1:8050" in calls[0]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_serving_beyond_this_computer_is_explicit_and_warned(host, capsys):
    calls = []
    serve.main(["--host", host], exec_fn=fake_exec(calls))
    err = capsys.readouterr().err
    assert "WARNING" in err and "anyone who can reach this computer" in err
    assert serve.bind_address(host, 8050) in calls[0]


def test_class_polling_interval_reaches_the_app(capsys, monkeypatch):
    calls = []
    serve.main(["--poll-ms", "450"], exec_fn=fake_exec(calls))
    assert training_ui.poll_ms() == 450  # what the exec'd gunicorn's app registers
    serve.main(["--poll-ms", "450", "--print-command"])
    words = shlex.split(capsys.readouterr().out.strip().splitlines()[-1])
    assert "BPTTLAB_POLL_MS=450" in words[: words.index("gunicorn")]
    serve.main([], exec_fn=fake_exec(calls))
    assert training_ui.poll_ms() == serve.CLASS_POLL_MS


def test_class_view_budget_reaches_the_workers(capsys):
    """The workers' views compute for --view-seconds (1 s by default on a class server, 3 s alone)."""
    calls = []
    serve.main(["--view-seconds", "0.5"], exec_fn=fake_exec(calls))
    assert budget.seconds_from_env(serve.os.environ[budget.SECONDS_ENV]) == 0.5
    serve.main([], exec_fn=fake_exec(calls))
    assert budget.seconds_from_env(serve.os.environ[budget.SECONDS_ENV]) == serve.CLASS_VIEW_SECONDS == 1.0
    serve.main(["--view-seconds", "2.5", "--print-command"])
    words = shlex.split(capsys.readouterr().out.strip().splitlines()[-1])
    assert "BPTTLAB_VIEW_SECONDS=2.5" in words[: words.index("gunicorn")]


def test_a_worker_reads_its_view_budget_from_the_environment(server_env):
    """What a gunicorn worker imports: budget.VIEW_SECONDS from BPTTLAB_VIEW_SECONDS, and the plans
    shrink with it (fewer sequences for the same settings)."""
    code = ("from visualizer import budget, compute; from visualizer.urlstate import Params; "
            "k = compute.run_key(Params(seq_len=300, hidden=64, batch=16), 'gru'); "
            "print(budget.VIEW_SECONDS, budget.jacobian_plan(k)[0])")
    out = {}
    for raw in ("", "1", "0.3"):
        env = {**server_env, budget.SECONDS_ENV: raw}
        seconds, sequences = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                                            text=True, check=True).stdout.split()
        out[raw] = float(seconds), int(sequences)
    assert [s for s, _ in out.values()] == [budget.WORK_CAP_SECONDS, 1.0, 0.3]
    assert out[""][1] > out["1"][1] > out["0.3"][1] >= 1


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan", "inf", "1e9", "0.1"])
def test_a_bad_view_budget_variable_falls_back_to_the_single_user_budget(raw, caplog):
    assert budget.seconds_from_env(raw) == budget.WORK_CAP_SECONDS
    assert "BPTTLAB_VIEW_SECONDS" in caplog.text


@pytest.mark.parametrize("raw", ["", "abc", "5", "100000", "2.5"])
def test_a_bad_polling_variable_falls_back_to_the_default(raw, monkeypatch, caplog):
    monkeypatch.setenv(training_ui.POLL_ENV, raw)
    assert training_ui.poll_ms() == training_ui.POLL_MS
    assert (raw == "") or "BPTTLAB_POLL_MS" in caplog.text


def test_redis_option_is_printed_as_the_environment_variable(capsys, monkeypatch):
    monkeypatch.setenv("BPTTLAB_REDIS_URL", "")  # serve.main sets it: restored after the test
    serve.main(["--redis", "redis://127.0.0.1:6379/0", "--print-command"])
    words = shlex.split(capsys.readouterr().out.strip())
    assert "BPTTLAB_REDIS_URL=redis://127.0.0.1:6379/0" in words[: words.index("gunicorn")]


@pytest.mark.slow
def test_serve_starts_gunicorn_with_two_workers(server_env, tmp_path):
    port = free_port()
    with open(tmp_path / "serve.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "visualizer", "serve", "--workers", "2", "--port", str(port)],
                                cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(base + "/", timeout=5).status_code == 200, 60, "serve", proc,
                   tmp_path / "serve.log")
        assert "bpttlab" in requests.get(base + "/", timeout=5).text
        assert len(psutil.Process(proc.pid).children()) == 2  # exec'd into the gunicorn master
        assert "open http://127.0.0.1:" in (tmp_path / "serve.log").read_text()
        # the request limits: the app's longest URL passes, a longer line or many headers do not
        longest = longest_query()
        assert len(longest) < 1000 and requests.get(base + "/" + longest, timeout=5).status_code == 200
        assert requests.get(base + "/?x=" + "a" * 4100, timeout=5).status_code == 414
        headers = {f"X-Test-{i}": "1" for i in range(40)}
        assert requests.get(base + "/", headers=headers, timeout=5).status_code == 200
        headers = {f"X-Test-{i}": "1" for i in range(60)}
        assert requests.get(base + "/", headers=headers, timeout=5).status_code == 431
    finally:
        stop(proc)


@pytest.mark.slow
def test_the_single_user_debug_server_has_no_interactive_console(server_env, tmp_path):
    port = free_port()
    with open(tmp_path / "dev.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "visualizer", "--debug", "--port", str(port)],
                                cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(base + "/", timeout=5).status_code == 200, 60, "bpttlab --debug", proc,
                   tmp_path / "dev.log")
        console = requests.get(base + "/console", timeout=5)
        assert "Werkzeug Debugger" not in console.text and "SECRET" not in console.text
        assert "Debug mode: on" in (tmp_path / "dev.log").read_text()  # still Dash's debug mode
    finally:
        stop(proc)


def longest_query() -> str:
    """The longest query the app writes (every setting at its longest) plus every display flag."""
    from visualizer.classroom import CARDS
    from visualizer.urlstate import SPEC, to_query, validate

    params, _ = validate(dict(arch="rnn,rnn-relu,lstm,gru", seq_len=2000, hidden=512, layers=4, batch=64,
                              forget_bias=-9.876543210987, truncate=1999, clip=123.45678901234, seed=2**31 - 1,
                              lr=0.000123456789012, scale=4.9876543210987, match_params="1", steps=2000))
    flags = "".join(f"&{name}_hide=1" for name in [*SPEC, *CARDS])
    return to_query(params) + "&present=1" + flags


def test_without_the_server_extra_a_message_names_what_to_install(capsys):
    calls = []
    missing = {"gunicorn"}
    code = serve.main([], exec_fn=fake_exec(calls), find_spec=lambda name: None if name in missing else object())
    out = capsys.readouterr()
    assert code == 1 and not calls
    assert "gunicorn" in out.err and "pip install 'bpttlab[server]'" in out.err
    assert "http://" not in out.out  # no URL for a server that never starts


def test_bpttlab_serve_without_gunicorn_exits_with_the_message(server_env):
    blocked = "import sys; sys.modules['gunicorn'] = None; from visualizer.cli import main; sys.exit(main(['serve']))"
    done = subprocess.run([sys.executable, "-c", blocked], cwd=ROOT, env=server_env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "gunicorn" in done.stderr and "[server]" in done.stderr
    assert "http://" not in done.stdout and "Traceback" not in done.stderr


def test_with_redis_but_no_shared_secret_serve_refuses_before_printing_the_url(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("BPTTLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BPTTLAB_SECRET_KEY", raising=False)
    monkeypatch.setenv("BPTTLAB_REDIS_URL", "")  # serve.main sets it: restored after the test
    calls = []
    code = serve.main(["--redis", f"redis://127.0.0.1:{free_port()}/0"], exec_fn=fake_exec(calls))
    out = capsys.readouterr()
    assert code == 1 and not calls and "http://" not in out.out
    assert "BPTTLAB_SECRET_KEY is not set" in out.err and "secrets.token_hex" in out.err


def test_an_unsafe_cache_folder_stops_serve_with_the_fix(capsys, monkeypatch, tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(0o777)
    monkeypatch.setenv("BPTTLAB_CACHE_DIR", str(folder))
    monkeypatch.delenv("BPTTLAB_REDIS_URL", raising=False)
    calls = []
    assert serve.main([], exec_fn=fake_exec(calls)) == 1 and not calls
    assert "chmod 700" in capsys.readouterr().err
