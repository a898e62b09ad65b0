"""Reading items stored inside containers: webdataset tar shards, Parquet/Arrow tables with an
image column (as Hugging Face datasets write them). Such an item's ``path`` is
``CONTAINER::MEMBER``: a tar member name, or ``row/column`` of a table; :func:`read_item` returns
its bytes. :mod:`explorer.data.containers` lists the items of a container.
"""
from __future__ import annotations

import functools
import tarfile
from pathlib import Path

SEP = "::"


def is_virtual(path: str) -> bool:
    return SEP in path and not Path(path).exists()


@functools.lru_cache(maxsize=64)
def _tar_index(shard: str) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(shard) as tar:
        return {m.name: m for m in tar.getmembers() if m.isfile()}


@functools.lru_cache(maxsize=8)
def _table_column(container: str, column: str) -> list:
    return read_arrow(Path(container)).column(column).to_pylist()


def read_arrow(path: Path):
    """A whole Parquet or Arrow (stream or file) table."""
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
            member_file = tar.extractfile(info)
            if member_file is None:
                raise OSError(f"{member} in {container} is not a regular file")
            return member_file.read()
    row, column = member.split("/", 1)
    value = _table_column(container, column)[int(row)]
    if isinstance(value, dict):
        value = value.get("bytes") or (Path(value["path"]).read_bytes() if value.get("path") else None)
    if not value:
        raise OSError("no image bytes in this row")
    return bytes(value)
