"""``vendiscope app``: serve the Streamlit app (bound to 127.0.0.1 unless told otherwise).

Streamlit runs ``explorer/cli/launch/streamlit_app.py``: an ``st.App`` whose script,
``run_app.py``, executes the app's ``app.py``, and whose middleware (:class:`HostCheck`) refuses
requests made under a host name the app was not given. The scripts Streamlit is handed must not
sit beside a ``pages/`` folder: Streamlit would then treat the app as an old-style multipage app
and serve a deep link such as ``/explore`` by running that page file alone, without app.py's
navigation. ``app.py`` and ``pages/`` keep their places (a source checkout, or ``vendiscope_app/``
in a built wheel).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from explorer.cli.args import positive_int
from explorer.data.access import PathPolicy

APP_PACKAGE = "vendiscope_app"
# what .streamlit/config.toml says for a checkout, passed explicitly so any folder works.
# disableDataExport: Streamlit's own "Download as CSV" of a table would pass formulas through
# (the app's downloads neutralise them); showErrorDetails "type": a visitor sees an error's type,
# never its traceback, message or the server's paths (those go to the server's log).
# runner.postScriptGC: Streamlit runs a full gc.collect(2) after every rerun, which held the GIL for
# a third of the server's CPU under load (py-spy, benchmarks/load.py); Python's own generational
# collector still frees cycles, and the load benchmark shows the memory flat over two rounds
STREAMLIT_OPTIONS = {"server.headless": "true", "server.runOnSave": "false", "server.fileWatcherType": "none",
                     "runner.postScriptGC": "false",
                     "browser.gatherUsageStats": "false", "client.toolbarMode": "minimal",
                     "client.disableDataExport": "true", "client.showErrorDetails": "type"}


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def add_parser(sub) -> None:
    p = sub.add_parser("app", help="launch the app (default: the bundled sample data)",
                       description="Serve the app on 127.0.0.1. It opens the datasets named here (the sample "
                                   "data when none are) and nothing else, unless --path-box lets visitors type "
                                   "paths under the --allow-dir folders.")
    p.add_argument("paths", nargs="*", help="datasets to open")
    p.add_argument("--host", default="127.0.0.1",
                   help="bind address (default: %(default)s). 0.0.0.0 serves every network this machine is on: "
                        "anyone who can reach it can browse the datasets given here")
    p.add_argument("--port", type=positive_int, default=8501)
    p.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                   help="with --path-box, paths under DIR may be opened (repeatable)")
    p.add_argument("--path-box", action="store_true", help="show a box where visitors type a dataset path")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also accept browsers that reach the app by this host name (repeatable); other names are "
                        "refused, which stops DNS rebinding")
    p.add_argument("--allow-outside", action="store_true",
                   help="read items whose files lie outside their dataset's folder")
    p.set_defaults(func=run)


@dataclass
class AppSettings:
    """What the app may open: the datasets it was started with and, with the path box, paths
    under the allowed folders."""

    sources: list[str] = field(default_factory=list)
    allow_dirs: list[str] = field(default_factory=list)
    path_box: bool = False
    allow_outside: bool = False

    def policy(self) -> PathPolicy:
        from explorer.data.datasets import sample_data_dir

        return PathPolicy(datasets=[*self.sources, str(sample_data_dir())], allow_dirs=self.allow_dirs,
                          path_box=self.path_box)

    def argv(self) -> list[str]:
        """The script's arguments that carry these settings (read back by :func:`app_settings`)."""
        out = [f"--allow-dir={d}" for d in self.allow_dirs]
        out += ["--path-box"] * self.path_box + ["--allow-outside"] * self.allow_outside
        return out + ["--", *self.sources]


def app_settings(argv: list[str]) -> AppSettings:
    """The settings ``vendiscope app`` hands to the app's script: flags, ``--``, then sources.
    Without that ``--`` the script was not started by ``vendiscope app`` (e.g. a test runner's own
    arguments), and the defaults apply: the sample data only.

    >>> app_settings(["--allow-dir=/data", "--path-box", "--", "/data/a.csv"])
    AppSettings(sources=['/data/a.csv'], allow_dirs=['/data'], path_box=True, allow_outside=False)
    >>> app_settings(["-q", "tests/test_app.py"])
    AppSettings(sources=[], allow_dirs=[], path_box=False, allow_outside=False)
    """
    if "--" not in argv:
        return AppSettings()
    cut = argv.index("--")
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--allow-dir", action="append", default=[])
    parser.add_argument("--path-box", action="store_true")
    parser.add_argument("--allow-outside", action="store_true")
    args, _ = parser.parse_known_args(argv[:cut])
    return AppSettings([a for a in argv[cut + 1:] if a], args.allow_dir, args.path_box, args.allow_outside)


def allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """Host names a browser may use to reach the app: loopback, the bind address, this machine's
    own names and addresses when it serves every network (0.0.0.0), and ``extra``. Any other name
    is refused, the WebSocket by Streamlit and every HTTP request by :class:`HostCheck`, so a page
    that rebinds its own domain to 127.0.0.1 can neither drive the app nor read from it.

    >>> allowed_hosts("127.0.0.1", ["box.lan"])
    ['localhost', '127.0.0.1', '::1', 'box.lan']
    """
    names = [*LOOPBACK_NAMES]
    if host in ("0.0.0.0", "::"):
        import socket

        try:
            name = socket.gethostname()
            names += [name, socket.getfqdn(), *socket.gethostbyname_ex(name)[2]]
        except OSError:
            pass
    elif host:
        names.append(host)
    return list(dict.fromkeys([*names, *extra]))


def host_allowed(host: str | None, allowed: list[str]) -> bool:
    """Whether a request's Host header names this app, by Streamlit's own rule for
    ``server.allowedHosts``: the port is ignored, ``*.example.com`` matches subdomains, ``*``
    anything, and an empty list allows every name (a plain ``streamlit run`` without the option).

    >>> [host_allowed(h, ["localhost", "::1", "*.lan"]) for h in ("localhost:8501", "[::1]:8501", "box.lan",
    ...                                                          "rebind.example", "localhost.rebind.example", None)]
    [True, True, True, False, False, False]
    """
    if not allowed:
        return True
    if not host:
        return False
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(f"//{host}")
        name, _ = parts.hostname, parts.port  # .port checks that a port is a number in range
    except ValueError:
        return False
    if name is None or parts.username is not None or parts.password is not None or parts.path or parts.query:
        return False
    name = name.lower().rstrip(".")
    for pattern in (a.strip().lower().rstrip(".") for a in allowed):
        if pattern == "*" or name == pattern or pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def _configured_hosts() -> list[str]:
    import streamlit as st

    return list(st.get_option("server.allowedHosts") or [])


class HostCheck:
    """ASGI middleware for the app's ``st.App``: answer 403 to any HTTP request, and refuse any
    WebSocket, whose Host is not one of Streamlit's ``server.allowedHosts`` (what ``vendiscope
    app`` passes: :func:`allowed_hosts`). Streamlit checks only the WebSocket itself; without
    this, a page on a foreign name rebound to 127.0.0.1 could still fetch the app's files."""

    def __init__(self, app, hosts=_configured_hosts) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
            if not host_allowed(host, self.hosts()):
                if scope["type"] == "websocket":  # closed before it is accepted: the handshake gets 403
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
                await send({"type": "http.response.body", "body": b"This host name is not allowed.\n"})
                return
        await self.app(scope, receive, send)


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


def streamlit_command(*, host: str, port: int, settings: AppSettings, hosts: list[str] | None = None) -> list[str]:
    """The command that serves the app.

    >>> streamlit_command(host="127.0.0.1", port=8501, settings=AppSettings())[4].endswith("streamlit_app.py")
    True
    """
    entry = Path(__file__).resolve().parent / "launch" / "streamlit_app.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(entry), "--server.address", host,
           "--server.port", str(port)]
    for name, value in STREAMLIT_OPTIONS.items():
        cmd += [f"--{name}", value]
    for name in hosts or allowed_hosts(host, []):
        cmd += ["--server.allowedHosts", name]
    return [*cmd, "--", *settings.argv()]  # Streamlit hands what follows its '--' to the script


def run(args: argparse.Namespace) -> int:
    from explorer.data.datasets import load_dataset

    sources = [str(Path(p).expanduser().resolve()) for p in args.paths]
    for source in sources:  # a bad path is said now, not after the server has started
        load_dataset(source, allow_outside=args.allow_outside)
    for folder in args.allow_dir:
        if not Path(folder).expanduser().is_dir():
            raise FileNotFoundError(f"--allow-dir {folder}: not a folder")
    settings = AppSettings(sources, [str(Path(d).expanduser().resolve()) for d in args.allow_dir], args.path_box,
                           args.allow_outside)
    hosts = allowed_hosts(args.host, args.allow_host)
    cmd = streamlit_command(host=args.host, port=args.port, settings=settings, hosts=hosts)
    print(f"Vendiscope at http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
          f" (browsers may reach it as {', '.join(hosts)})", file=sys.stderr)
    env = {**os.environ, "VENDISCOPE_APP_SCRIPT": str(app_script())}
    server = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent if sys.platform == "linux" else None)

    def stop(signum, frame) -> None:  # SIGTERM or Ctrl-C here stops the server too
        server.terminate()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        code = server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0 if code in (0, -signal.SIGTERM) else code


def _die_with_parent() -> None:
    """In the server process: be sent SIGTERM if vendiscope app dies, even by SIGKILL (Linux)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
