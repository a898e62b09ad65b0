"""Download buttons whose files are made when a visitor clicks, not on every rerun."""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from explorer.store.export import FORMATS, to_bytes


def download_buttons(make: Callable[[], pd.DataFrame], *, label: str, stem: str, key: str,
                     help: str | None = None) -> None:
    """One button per export format (CSV neutralises spreadsheet formulas, Parquet and JSON are
    exact). `make` builds the table only when a button is clicked, on a server thread (Streamlit's
    deferred download): made eagerly, the flags' exports alone took 14% of the server's CPU under
    load (py-spy, benchmarks/load.py), for files nobody asked for. A click does not rerun the page.

    Example (in a page): ``download_buttons(lambda: export_table(items), label="Audit", stem="audit",
    key="audit_download")``.
    """
    for column, fmt in zip(st.columns(len(FORMATS)), FORMATS):
        column.download_button(f"{label} {fmt.upper()}".strip(), _maker(make, fmt), file_name=f"{stem}.{fmt}",
                               key=f"{key}_{fmt}", icon=":material/download:", on_click="ignore",
                               help=help and f"{help} as {fmt}")


def _maker(make: Callable[[], pd.DataFrame], fmt: str) -> Callable[[], bytes]:
    return lambda: to_bytes(make(), fmt)
