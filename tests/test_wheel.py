"""The app ships in the wheel: built from the source tree, installed into a fresh environment with
no checkout on its path, ``vendiscope app`` serves the sample data from any folder."""
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS, running_app

REPO = Path(__file__).resolve().parent.parent


def source_files() -> list[str]:
    """What a clean checkout holds: tracked files and new ones git does not ignore."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if (REPO / line).is_file()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh virtual environment with the built wheel installed and the project's dependencies
    visible (a .pth line to this environment's site-packages, whose editable-install hook is not
    run), but not the checkout."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the source files")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for rel in source_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("vendiscope-*.whl"))
    env_dir = tmp / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True)
    return env_dir, site, tmp


def test_the_wheel_holds_the_library_and_the_app(installed):
    env_dir, site, tmp = installed
    python = env_dir / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import explorer, vendiscope_app; from explorer import sample_data_dir; "
                            "print(explorer.__file__); print(vendiscope_app.__file__); print(sample_data_dir())"],
                           cwd=tmp, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where  # nothing comes from the checkout
    assert (Path(where[2]) / "manifest.csv").is_file()
    assert (site / "explorer" / "cli" / "launch" / "streamlit_app.py").is_file()
    assert (site / "vendiscope_app" / "pages" / "explore.py").is_file()


def test_the_installed_vendiscope_app_serves_from_any_folder_and_stops(installed):
    """Without a browser: the installed command starts the installed app's server from a folder
    with no checkout, its health endpoint answers on loopback, and stopping it leaves no process."""
    import psutil

    env_dir, site, tmp = installed
    folder = tmp / "elsewhere"
    folder.mkdir()
    env = {"HOME": str(folder), "PYTHONPATH": ""}
    with running_app(cwd=folder, env=env, script=env_dir / "bin" / "vendiscope") as (port, proc):
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).read() == b"ok"
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        commands = [" ".join(p.cmdline()) for p in tree]
        # the server runs the wheel's launcher, not the checkout's
        assert any(str(site / "explorer" / "cli" / "launch" / "streamlit_app.py") in c for c in commands), commands
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, [p.pid for p in alive]


@pytest.mark.slow
@pytest.mark.browser
def test_vendiscope_app_from_the_wheel_serves_the_sample_data(installed, shared_cache):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium not installed (apt-get install -y chromium)")
    env_dir, site, tmp = installed
    folder = tmp / "anywhere"
    folder.mkdir()
    env = {"HOME": str(folder), "VENDISCOPE_CACHE": str(shared_cache), "PYTHONPATH": ""}
    with running_app(cwd=folder, env=env, script=env_dir / "bin" / "vendiscope") as (port, _):
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).read() == b"ok"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}")
            page.get_by_text("Vendi scores per set").wait_for(timeout=240_000)
            page.locator('[data-testid="stMetric"]').nth(19).wait_for(timeout=240_000)
            assert page.locator('[data-testid="stMetric"]').count() == 20  # four sample sets, five orders
            assert page.get_by_text("collapsed", exact=True).count() >= 1
            browser.close()
