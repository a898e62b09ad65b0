"""Datasets as one items table: an image folder or a CSV/Parquet manifest in, a DataFrame out.

Every item has a stable ``id`` (its path relative to the dataset root, or a hash of its text), a
``kind`` ("image" or "text"), a ``set`` (which collection it belongs to, e.g. real data or one
model's samples) and a ``label`` where known; any other manifest column is kept as metadata.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.data.access import path_problem
from explorer.data.images import IMAGE_EXTENSIONS
from explorer.data.outputs import check_set
from explorer.data.tables import read_table

PATH_COLUMNS = ("path", "image", "image_path", "filepath", "file", "filename")
TEXT_COLUMNS = ("text", "caption", "output", "generation", "completion", "response")
ARRAY_SUFFIXES = (".npy", ".npz")
MANIFEST_NAMES = ("manifest.csv", "manifest.parquet")


def no_rejects() -> pd.DataFrame:
    return pd.DataFrame({"id": pd.Series(dtype="object"), "reason": pd.Series(dtype="object")})


@dataclass
class Dataset:
    """An items table plus where it came from. ``packs`` are shipped precomputed embeddings;
    ``rejected`` are the rows or files that could not become items (``id``, ``reason``), reported
    with the skipped items when the dataset is embedded."""

    items: pd.DataFrame
    name: str
    source: str
    root: Path | None = None
    packs: list[Path] = field(default_factory=list)
    vectors: np.ndarray | None = field(default=None, repr=False)  # precomputed embeddings, row per item
    rejected: pd.DataFrame = field(default_factory=no_rejects)

    def __len__(self) -> int:
        return len(self.items)

    @cached_property
    def sets(self) -> list[str]:
        """The set names, sorted (a pass over every item: made once; the items are not changed)."""
        return sorted(self.items["set"].astype(str).unique())

    @cached_property
    def modality(self) -> str:
        """``"text"`` when any item is a text, else ``"image"`` (what the embedder is chosen for)."""
        return "text" if (self.items["kind"] == "text").any() else "image"

    def select_sets(self, sets: list[str]) -> Dataset:
        mask = self.items["set"].astype(str).isin(sets).to_numpy()
        vectors = None if self.vectors is None else self.vectors[mask]
        return Dataset(self.items[mask].reset_index(drop=True), self.name, self.source, self.root, self.packs,
                       vectors, self.rejected)


APP_PACKAGE = "vendiscope_app"  # where a built wheel puts app.py, pages/ and sample_data/


def sample_data_dir() -> Path:
    """The bundled sample dataset (handwritten digits and model samples): ``sample_data/digits``
    of a source checkout, else the copy a built wheel installs with the app."""
    checkout = Path(__file__).resolve().parents[2] / "sample_data" / "digits"
    if checkout.is_dir():
        return checkout
    import importlib.util

    spec = importlib.util.find_spec(APP_PACKAGE)  # finds the folder without running the app
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the sample data is missing: neither a source checkout nor an installed "
                                f"{APP_PACKAGE} package holds sample_data/digits")
    return Path(list(spec.submodule_search_locations)[0]) / "sample_data" / "digits"


def _unique_ids(ids: pd.Series) -> pd.Series:
    """Suffix repeated ids with #2, #3... so duplicates in a manifest stay addressable."""
    counts = ids.groupby(ids).cumcount()
    return ids.where(counts == 0, ids + "#" + (counts + 1).astype(str))


def _packs(root: Path) -> list[Path]:
    folder = root / "embeddings"
    return sorted(folder.glob("*.npz")) if folder.is_dir() else []


