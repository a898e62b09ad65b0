import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# No test may wait on the network: pretrained-weight lookups must fail fast and offline.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Every process this session starts inherits the tag, so a server orphaned to init is still found.
SESSION_TAG = f"{os.getpid()}-{time.time_ns()}"
os.environ["VENDISCOPE_TEST_SESSION"] = SESSION_TAG

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent
# AppTest starts the app as vendiscope app does, through the script outside pages/ that the
# launcher's st.App runs: started at app.py itself, Streamlit would run a page file alone on
# reruns (its old pages/ folder mode)
APP = str(ROOT / "explorer" / "cli" / "launch" / "run_app.py")
# scripts Streamlit runs, not modules: importing the launcher would build its st.App in pytest
collect_ignore_glob = ["explorer/cli/launch/*"]


def page_file(name: str) -> str:
    """A page's script, as AppTest.switch_page wants it: ``page_file("explore")``."""
    return str(ROOT / "pages" / f"{name}.py")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and everything it started."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def running_app(*args: str, cwd, env: dict | None = None, script: Path | None = None, timeout: float = 90):
    """``vendiscope app ARGS`` on a free port, in its own process group; yields (port, process)
    once its health endpoint answers, and stops the whole group after."""
    port = free_port()
    host = args[args.index("--host") + 1] if "--host" in args else "127.0.0.1"
    command = [str(script or Path(sys.executable).parent / "vendiscope"), "app", "--port", str(port), *args]
    proc = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + timeout
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if urllib.request.urlopen(f"http://{host}:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                assert time.time() < deadline, "the app did not come up"
                time.sleep(0.3)
        yield port, proc
    finally:
        stop_group(proc)


@pytest.fixture(scope="session", autouse=True)
def _no_process_left_behind():
    """The test session ends with no process it started left running, children or orphans
    (a server whose parent died is re-parented to init and is no longer anyone's child)."""
    yield
    import psutil

    def ours() -> list:
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if (proc.pid != os.getpid() and proc.status() != "zombie"
                        and proc.environ().get("VENDISCOPE_TEST_SESSION") == SESSION_TAG):
                    found.append(proc)
        return found

    left = ours()
    if left:
        time.sleep(1.0)
        left = ours()
    described = [(c.pid, c.cmdline()[:4]) for c in left]
    for child in left:
        with contextlib.suppress(psutil.Error):
            child.kill()
    assert not left, f"processes left running after the tests: {described}"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own empty cache folder unless it asks for the shared one."""
    monkeypatch.setenv("VENDISCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """A cache folder shared by the tests that reuse expensive results (embeddings, UMAP)."""
    return tmp_path_factory.mktemp("shared-cache")


def need_chromium() -> None:
    """Skip a browser test where Chromium is missing; in CI that is a failure: .ci/run installs it."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run must install it (apt-get install chromium)")
        pytest.skip("Chromium not installed (apt-get install -y chromium)")


@pytest.fixture
def app_url(tmp_path, shared_cache):
    """The app on the sample data, served by a real ``vendiscope app`` process, for a browser."""
    need_chromium()
    env = {"VENDISCOPE_CACHE": str(shared_cache), "HOME": str(tmp_path)}
    with running_app(cwd=tmp_path, env=env) as (port, _):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def tiny_clip(tmp_path):
    """A small, randomly initialised open_clip model registered under its own config and saved
    as a local checkpoint: (arch, checkpoint path, eval-mode model)."""
    import open_clip
    import torch

    cfg = {"embed_dim": 32,
           "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1}}
    config_dir = tmp_path / "clip-config"
    config_dir.mkdir()
    (config_dir / "vendiscope-tiny.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(config_dir)
    torch.manual_seed(0)
    model = open_clip.create_model("vendiscope-tiny", pretrained=None).eval()
    ckpt = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), ckpt)
    return "vendiscope-tiny", ckpt, model


@pytest.fixture
def sample_page(shared_cache, monkeypatch):
    """Open a page of the app on the sample data (shared cache) and return it with the library's
    embeddings of the same data."""
    monkeypatch.setenv("VENDISCOPE_CACHE", str(shared_cache))

    def open_page(page: str):
        from streamlit.testing.v1 import AppTest

        from explorer.data.datasets import load_dataset, sample_data_dir
        from explorer.embed.pipeline import embed_dataset
        from explorer.embed.registry import get_embedder

        at = AppTest.from_file(APP, default_timeout=600)
        at.run()
        at.switch_page(page_file(page)).run()
        assert not at.exception, at.exception
        return at, embed_dataset(load_dataset(sample_data_dir()), get_embedder("efficientnet-lite0"))

    return open_page


