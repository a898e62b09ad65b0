"""``vendiscope app``: serve the Streamlit app (bound to 127.0.0.1 unless told otherwise).

Streamlit runs ``explorer/cli/launch/streamlit_app.py``, which executes the app's ``app.py``.
The script Streamlit is handed must not sit beside a ``pages/`` folder: Streamlit would then treat the app as
an old-style multipage app and serve a deep link such as ``/explore`` by running that page file
alone, without app.py's navigation. ``app.py`` and ``pages/`` keep their places (a source checkout,
or ``vendiscope_app/`` in a built wheel).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

APP_PACKAGE = "vendiscope_app"
# what .streamlit/config.toml says for a checkout, passed explicitly so any folder works
STREAMLIT_OPTIONS = {"server.headless": "true", "server.runOnSave": "false", "server.fileWatcherType": "none",
                     "browser.gatherUsageStats": "false", "client.toolbarMode": "minimal"}


def add_parser(sub) -> None:
    p = sub.add_parser("app", help="launch the app (default: the bundled sample data)")
    p.add_argument("paths", nargs="*", help="datasets to open")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=run)


def app_script() -> Path:
    """The app's entry script: ``app.py`` of a source checkout, else the copy a wheel installs."""
    checkout = Path(__file__).resolve().parents[2] / "app.py"
    if checkout.is_file() and (checkout.parent / "pages").is_dir():
        return checkout
    import importlib.util

    spec = importlib.util.find_spec(APP_PACKAGE)  # locates the folder without running the app
    if spec is not None and spec.submodule_search_locations:
        script = Path(list(spec.submodule_search_locations)[0]) / "app.py"
        if script.is_file():
            return script
    raise FileNotFoundError(f"the app is not installed: no app.py in a source checkout or in {APP_PACKAGE}; "
                            "reinstall vendiscope")


def streamlit_command(*, host: str, port: int, paths: list[str]) -> list[str]:
    """The command that serves the app.

    >>> streamlit_command(host="127.0.0.1", port=8501, paths=[])[4].endswith("streamlit_app.py")
    True
    """
    entry = Path(__file__).resolve().parent / "launch" / "streamlit_app.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(entry), "--server.address", host,
           "--server.port", str(port)]
    for name, value in STREAMLIT_OPTIONS.items():
        cmd += [f"--{name}", value]
    if paths:
        cmd += ["--", *[str(Path(p).expanduser().resolve()) for p in paths]]
    return cmd


def run(args: argparse.Namespace) -> int:
    cmd = streamlit_command(host=args.host, port=args.port, paths=args.paths)
    print(f"Vendiscope at http://{args.host}:{args.port}", file=sys.stderr)
    env = {**os.environ, "VENDISCOPE_APP_SCRIPT": str(app_script())}
    return subprocess.call(cmd, env=env)
