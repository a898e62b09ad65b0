"""Items stored inside containers: webdataset tar shards, Parquet/Arrow tables with an image
column (as Hugging Face datasets write them). Such an item's ``path`` is ``CONTAINER::MEMBER``:
a tar member name, or ``row/column`` of a table; :func:`read_item` returns its bytes.
"""
from __future__ import annotations

import functools
import json
import tarfile
from pathlib import Path

import pandas as pd


SEP = "::"
LABEL_EXTENSIONS = (".cls", ".label", ".txt", ".json")


def is_virtual(path: str) -> bool:
    return SEP in path and not Path(path).exists()


@functools.lru_cache(maxsize=64)
def _tar_index(shard: str) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(shard) as tar:
        return {m.name: m for m in tar.getmembers() if m.isfile()}


@functools.lru_cache(maxsize=8)
def _table_column(container: str, column: str) -> list:
    return _read_arrow(Path(container)).column(column).to_pylist()


def _read_arrow(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix.lower() in (".parquet", ".pq"):
        return pq.read_table(path)
    with pa.memory_map(str(path)) as source:
        try:
            return pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            return pa.ipc.open_file(source).read_all()


def read_item(path: str) -> bytes:
    """The bytes of a contained item; ``OSError`` when it cannot be read."""
    container, member = path.rsplit(SEP, 1)
    if container.endswith(".tar"):
        info = _tar_index(container).get(member)
        if info is None:
            raise FileNotFoundError(f"{member} not in {container}")
        with tarfile.open(container) as tar:
            return tar.extractfile(info).read()
    row, column = member.split("/", 1)
    value = _table_column(container, column)[int(row)]
    if isinstance(value, dict):
        value = value.get("bytes") or (Path(value["path"]).read_bytes() if value.get("path") else None)
    if not value:
        raise OSError("no image bytes in this row")
    return bytes(value)


def _label(tar: tarfile.TarFile, info: tarfile.TarInfo) -> str | None:
    text = tar.extractfile(info).read().decode("utf-8", errors="replace").strip()
    if info.name.endswith(".json"):
        try:
            meta = json.loads(text)
        except ValueError:
            return None
        value = meta.get("label", meta.get("class")) if isinstance(meta, dict) else None
        return None if value is None else str(value)
    return text or None


def webdataset_items(shards: list[Path]) -> pd.DataFrame:
    """One row per image sample in the shards; the label comes from the sample's .cls/.txt/.json."""
    from explorer.images import IMAGE_EXTENSIONS  # images.py reads items through this module

    rows = []
    for shard in shards:
        samples: dict[str, dict] = {}
        with tarfile.open(shard) as tar:
            for info in tar.getmembers():
                if not info.isfile():
                    continue
                key, dot, ext = info.name.rpartition(".")
                ext = "." + ext.lower()
                sample = samples.setdefault(key, {})
                if ext in IMAGE_EXTENSIONS and "image" not in sample:
                    sample["image"] = info.name
                elif ext in LABEL_EXTENSIONS and "label" not in sample:
                    sample["label"] = _label(tar, info)
        for key, sample in samples.items():
            if "image" in sample:
                rows.append({"id": f"{shard.name}/{key}", "path": f"{shard.resolve()}{SEP}{sample['image']}",
                             "label": sample.get("label"), "set": shard.parent.name})
    return pd.DataFrame(rows)


def table_image_items(path: Path, column: str | None = None) -> pd.DataFrame:
    """One row per table row with image bytes in ``column`` (binary, or a {bytes, path} struct);
    the other scalar columns are kept as metadata."""
    import pyarrow as pa

    table = _read_arrow(path)
    if column is None:
        column = next((f.name for f in table.schema if _is_image_type(f.type)), None)
    if column is None:
        raise ValueError(f"{path.name} has no image column (binary, or a struct with 'bytes')")
    meta = table.drop_columns([f.name for f in table.schema if f.name == column or
                               pa.types.is_nested(f.type) or pa.types.is_binary(f.type)]).to_pandas()
    meta["path"] = [f"{path.resolve()}{SEP}{i}/{column}" for i in range(table.num_rows)]
    if "id" not in meta:
        meta["id"] = [f"{path.stem}/{i}" for i in range(table.num_rows)]
    meta["id"] = meta["id"].astype(str)
    if "set" not in meta:
        meta["set"] = path.parent.name if path.name.startswith("data-") else path.stem
    if "label" in meta:
        meta["label"] = meta["label"].astype(str)
    return meta


def _is_image_type(t) -> bool:
    import pyarrow as pa

    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return True
    return pa.types.is_struct(t) and any(t.field(i).name == "bytes" for i in range(t.num_fields))
