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


def test_every_exported_name_of_every_package_resolves():
    """A lazy re-export only fails when the name is used: resolve each one, so a name mapped to the
    wrong module (``registered`` once pointed at diagnostics.base) fails here, not in a user's code."""
    import importlib
    import pkgutil

    import explorer

    packages = ["explorer"] + [m.name for m in pkgutil.walk_packages(explorer.__path__, "explorer.") if m.ispkg]
    missing = []
    for name in packages:
        package = importlib.import_module(name)
        for attr in getattr(package, "__all__", []):
            try:
                getattr(package, attr)
            except AttributeError as err:
                missing.append(f"{name}.{attr}: {err}")
    assert len(packages) > 5 and not missing, missing


def readme_python_imports() -> list[str]:
    """Every import statement in the README's ```python blocks (the blocks themselves are
    sketches, not runnable: they use names such as ``X`` they never define)."""
    import ast
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    statements = []
    for block in re.findall(r"```python\n(.*?)```", readme, flags=re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if re.match(r"(from \S+ )?import ", lines[i]):
                statement = lines[i]
                while statement.count("(") > statement.count(")"):  # a parenthesised name list
                    i += 1
                    statement += "\n" + lines[i]
                ast.parse(statement)  # a whole statement, or the extraction is wrong
                statements.append(statement)
            i += 1
    return statements


def test_the_readme_python_examples_import():
    statements = readme_python_imports()
    assert any("from explorer import (" in s for s in statements), statements  # the Python API example
    code = "\n".join(statements) + "\nprint('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
