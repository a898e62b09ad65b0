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
