"""The items of containers: webdataset tar shards and tables with image bytes, one row per
image, with ``path`` = ``CONTAINER::MEMBER`` as :mod:`explorer.data.sources` reads it.

Each lister returns the items and the rejects (``id``, ``reason``): a damaged shard, or a table
row naming a file outside the table's folder, is reported by name and never sinks the dataset.
"""
from __future__ import annotations

import json
import os
import re
import tarfile
from pathlib import Path

import pandas as pd

from explorer.data.access import path_problem
from explorer.data.images import IMAGE_EXTENSIONS
from explorer.data.sources import SEP, read_arrow, tar_members

LABEL_EXTENSIONS = ("cls", "label", "txt", "json")
# WebDataset's own rule (webdataset.tariterators.base_plus_ext): the key is the member's folder
# plus its basename up to the first dot; the rest, dots included, is the extension.
KEY_AND_EXTENSION = re.compile(r"^((?:.*/|)[^./]+)[.]([^/]*)$")


def split_key(name: str) -> tuple[str, str] | None:
    """``(key, extension)`` of a tar member as WebDataset pairs them, or None without a dot.

    >>> split_key("shard/x.seg.png"), split_key("x.cls"), split_key("README")
    (('shard/x', 'seg.png'), ('x', 'cls'), None)
    """
    m = KEY_AND_EXTENSION.match(name)
    return (m.group(1), m.group(2)) if m else None


def _label(tar: tarfile.TarFile, info: tarfile.TarInfo) -> str | None:
    try:
        member = tar.extractfile(info)
        text = member.read().decode("utf-8", errors="replace").strip() if member is not None else ""
    except tarfile.TarError:  # cut short by a damaged shard: the sample keeps no label
        return None
    if info.name.endswith(".json"):
        try:
            meta = json.loads(text)
        except ValueError:
            return None
        value = meta.get("label", meta.get("class")) if isinstance(meta, dict) else None
        return None if value is None else str(value)
    return text or None


def _image_rank(ext: str) -> int | None:
    """How well an extension names a sample's image: an exact image extension ("png") first, then
    a compound one ending in one ("seg.png"); None when it is no image."""
    if "." + ext in IMAGE_EXTENSIONS:
        return 0
    return 1 if "." + ext.rsplit(".", 1)[-1] in IMAGE_EXTENSIONS else None


def webdataset_items(shards: list[Path]) -> tuple[pd.DataFrame, list[dict]]:
    """One row per image sample in the shards, paired as WebDataset pairs members (the key ends at
    the first dot of the basename, so ``x.seg.png`` and ``x.cls`` are one sample); the label comes
    from the sample's .cls/.label/.txt/.json. A damaged (e.g. truncated) shard keeps the samples
    before the damage and is reported; one that cannot be opened at all is reported and skipped.
    """
    rows, rejected = [], []
    for shard in shards:
        samples: dict[str, dict] = {}
        try:
            with tarfile.open(shard) as tar:
                members, damage = tar_members(tar)
                for info in members:
                    parts = split_key(info.name) if info.isfile() else None
                    if parts is None:
                        continue
                    key, ext = parts[0], parts[1].lower()
                    sample = samples.setdefault(key, {})
                    rank = _image_rank(ext)
                    if rank is not None and rank < sample.get("rank", 2):
                        sample["image"], sample["rank"] = info.name, rank
                    elif ext in LABEL_EXTENSIONS and "label" not in sample:
                        sample["label"] = _label(tar, info)
        except (tarfile.TarError, OSError) as err:
            # tarfile lists every compression it tried, one per line: the first line says it
            why = (str(err).splitlines() or [type(err).__name__])[0].rstrip(":")
            rejected.append({"id": shard.name, "reason": f"{shard.name}: cannot be read as a tar shard ({why})"})
            continue
        if damage is not None:
            rejected.append({"id": shard.name, "reason": f"{shard.name} is damaged after {len(members)} member(s) "
                                                         f"({damage}): the samples after that are skipped"})
        for key, sample in samples.items():
            if "image" in sample:
                rows.append({"id": f"{shard.name}/{key}", "path": f"{shard.resolve()}{SEP}{sample['image']}",
                             "label": sample.get("label"), "set": shard.parent.name})
    return pd.DataFrame(rows), rejected


def table_image_items(path: Path, column: str | None = None, *,
                      allow_outside: bool = False) -> tuple[pd.DataFrame, list[dict]]:
    """One row per table row with image bytes in ``column`` (binary, or a {bytes, path} struct);
    the other scalar columns are kept as metadata. A struct row without bytes names a file
    instead (relative to the table's folder): it becomes an item on that file when the path
    policy allows it (inside the folder, or anywhere with ``allow_outside``), and is rejected
    with its row number (0-based, as the ids count) otherwise.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    table = read_arrow(path)
    if column is None:
        column = next((f.name for f in table.schema if is_image_type(f.type)), None)
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
    rejected = []
    values = table.column(column)
    if pa.types.is_struct(values.type) and values.type.get_field_index("path") >= 0:
        stored = pc.binary_length(pc.struct_field(values, "bytes")).to_numpy(zero_copy_only=False)
        folder = path.resolve().parent
        bad = []
        for i, named in enumerate(pc.struct_field(values, "path").to_pylist()):
            if not named or stored[i] > 0:  # bytes win: the path is then only the original's name
                continue
            target = os.path.normpath(os.path.join(folder, named))
            problem = path_problem(target, folder, allow_outside=allow_outside)
            if problem:
                bad.append(i)
                rejected.append({"id": meta["id"].iloc[i], "reason": f"row {i} of {path.name}: {problem}"})
            else:
                meta.loc[i, "path"] = target
        meta = meta.drop(index=bad).reset_index(drop=True)
    return meta, rejected


def is_image_type(t) -> bool:
    import pyarrow as pa

    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return True
    return pa.types.is_struct(t) and any(t.field(i).name == "bytes" for i in range(t.num_fields))
