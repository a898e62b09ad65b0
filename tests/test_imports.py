import subprocess
import sys

CHECK = """
import importlib, pkgutil, sys
import explorer
light = not any(m in sys.modules for m in ("torch", "umap", "streamlit"))
for mod in pkgutil.walk_packages(explorer.__path__, "explorer."):
    importlib.import_module(mod.name)
print(light, "streamlit" in sys.modules)
"""


def test_library_never_imports_streamlit_and_loads_heavy_parts_lazily():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]


THREADS = """
import sys, threading
errors = []
def load(name):
    try:
        __import__(name)
    except Exception as err:  # noqa: BLE001
        errors.append(f"{name}: {type(err).__name__}: {err}")
names = sys.argv[1:]
threads = [threading.Thread(target=load, args=(n,)) for n in names]
for t in threads: t.start()
for t in threads: t.join()
print(errors)
"""


def test_modules_import_from_many_threads_at_once():
    """As the app's sessions import pages in parallel: no thread sees a half-initialised module."""
    names = ["explorer", "explorer.maps.selection", "explorer.compare.comparison", "explorer.metrics",
             "explorer.diagnostics.catalog", "explorer.store.thumbnails", "explorer.maps", "explorer.cli",
             "explorer.embed.pipeline", "explorer.metrics.equal_n"]
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", THREADS, *names], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "[]", out.stdout
