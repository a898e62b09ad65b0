import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import running_app
from explorer.cli import main
from explorer.cli.app import app_script
from explorer.metrics.spectrum import hill_number

ORDERS = {"0.1": 0.1, "0.5": 0.5, "1": 1.0, "2": 2.0, "inf": math.inf}


def run_cli(*args):
    """The installed console script, as a user runs it."""
    proc = subprocess.run([sys.executable, "-m", "explorer.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def clusters(tmp_path, rng):
    counts = [40, 30, 20, 10]
    basis = np.linalg.qr(rng.normal(size=(24, 24)))[0]
    x = np.vstack([np.tile(basis[j] * (j + 1), (m, 1)) for j, m in enumerate(counts)]).astype(np.float32)
    path = tmp_path / "emb.npy"
    np.save(path, x)
    return path, np.array(counts) / sum(counts)


def test_score_json_matches_closed_form_for_all_five_orders(clusters):
    path, w = clusters
    code, out, err = run_cli("score", path, "--q", "0.1,0.5,1,2,inf", "--kernel", "cosine", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["n"] == 100 and report["kernel"] == "cosine" and report["method"] == "dual"
    assert set(report["scores"]) == set(ORDERS)
    for key, q in ORDERS.items():
        assert report["scores"][key] == pytest.approx(hill_number(w, q), abs=1e-6), key


def test_score_precomputed_matrix(tmp_path, capsys):
    n, s = 12, 0.25
    k = np.full((n, n), s) + (1 - s) * np.eye(n)
    np.save(tmp_path / "k.npy", k)
    assert main(["score", str(tmp_path / "k.npy"), "--kernel", "precomputed", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "exact" and report["kernel"] == "precomputed"
    assert report["scores"]["2"] == pytest.approx(n / (1 + (n - 1) * s * s), abs=1e-6)
    assert report["scores"]["inf"] == pytest.approx(n / (1 + (n - 1) * s), abs=1e-6)


def test_score_reads_npz_and_parquet(tmp_path, clusters, capsys):
    path, w = clusters
    x = np.load(path)
    np.savez(tmp_path / "e.npz", ids=np.arange(len(x)), feats=x)
    pd.DataFrame({"id": range(len(x)), "embedding": list(x)}).to_parquet(tmp_path / "e.parquet")
    for args in (["e.npz", "--key", "feats"], ["e.parquet"]):
        assert main(["score", str(tmp_path / args[0]), *args[1:], "--json", "--q", "1"]) == 0
        assert json.loads(capsys.readouterr().out)["scores"]["1"] == pytest.approx(hill_number(w, 1.0), abs=1e-6)
    assert main(["score", str(tmp_path / "e.npz"), "--json"]) == 2
    assert "choose one with --key" in capsys.readouterr().err


def test_score_refuses_pickles_and_bad_arrays(tmp_path, capsys):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert main(["score", str(tmp_path / "obj.npy")]) == 2
    assert "pickled data is never loaded" in capsys.readouterr().err
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan], [0.0, 1.0]]))
    assert main(["score", str(tmp_path / "nan.npy")]) == 2
    assert "NaN or inf" in capsys.readouterr().err
    np.save(tmp_path / "v.npy", np.ones(5))
    assert main(["score", str(tmp_path / "v.npy")]) == 2
    assert "2-D" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing.npy")]) == 2


def test_embed_writes_aligned_outputs_and_a_skip_report(tmp_path):
    from PIL import Image

    src = tmp_path / "imgs"
    (src / "a").mkdir(parents=True)
    for i in range(5):
        Image.new("L", (6, 6), i * 50).save(src / "a" / f"{i}.png")
    (src / "a" / "broken.png").write_bytes(b"garbage")
    out = tmp_path / "out"
    code, _, err = run_cli("embed", src, "--model", "pixels", "--out", out, "--cache-dir", tmp_path / "c")
    assert code == 0, err
    x = np.load(out / "embeddings.npy", allow_pickle=False)
    items = pd.read_parquet(out / "items.parquet")
    assert x.shape == (5, 3072) and len(items) == 5
    for row, vec in zip(items.itertuples(), x):
        assert vec[0] == pytest.approx(int(row.id.split("/")[1][0]) * 50 / 255, abs=1e-6)
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped["id"].tolist() == ["a/broken.png"]
    assert "broken.png" in err and "skipped 1" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["embedded"] == 5 and summary["skipped"] == 1


def test_embed_with_unavailable_clip_weights_is_a_clear_error(tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    code = main(["embed", str(src), "--model", "clip:ViT-B-32/laion2b_s34b_b79k", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "no images" in capsys.readouterr().err
    from PIL import Image

    Image.new("RGB", (4, 4)).save(src / "x.png")
    assert main(["embed", str(src), "--model", "ViT-B-32", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "weights unavailable" in err or "weights are unavailable" in err
    assert "--model auto" in err


def test_console_script_and_app_entry_exist():
    assert app_script().name == "app.py"
    script = Path(sys.executable).parent / "vendiscope"  # installed beside the interpreter
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "score" in proc.stdout and "embed" in proc.stdout and "app" in proc.stdout


def listening(port: int, *, tool: str | None = None) -> set[str]:
    """Local addresses with a TCP socket listening on ``port``: as ss reports them, or where ss
    is not installed (or ``tool="psutil"``), as psutil reads them from the kernel's tables."""
    import shutil

    if (tool or ("ss" if shutil.which("ss") else "psutil")) == "ss":
        out = subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
        return {line.split()[3].rsplit(":", 1)[0].strip("[]") for line in out.splitlines() if line.strip()}
    import psutil

    return {c.laddr.ip for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port}


def test_both_ways_of_listing_listeners_see_a_listening_socket():
    import shutil
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        port = s.getsockname()[1]
        assert listening(port, tool="psutil") == set()  # bound, not yet listening
        s.listen()
        assert listening(port, tool="psutil") == {"127.0.0.2"}
        if shutil.which("ss"):
            assert listening(port, tool="ss") == {"127.0.0.2"}
    assert listening(port, tool="psutil") == set()


@pytest.mark.slow
@pytest.mark.parametrize("host", [None, "127.0.0.2"])
def test_app_binds_loopback_unless_told_otherwise(host, tmp_path):
    with running_app(*(["--host", host] if host else []), cwd=tmp_path, env={"HOME": str(tmp_path)}) as (port, _):
        assert listening(port) == listening(port, tool="psutil") == {host or "127.0.0.1"}


def test_sigterm_or_sigkill_to_vendiscope_app_stops_its_server(tmp_path):
    import psutil

    for sig in (signal.SIGTERM, signal.SIGKILL):
        with running_app(cwd=tmp_path, env={"HOME": str(tmp_path)}) as (port, proc):
            server = psutil.Process(proc.pid).children()
            assert server and listening(port)
            os.kill(proc.pid, sig)  # only vendiscope itself, not its process group
            proc.wait(timeout=20)
            gone, alive = psutil.wait_procs(server, timeout=20)
            assert not alive and not listening(port)


def test_exit_codes_are_distinct_and_errors_are_one_line(tmp_path, capsys, monkeypatch):
    """0 ok, 1 gate held (tests/test_compare.py), 2 usage or input error, 3 internal error."""
    x = np.random.default_rng(0).normal(size=(20, 4))
    np.save(tmp_path / "x.npy", x)
    for bad in (["--n-boot", "0"], ["--n-boot", "two"]):
        with pytest.raises(SystemExit) as stop:
            main(["score", str(tmp_path / "x.npy"), "--groups", "kmeans:2", *bad])
        assert stop.value.code == 2
        assert "--n-boot" in capsys.readouterr().err

    # the disk is full: one line, exit 2, no traceback
    import explorer.embed.pipeline as pipeline

    def full(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(pipeline, "atomic_write_bytes", full)
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (4, 4), "red").save(tmp_path / "imgs" / "a.png")
    assert main(["embed", str(tmp_path / "imgs"), "--model", "pixels", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: No space left on device") and "Traceback" not in "\n".join(err)
    monkeypatch.undo()

    # the flag store's database cannot be written: one line, exit 2
    cache = tmp_path / "cache"
    (cache / "flags").mkdir(parents=True)
    from explorer.data.datasets import load_dataset
    from explorer.store.flags import dataset_key

    (cache / "flags" / f"{dataset_key(load_dataset(tmp_path / 'imgs').source)}.sqlite").write_bytes(b"not sqlite" * 100)
    assert main(["flag", str(tmp_path / "imgs"), "--ids", "a.png", "--reason", "x", "--cache-dir", str(cache)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: file is not a database")

    # a bug: one line naming the log, exit 3
    import explorer.cli.score as score

    monkeypatch.setattr(score, "load_array", lambda *a, **k: 1 / 0, raising=False)
    monkeypatch.setattr("explorer.data.arrays.load_array", lambda *a, **k: 1 / 0)
    monkeypatch.setenv("VENDISCOPE_CACHE", str(cache))
    assert main(["score", str(tmp_path / "x.npy")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("internal error: ZeroDivisionError") and "vendiscope-error.log" in err
    assert "VENDISCOPE_DEBUG=1" in err and len(err.strip().splitlines()) == 1
    assert "ZeroDivisionError" in (cache / "vendiscope-error.log").read_text()

    # bugs that look like lookups or state errors are bugs too (3), not input errors (2); an
    # InputError, and any ValueError about the data, is the user's to fix (2)
    from explorer.data.errors import InputError

    for raised, code in ((KeyError("column"), 3), (IndexError("list index out of range"), 3),
                         (RuntimeError("state"), 3), (InputError("no such model"), 2), (ValueError("bad"), 2)):
        def boom(*a, exc=raised, **k):
            raise exc

        monkeypatch.setattr("explorer.data.arrays.load_array", boom)
        assert main(["score", str(tmp_path / "x.npy")]) == code, raised
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert err.startswith("internal error: " if code == 3 else "error: "), err


def test_an_unloadable_checkpoint_fails_the_command(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (50 * i, 0, 0)).save(tmp_path / "imgs" / f"{i}.png")
    (tmp_path / "broken.pt").write_bytes(b"this is not a checkpoint")
    code = main(["embed", str(tmp_path / "imgs"), "--model", f"clip:ViT-B-32@{tmp_path / 'broken.pt'}",
                 "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    assert "cannot load the clip:ViT-B-32" in capsys.readouterr().err
    assert not (tmp_path / "o" / "embeddings.npy").exists()


def websocket_status(port: int, host_header: str) -> int:
    """HTTP status of a WebSocket upgrade to the app's stream, sent with this Host (and Origin)."""
    import base64
    import socket

    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host_header}\r\nOrigin: http://{host_header}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        return int(s.recv(4096).split(b" ", 2)[1])


def http_status(port: int, host_header: str, path: str = "/") -> int:
    """HTTP status of a plain GET to the app, sent with this Host."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host_header})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.slow
def test_the_app_refuses_browsers_that_use_a_foreign_host_name(tmp_path):
    """DNS rebinding: a page at rebind.example whose name now points at 127.0.0.1 can neither open
    the app's stream nor fetch its page, files or endpoints; the names the app is served under can."""

    with running_app("--allow-host", "box.example", cwd=tmp_path, env={"HOME": str(tmp_path)}) as (port, _):
        assert websocket_status(port, f"127.0.0.1:{port}") == 101
        assert websocket_status(port, f"localhost:{port}") == 101
        assert websocket_status(port, "box.example") == 101  # --allow-host
        assert websocket_status(port, f"rebind.example:{port}") == 403
        assert websocket_status(port, "127.0.0.1.rebind.example") == 403
        for path in ("/", "/_stcore/health", "/_stcore/host-config", "/explore"):
            assert http_status(port, f"127.0.0.1:{port}", path) == 200, path
            assert http_status(port, f"localhost:{port}", path) == 200, path
            assert http_status(port, "box.example", path) == 200, path
            assert http_status(port, f"rebind.example:{port}", path) == 403, path
            assert http_status(port, "127.0.0.1.rebind.example", path) == 403, path


def test_the_app_server_hides_tracebacks_and_table_csv_downloads():
    """Streamlit's own table "Download as CSV" would pass formulas through, and its error boxes
    show tracebacks with server paths: both are off, for vendiscope app and a plain streamlit run."""
    from explorer.cli.app import AppSettings, streamlit_command

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    cmd = streamlit_command(host="127.0.0.1", port=8501, settings=AppSettings())
    options = {cmd[i]: cmd[i + 1] for i in range(len(cmd) - 1) if cmd[i].startswith("--client.")}
    assert options["--client.disableDataExport"] == "true" and options["--client.showErrorDetails"] == "type"
    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True and config["client"]["showErrorDetails"] == "type"
    assert config["server"]["allowedHosts"] == ["localhost", "127.0.0.1", "::1"]
    # the values are ones this Streamlit accepts
    shown = subprocess.run([sys.executable, "-m", "streamlit", "config", "show", "--client.showErrorDetails", "type",
                            "--client.disableDataExport", "true"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert 'showErrorDetails = "type"' in shown.stdout and "disableDataExport = true" in shown.stdout


def test_the_host_check_refuses_every_request_under_a_foreign_name():
    """The app's ASGI middleware (fast; the served app is checked in the slow test above)."""
    import asyncio

    from explorer.cli.app import HostCheck

    def request(kind: str, host: str | None, allowed: list[str]) -> list:
        sent, reached = [], []

        async def app(scope, receive, send):
            reached.append(scope["type"])

        async def send(message):
            sent.append(message)

        headers = [(b"host", host.encode())] if host is not None else []
        asyncio.run(HostCheck(app, hosts=lambda: allowed)({"type": kind, "headers": headers}, None, send))
        return reached or sent

    names = ["localhost", "127.0.0.1", "::1", "box.example"]
    for host in ("127.0.0.1:8501", "localhost", "[::1]:8501", "BOX.example.", "box.example:80"):
        assert request("http", host, names) == ["http"] and request("websocket", host, names) == ["websocket"]
    for host in ("rebind.example:8501", "127.0.0.1.rebind.example", "localhost@rebind.example", "", None):
        refused = request("http", host, names)
        assert refused[0]["status"] == 403 and b"not allowed" in refused[1]["body"], host
        assert request("websocket", host, names) == [{"type": "websocket.close", "code": 1008}], host
    assert request("lifespan", None, names) == ["lifespan"]
    assert request("http", "anything.example", []) == ["http"]  # no list: Streamlit's default, every name


def test_app_refuses_a_bad_path_at_launch(tmp_path, capsys):
    assert main(["app", str(tmp_path / "nowhere")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["app", "--allow-dir", str(tmp_path / "nowhere")]) == 2


def test_a_registered_embedder_is_offered_by_the_cli_and_the_app_and_typos_list_the_choices(tmp_path, capsys):
    from PIL import Image

    from explorer.embed.models.pixels import PixelEmbedder
    from explorer.embed.registry import embedder_choices, register_embedder, unregister_embedder

    register_embedder("tiny-pixels", lambda spec, **kw: PixelEmbedder(size=2), description="2x2 pixels, a demo")
    try:
        with pytest.raises(SystemExit) as stop:
            main(["embed", "--help"])
        assert stop.value.code == 0
        help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
        assert "tiny-pixels: 2x2 pixels, a demo" in help_text
        assert "tiny-pixels" in embedder_choices()  # the app's sidebar select box lists these
        (tmp_path / "imgs").mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / "imgs" / "x.png")
        assert main(["embed", str(tmp_path / "imgs"), "--model", "tiny-pixles", "--out", str(tmp_path / "o"),
                     "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: unknown embedder 'tiny-pixles'; the registered ones are auto, pixels, "), err
        assert "tiny-pixels" in err and "clip:ARCH/TAG" in err
        assert main(["embed", str(tmp_path / "imgs"), "--model", "tiny-pixels", "--out", str(tmp_path / "o"),
                     "--quiet"]) == 0
    finally:
        unregister_embedder("tiny-pixels")
    assert "tiny-pixels" not in embedder_choices()
