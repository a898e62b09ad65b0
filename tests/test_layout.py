"""The house rules, checked on the source: every import in explorer/ (at module level and inside
functions) forms no cycle, goes down the layers only, and takes no other module's private names."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "explorer"
# bottom layer first; a subpackage imports only from itself and the layers before it
LAYERS = ["data", "store", "embed", "neighbors", "metrics", "maps", "diagnostics", "compare", "curate",
          "distributed", "cli"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py") if "launch" not in p.parts}


def executed_imports(tree: ast.AST):
    """Every import statement Python can execute: at any depth, but not under ``if TYPE_CHECKING``
    (annotations only; those names are never imported at run time)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def lazy_exports_of(path: Path) -> dict[str, str]:
    """For a package ``__init__`` that calls ``lazy_exports(__name__, {module: [names]})``: each
    re-exported name and the module that defines it (the dict literal, read without importing)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_exports" and len(node.args) == 2:
            exports = ast.literal_eval(node.args[1])
            return {attr: module for module, attrs in exports.items() for attr in attrs}
    return {}


REEXPORTS = {module_name(p): lazy_exports_of(p) for p in ROOT.rglob("__init__.py")}


def edges_of(name: str, path: Path, text: str | None = None) -> set[str]:
    """The explorer modules that importing ``name`` runs directly. A name taken from a package's
    lazy re-exports (``from explorer.metrics import prdc``) counts as an import of the module that
    defines it, which the package imports on first use: a cycle through a re-export is a cycle."""
    out = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in executed_imports(ast.parse(path.read_text() if text is None else text)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: up from the importer's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
            targets += [REEXPORTS[base][a.name] for a in node.names if a.name in REEXPORTS.get(base, {})]
        for target in targets:
            if not target.startswith("explorer"):
                continue
            out.add(target)
            # importing explorer.x.y first runs the package explorer.x, unless it is the importer's own
            parts = target.split(".")
            if len(parts) > 2 and parts[1] != layer(name):
                out.add(".".join(parts[:2]))
    out.discard(name)
    return {t for t in out if t in MODULES}


SHARED = {"explorer.lazy"}  # imports nothing from explorer; every layer may use it


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


GRAPH = {name: edges_of(name, path) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a path that ends where it starts, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_import_resolves_to_a_module():
    for name, path in MODULES.items():
        for node in executed_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("explorer"):
                assert node.module in MODULES, f"{name} imports from {node.module}, which does not exist"


def test_no_import_cycle():
    assert find_cycle(GRAPH) is None, "import cycle: " + " -> ".join(find_cycle(GRAPH) or [])


def test_the_checks_see_imports_inside_functions_and_find_cycles():
    tree = ast.parse("import os\ndef f():\n    from explorer.embed.decoding import decoded_batches\n"
                     "if TYPE_CHECKING:\n    from explorer.metrics.prdc import PRDC\n")
    assert [getattr(n, "module", None) for n in executed_imports(tree)] == [None, "explorer.embed.decoding"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert "explorer.embed.gpu_decode" in GRAPH["explorer.embed.decoding"]  # the graph holds real edges
    assert "explorer.data" in GRAPH["explorer.metrics.prdc"]  # and the packages an import runs first
    # a re-exported name is an edge to its defining module too (the lazy import runs it)
    assert REEXPORTS["explorer.data"]["normalize_rows"] == "explorer.data.arrays"
    edges = edges_of("explorer.metrics.demo", ROOT / "metrics" / "demo.py",
                     "def f():\n    from explorer.data import normalize_rows\nfrom explorer.store import cached\n")
    assert edges == {"explorer.data", "explorer.data.arrays", "explorer.store", "explorer.store.cache"}
    # so data.arrays taking prdc through its package closes a cycle (prdc imports data.arrays)
    back = edges_of("explorer.data.arrays", ROOT / "data" / "arrays.py", "from explorer.metrics import prdc\n")
    assert "explorer.metrics.prdc" in back
    assert find_cycle({**GRAPH, "explorer.data.arrays": GRAPH["explorer.data.arrays"] | back}) is not None


def test_layers_import_downward_only():
    assert set(LAYERS) == {layer(n) for n in MODULES if n not in SHARED and n != "explorer"}
    for name in SHARED:
        assert not GRAPH[name], f"{name} must import nothing from explorer"
    for name, targets in GRAPH.items():
        if name == "explorer" or name in SHARED:
            continue
        own = LAYERS.index(layer(name))
        for target in targets - SHARED:
            assert target != "explorer", f"{name} imports the root package; import the defining module"
            assert LAYERS.index(layer(target)) <= own, f"{name} ({layer(name)}) imports {target} from a higher layer"


def test_packages_export_lazily():
    """A package's __init__ imports nothing but explorer.lazy: importing one module never runs a
    whole layer, and threads importing pages at once (Streamlit sessions) never meet a
    half-initialised package."""
    for name, path in MODULES.items():
        if path.name == "__init__.py":
            assert GRAPH[name] <= SHARED, f"{name} imports {sorted(GRAPH[name] - SHARED)} when imported"


def test_no_module_takes_another_modules_private_names():
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in executed_imports(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("explorer"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{name} imports private {private} from {node.module}"
        aliases = {a.asname or a.name for n in executed_imports(tree) if isinstance(n, ast.ImportFrom)
                   and (n.module or "").startswith("explorer") for a in n.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                assert not (node.attr.startswith("_") and not node.attr.startswith("__")), \
                    f"{name} reads {node.value.id}.{node.attr}"


def test_one_row_normalisation_helper():
    """Rows are unit-normalised by explorer.data.arrays.normalize_rows only."""
    for name, path in MODULES.items():
        if name == "explorer.data.arrays":
            continue
        assert "linalg.norm(" not in path.read_text(), f"{name} normalises rows by hand"
    for page in (ROOT.parent / "pages").glob("*.py"):
        assert "linalg.norm(" not in page.read_text(), f"{page.name} normalises rows by hand"
