"""The ``bpttlab`` command: start the app on http://127.0.0.1:8050 (``--host``, ``--port``, ``--debug``).

``bpttlab serve --workers N`` serves a whole class under gunicorn instead (see :mod:`visualizer.serve`).
"""
from __future__ import annotations

import argparse
import sys

import core


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="bpttlab", description="Start the bpttlab app in your browser.",
                                     epilog="For a class: bpttlab serve --workers N (see bpttlab serve --help).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on "
                             "(default 127.0.0.1: this computer only; 0.0.0.0 serves your network)")
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    parser.add_argument("--debug", action="store_true",
                        help="Dash debug mode: dev tools and hot reload (off by default; never Werkzeug's "
                             "interactive console)")
    parser.add_argument("--version", action="version", version=f"bpttlab {core.__version__}")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Start the development server and print its URL (``serve ...``: gunicorn for a class)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:
        from .serve import main as serve_main

        return serve_main(argv[1:])
    args = parse_args(argv)
    from .app import create_app
    from .serve import warning_for

    app = create_app()
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    warning = warning_for(args.host, args.port)
    if warning and args.debug:
        warning += " With --debug, every visitor also sees the server's error tracebacks."
    if warning:
        print(warning, file=sys.stderr, flush=True)
    print(f"bpttlab {core.__version__}: open http://{shown}:{args.port}/ in your browser (Ctrl+C to stop)", flush=True)
    # Dash's dev tools (errors shown in the page, hot reload), never Werkzeug's interactive debugger:
    # its /console runs Python for whoever gets past its PIN, from wherever the port can be reached
    app.run(host=args.host, port=args.port, debug=args.debug, dev_tools_disable_version_check=True,
            use_debugger=False)
    return 0
