"""How a comparison's or an audit's results are kept: one Parquet file, the per-item table with
the summary (JSON) in its metadata, so the pair is written and read as one."""
from __future__ import annotations

import io
import json

import pandas as pd

from explorer.store.cache import Codec


def pack(value: tuple[dict, pd.DataFrame]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    summary, table = value
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           b"vendiscope.summary": json.dumps(summary).encode()})
    buf = io.BytesIO()
    pq.write_table(arrow, buf)
    return buf.getvalue()


def unpack(data: bytes) -> tuple[dict, pd.DataFrame]:
    import pyarrow.parquet as pq

    arrow = pq.read_table(io.BytesIO(data))
    summary = json.loads(arrow.schema.metadata[b"vendiscope.summary"])
    table = arrow.to_pandas()
    for column in ("flags", "reasons"):  # Arrow lists come back as arrays: make them plain lists again
        table[column] = [list(v) for v in table[column]]
    return summary, table


# a comparison or an audit is one file: the per-item table as Parquet, the summary in its metadata
SUMMARY_AND_TABLE = Codec("parquet", pack, unpack)