def load_image_folder(root: str | os.PathLike, *, set_name: str | None = None, allow_outside: bool = False) -> Dataset:
    """Every image under ``root`` (recursive); the first sub-folder name is the label. A file whose
    name is not UTF-8, or a link to a file outside ``root`` (unless ``allow_outside``), is
    rejected with a reason.

    >>> ds = load_image_folder(sample_data_dir() / "real")
    >>> len(ds), ds.items["label"].nunique()
    (1797, 10)
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    rows, rejected = [], []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if fname.startswith(".") or Path(fname).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            rel = (Path(dirpath) / fname).relative_to(root)
            problem = path_problem(str(root / rel), root, allow_outside=allow_outside)
            if problem:
                shown = os.fsencode(rel).decode("utf-8", errors="backslashreplace")
                rejected.append({"id": shown, "reason": problem})
                continue
            rows.append({"id": rel.as_posix(), "path": str(root / rel),
                         "label": rel.parts[0] if len(rel.parts) > 1 else None})
    if not rows:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found under {root}"
                         + (f"; {len(rejected)} file(s) rejected, e.g. {rejected[0]['reason']}" if rejected else ""))
    items = pd.DataFrame(rows)
    items.insert(1, "kind", "image")
    items["set"] = set_name or root.name
    return Dataset(items, root.name, str(root), root, _packs(root),
                   rejected=pd.DataFrame(rejected) if rejected else no_rejects())


def load_manifest(
    path: str | os.PathLike, *, path_column: str | None = None, text_column: str | None = None,
    allow_outside: bool = False,
) -> Dataset:
    """A CSV/Parquet/JSONL table with a path column (images, relative to the manifest) or a text
    column; ``set``, ``label`` and ``id`` columns are used when present. Rows that cannot be read,
    and paths outside the manifest's folder (unless ``allow_outside``), are rejected with a reason
    naming the row.

    >>> ds = load_manifest(sample_data_dir() / "manifest.csv")
    >>> "real" in ds.sets
    True
    """
    path = Path(path).expanduser().resolve()
    table, unreadable = read_table(path)
    row_numbers = table.index.to_numpy()  # as the file counts them, for messages
    table = table.reset_index(drop=True)
    rejected = [{"id": f"{path.name}:{row}", "reason": reason} for row, reason in
                zip(unreadable["row"], unreadable["reason"])]
    if table.empty:
        raise ValueError(f"manifest {path} has no readable rows"
                         + (f" ({len(rejected)} rejected, e.g. {rejected[0]['reason']})" if rejected else ""))
    cols = {c.lower(): c for c in table.columns}
    path_column = path_column or next((cols[c] for c in PATH_COLUMNS if c in cols), None)
    text_column = text_column or next((cols[c] for c in TEXT_COLUMNS if c in cols), None)
    items = table.copy()
    if path_column is not None:
        rel = table[path_column].astype(str)
        base = str(path.parent)
        items["path"] = [os.path.normpath(os.path.join(base, p)) if p else "" for p in rel]
        items["kind"] = "image"
        ids = table[cols["id"]].astype(str) if "id" in cols else rel.str.replace("\\", "/")
    elif text_column is not None:
        items["text"] = table[text_column].fillna("").astype(str)
        items["kind"] = "text"
        ids = table[cols["id"]].astype(str) if "id" in cols else _text_ids(items["text"])
    else:
        raise ValueError(
            f"manifest {path.name} needs a path column ({', '.join(PATH_COLUMNS)}) "
            f"or a text column ({', '.join(TEXT_COLUMNS)}); it has {list(table.columns)}")
    items["id"] = _unique_ids(ids.reset_index(drop=True))
    items["set"] = table[cols["set"]].astype(str) if "set" in cols else path.parent.name
    items["label"] = table[cols["label"]].astype(str) if "label" in cols else None
    front = ["id", "kind", "path" if path_column is not None else "text", "set", "label"]
    items = items[front + [c for c in items.columns if c not in front and c != cols.get("id")]]
    if path_column is not None:  # refused before any file is read or hashed
        problems = [path_problem(p, path.parent, allow_outside=allow_outside) if p else None for p in items["path"]]
        bad = np.array([p is not None for p in problems], dtype=bool)
        rejected += [{"id": i, "reason": f"{'line' if path.suffix.lower() in ('.jsonl', '.ndjson') else 'row'} "
                                         f"{row_numbers[n]} of {path.name}: {why}"}
                     for n, (i, why) in enumerate(zip(items["id"], problems)) if why]
        items = items[~bad].reset_index(drop=True)
        if items.empty:
            raise ValueError(f"no usable rows in manifest {path.name}: e.g. {rejected[0]['reason']}")
    return Dataset(items, path.parent.name, str(path), path.parent, _packs(path.parent),
                   rejected=pd.DataFrame(rejected) if rejected else no_rejects())


def _text_ids(texts: pd.Series) -> pd.Series:
    return _unique_ids(texts.map(lambda t: "t:" + hashlib.sha1(t.encode()).hexdigest()[:16]))


def load_text_lines(path: str | os.PathLike) -> Dataset:
    r"""A plain text file, one item per non-blank line; ids hash the text, so they survive
    re-ordering.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "g.txt"; _ = p.write_text("a cat\n\na dog\n")
    >>> load_text_lines(p).items["text"].tolist()
    ['a cat', 'a dog']
    """
    path = Path(path).expanduser().resolve()
    lines = [line.rstrip("\r") for line in path.read_text(encoding="utf-8", errors="replace").split("\n")]
    texts = pd.Series([t for t in lines if t.strip()], dtype=str)
    if texts.empty:
        raise ValueError(f"{path.name} has no non-blank lines")
    items = pd.DataFrame({"id": _text_ids(texts), "kind": "text", "text": texts, "set": path.stem, "label": None})
    return Dataset(items, path.stem, str(path), path.parent)


def load_embeddings(path: str | os.PathLike, *, manifest: str | os.PathLike | None = None,
                    key: str | None = None, column: str | None = None) -> Dataset:
    """Precomputed embeddings (.npy, .npz, .parquet array column), one item per row. A manifest
    with one row per embedding (default: ``items.parquet`` beside the file, as ``vendiscope embed``
    writes it) supplies ids, sets, labels and metadata."""
    from explorer.data.arrays import load_array, parquet_shards

    path = Path(path).expanduser().resolve()
    vectors = load_array(path, key=key, column=column)  # a folder: embed --ray's Parquet shards
    table = None
    default = path.with_name("items.parquet")
    if manifest is not None or default.is_file():
        mpath = Path(manifest) if manifest is not None else default
        if manifest is None:  # as vendiscope embed wrote them: one run's pair, or refused
            check_set(path.parent, [path.name, default.name])
        table, unreadable = read_table(mpath)
        if len(unreadable):  # rows pair with embeddings by position: a lost row would shift them all
            raise ValueError(f"{mpath.name}: {unreadable['reason'].iloc[0]}; its rows pair with {path.name}'s "
                             "by position, so every row must be readable")
        if len(table) != len(vectors):
            raise ValueError(f"{mpath.name} has {len(table)} rows but {path.name} has {len(vectors)} embeddings")
    elif path.suffix.lower() in (".parquet", ".pq") or path.is_dir():  # the other columns are the metadata
        import pyarrow.parquet as pq

        from explorer.data.arrays import EMBEDDING_COLUMNS

        files = parquet_shards(path) if path.is_dir() else [path]
        names = pq.read_schema(files[0]).names
        used = column or next(c for c in EMBEDDING_COLUMNS if c in names)
        table = pd.concat([pd.read_parquet(f, columns=[c for c in names if c != used]) for f in files],
                          ignore_index=True)
    items = pd.DataFrame(index=range(len(vectors))) if table is None else table.copy()
    items["id"] = _unique_ids(items["id"].astype(str)) if "id" in items else [f"row{i}" for i in range(len(items))]
    items["kind"] = "vector"
    items["set"] = items["set"].astype(str) if "set" in items else path.stem
    items["label"] = items["label"] if "label" in items else None
    front = ["id", "kind", "set", "label"]
    items = items[front + [c for c in items.columns if c not in front]]
    return Dataset(items, path.stem, str(path), path.parent, vectors=vectors)


def load_webdataset(source: str | os.PathLike) -> Dataset:
    """Webdataset tar shards (one .tar, or a folder of them): one item per sample with an image;
    labels from the sample's .cls/.txt/.json. A damaged shard is reported in ``rejected`` by name
    (the samples before the damage are kept); none readable is an error naming the shards."""
    from explorer.data.containers import webdataset_items

    source = Path(source).expanduser().resolve()
    shards = sorted(source.glob("*.tar")) if source.is_dir() else [source]
    items, rejected = webdataset_items(shards)
    if items.empty:
        raise ValueError(f"no image samples in {source}" + (f": {rejected[0]['reason']}" if rejected else ""))
    items.insert(1, "kind", "image")
    return Dataset(items[["id", "kind", "path", "set", "label"]], source.stem, str(source), source,
                   rejected=pd.DataFrame(rejected) if rejected else no_rejects())


def load_image_table(source: str | os.PathLike, *, column: str | None = None, allow_outside: bool = False) -> Dataset:
    """A Parquet/Arrow table with image bytes (a Hugging Face dataset saved to disk, or its
    Parquet export): one item per row, the scalar columns kept as metadata. A row that names a
    file instead of holding bytes is read from that file only when it lies in the table's folder
    (or ``allow_outside``); otherwise it is rejected with its row number."""
    from explorer.data.containers import table_image_items

    source = Path(source).expanduser().resolve()
    files = sorted(source.glob("*.arrow")) + sorted(source.glob("*.parquet")) if source.is_dir() else [source]
    if not files:
        raise ValueError(f"no .arrow or .parquet files in {source}")
    listed = [table_image_items(f, column, allow_outside=allow_outside) for f in files]
    rejected = [r for _, rejects in listed for r in rejects]
    items = pd.concat([table for table, _ in listed], ignore_index=True)
    if items.empty:
        raise ValueError(f"no usable rows in {source}" + (f": e.g. {rejected[0]['reason']}" if rejected else ""))
    items["kind"] = "image"
    items["id"] = _unique_ids(items["id"])
    items["label"] = items["label"] if "label" in items else None
    front = ["id", "kind", "path", "set", "label"]
    items = items[front + [c for c in items.columns if c not in front]]
    return Dataset(items, source.stem, str(source), source if source.is_dir() else source.parent,
                   rejected=pd.DataFrame(rejected) if rejected else no_rejects())


def _is_embedding_shards(folder: Path) -> bool:
    """A folder of Parquet shards of vectors (as ``embed --ray`` writes them), not of items."""
    import pyarrow.parquet as pq

    from explorer.data.arrays import EMBEDDING_COLUMNS, parquet_shards

    shards = parquet_shards(folder)
    if not shards or _has_image_column(shards[0]):
        return False
    names = {c.lower() for c in pq.read_schema(shards[0]).names}
    return not names & {*PATH_COLUMNS, *TEXT_COLUMNS} and bool(names & set(EMBEDDING_COLUMNS))


def _has_image_column(path: Path) -> bool:
    import pyarrow.parquet as pq

    from explorer.data.containers import is_image_type

    return any(is_image_type(f.type) for f in pq.read_schema(path))


def load_dataset(source: str | os.PathLike, *, allow_outside: bool = False) -> Dataset:
    """Open an image folder or a manifest; a folder holding ``manifest.csv`` uses the manifest.
    Items whose files lie outside the dataset's folder are rejected unless ``allow_outside``.

    >>> load_dataset(sample_data_dir()).name
    'digits'
    """
    source = Path(source).expanduser()
    if source.is_dir():
        for name in MANIFEST_NAMES:
            if (source / name).is_file():
                return load_manifest(source / name, allow_outside=allow_outside)
        if _is_embedding_shards(source):  # embed --ray's embeddings/ (items.parquet beside it)
            return load_embeddings(source)
        if (source / "state.json").is_file() and any(source.glob("*.arrow")):
            return load_image_table(source, allow_outside=allow_outside)  # datasets.Dataset.save_to_disk
        if any(source.glob("*.tar")) and not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in source.iterdir()):
            return load_webdataset(source)
        return load_image_folder(source, allow_outside=allow_outside)
    if source.is_file():
        suffix = source.suffix.lower()
        if suffix == ".txt":
            return load_text_lines(source)
        if suffix == ".tar":
            return load_webdataset(source)
        if suffix == ".arrow":
            return load_image_table(source, allow_outside=allow_outside)
        if suffix in ARRAY_SUFFIXES:
            return load_embeddings(source)
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            if _has_image_column(source):  # image bytes in the table, even in a column called "image"
                return load_image_table(source, allow_outside=allow_outside)
            names = {c.lower() for c in pq.read_schema(source).names}
            if not names & {*PATH_COLUMNS, *TEXT_COLUMNS} and names & {"embedding", "embeddings", "vector"}:
                return load_embeddings(source)

        return load_manifest(source, allow_outside=allow_outside)
    raise FileNotFoundError(f"no such file or folder: {source}")