def app_on(source, page: str | None = None, **state):
    """The app in AppTest opened on ``source`` (as if given to ``vendiscope app``), with more
    session ``state`` (e.g. ``embedder="pixels"``), run, then switched to ``page``; checked to
    have raised nothing."""
    from streamlit.testing.v1 import AppTest

    from explorer.cli.app import AppSettings

    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["app_settings"] = AppSettings(sources=[str(source)])
    at.session_state["source_choice"] = str(source)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.switch_page(page_file(page)).run()
    assert not at.exception, at.exception
    return at


def map_element(at):
    """The page's map (the vendiscope_map component) in an AppTest tree."""
    maps = [e for e in at.get("bidi_component") if e.proto.component_name.endswith("vendiscope_map")]
    assert maps, "no map on the page"
    return maps[0]


def map_points(at):
    """The map's per-point data, as the page sends it to the browser (the packed points element
    beside the map, explorer/maps/packed.py): x, y, c[, t]; and the map's own data."""
    import pandas as pd

    from explorer.maps.packed import unpack_points

    meta = json.loads(map_element(at).proto.json)
    blobs = [unpack_points(e.proto.bytes) for e in at.get("bidi_component")
             if e.proto.component_name.endswith("vendiscope_points")]
    points = [b for b in blobs if b["digest"] == meta["points"]]
    assert points, "the map's points were not drawn beside it"
    table = pd.DataFrame({k: points[0][k] for k in ("x", "y", "c")})
    if points[0]["t"] is not None:
        table["t"] = points[0]["t"]
    return table, meta


GRID_CELL = re.compile(r'<img [^>]*src="data:image/jpeg;base64,([^"]+)"><figcaption>(.*?)</figcaption>')


def image_grids(at) -> list[list[tuple[bytes, str]]]:
    """The page's thumbnail grids (pages/_grid.py) in an AppTest tree: per grid, each cell's JPEG
    bytes and its caption as shown."""
    import base64
    import html

    return [[(base64.b64decode(b64), html.unescape(caption)) for b64, caption in GRID_CELL.findall(e.proto.body)]
            for e in at.get("html") if 'class="vs-grid"' in e.proto.body]


@pytest.fixture
def downloaded(monkeypatch):
    """``downloaded(at, label)``: what clicking the AppTest page's download button ``label``
    gives. Its file is made when clicked (pages/_downloads.py); AppTest's media manager lives only
    as long as a run, so the callables it is handed are kept here and run as the server would."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    made = {}
    real = MediaFileManager.add_deferred

    def add_deferred(self, make, *args, **kwargs):
        file_id = real(self, make, *args, **kwargs)
        made[file_id] = make
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)

    def click(at, label: str, *, where=None) -> bytes:
        button = next(b for b in (where or at).get("download_button") if b.proto.label == label)
        return made[button.proto.deferred_file_id]()

    return click


def drive_map(at, *, selection=None, click=None, hover=None) -> None:
    """Rerun as if the user had drawn ``selection`` (a shape, or None), clicked point ``click`` or
    rested the pointer on point ``hover`` on the page's map: sent as the browser sends them, as the
    component's widget state."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates

    element = map_element(at)
    states = WidgetStates()
    states.CopyFrom(at._tree.get_widget_states())
    kept = [w for w in states.widgets if w.id != element.proto.id]
    del states.widgets[:]
    states.widgets.extend(kept)
    state = states.widgets.add()
    state.id = element.proto.id
    state.json_value = json.dumps({"selection": selection, "hover": hover})
    if click is not None:
        trigger = states.widgets.add()
        trigger.id = f"$$STREAMLIT_INTERNAL_KEY_{element.proto.id}__events"
        trigger.json_trigger_value = json.dumps({"event": "click", "value": int(click)})
    at._run(states)
    assert not at.exception, at.exception


def wait_idle(page, *, timeout: float = 60_000) -> None:
    """Wait until the app has no script run in flight: a click that lands while a rerun (a hover
    card, say) is still running can be lost by Streamlit, and elements of the run before stay on
    the page beside their replacements until the run ends.

    The app root's ``data-test-script-state`` must read idle on two looks 300 ms apart, because a
    rerun just asked for may not have started on the first."""
    idle = """() => {
        const app = document.querySelector('[data-testid="stApp"]');
        const state = app && app.getAttribute('data-test-script-state');
        return state !== 'running' && state !== 'rerunRequested'
            && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]');
    }"""
    for _ in range(2):
        page.wait_for_timeout(300)
        page.wait_for_function(idle, timeout=timeout)


def lasso(page, fractions):
    """Draw a closed lasso on the first map with the mouse, corners as fractions of the map."""
    area = page.locator("canvas.vs-canvas").first.bounding_box()
    points = [(area["x"] + fx * area["width"], area["y"] + fy * area["height"]) for fx, fy in fractions]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:] + points[:1]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
