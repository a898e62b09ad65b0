"""Reading items stored inside containers: webdataset tar shards, Parquet/Arrow tables with an
image column (as Hugging Face datasets write them). Such an item's ``path`` is
``CONTAINER::MEMBER``: a tar member name, or ``row/column`` of a table; :func:`read_item` returns
its bytes. :mod:`explorer.data.containers` lists the items of a container.
"""
from __future__ import annotations

import functools
import io
import os
import tarfile
from pathlib import Path

SEP = "::"


def is_virtual(path: str) -> bool:
    return SEP in path and not Path(path).exists()


def tar_members(tar: tarfile.TarFile) -> tuple[list[tarfile.TarInfo], tarfile.TarError | None]:
    """The members of an open shard up to any damage, and the error that stopped the reading
    (None for a whole shard): a truncated shard keeps the members before the cut."""
    members: list[tarfile.TarInfo] = []
    try:
        for info in tar:  # headers one by one: getmembers() would drop them all on damage
            members.append(info)
    except tarfile.TarError as err:
        return members, err
    # tarfile ends quietly at a header cut short; in an uncompressed shard the size tells
    if isinstance(tar.fileobj, io.BufferedReader):
        left = os.fstat(tar.fileobj.fileno()).st_size - tar.offset
        if 0 < left < tarfile.BLOCKSIZE:
            return members, tarfile.ReadError("unexpected end of data in a member header")
    return members, None


@functools.lru_cache(maxsize=64)
def _tar_index(shard: str) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(shard) as tar:
        return {m.name: m for m in tar_members(tar)[0] if m.isfile()}


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
    """The bytes of a contained item; ``OSError`` when it cannot be read (a damaged shard too).

    Only bytes stored in the container are read. A table row that names a file instead
    (``{bytes: null, path: X}``) is listed as that file, after the dataset's path policy
    (:func:`explorer.data.containers.table_image_items`); it is never followed from here, where no
    policy applies.
    """
    container, member = path.rsplit(SEP, 1)
    if container.endswith(".tar"):
        try:
            info = _tar_index(container).get(member)
            if info is None:
                raise FileNotFoundError(f"{member} not in {container}")
            with tarfile.open(container) as tar:
                member_file = tar.extractfile(info)
                if member_file is None:
                    raise OSError(f"{member} in {container} is not a regular file")
                return member_file.read()
        except tarfile.TarError as err:  # not an OSError: callers skip items on OSError
            raise OSError(f"{member} in {Path(container).name}: {err}") from err
    row, column = member.split("/", 1)
    value = _table_column(container, column)[int(row)]
    if isinstance(value, dict):
        value = value.get("bytes")
    if not value:
        raise OSError("no image bytes in this row")
    return bytes(value)
