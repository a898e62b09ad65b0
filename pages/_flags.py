"""The flags of the open dataset, on every page (a sidebar popover drawn by app.py): the list,
unflagging, renaming a reason, and exports."""
from __future__ import annotations

import logging
import sqlite3

import pandas as pd
import streamlit as st

from explorer.store.export import export_table
from explorer.store.flags import FlagStore
from pages._downloads import download_buttons
from pages._notices import notify, plural
from pages._sidebar import Choice

STORE_ERRORS = (OSError, sqlite3.Error)  # disk full, a read-only or damaged flag database or cache
log = logging.getLogger("vendiscope.app")


def problem_line(err: Exception) -> str:
    """The error in one line for the visitor; the traceback goes to the server's log, not the
    page (no server paths or code shown to whoever opens the app).

    >>> problem_line(OSError(28, "No space left on device", "/c/flags/x.sqlite"))
    'No space left on device'
    """
    log.warning("shown to the visitor as one line", exc_info=err)
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return text.splitlines()[0]


def flags_panel(choice: Choice) -> None:
    """The sidebar's flags popover; a flag store that cannot be used is said in one line there,
    and the page below still opens."""
    try:
        _flags_panel(choice)
    except STORE_ERRORS as err:
        st.sidebar.error(f"The flags cannot be read or saved: {problem_line(err)}", icon=":material/error:")


def _flags_panel(choice: Choice) -> None:
    flags = FlagStore.for_dataset(choice.dataset.source)
    table = flags.table()
    with st.sidebar.popover(f"Flags: {table['id'].nunique():,} item(s)", icon=":material/flag:", width="stretch"):
        if table.empty:
            st.caption("Nothing flagged yet. Flags are saved with the dataset's cache and survive restarts.")
            return
        st.dataframe(table[["id", "reason", "source"]], hide_index=True, height=min(300, 40 + 35 * len(table)))
        labels = [f"{i} — {r}" for i, r in zip(table["id"], table["reason"])]
        picked = st.multiselect("Flags to remove", labels, key="unflag_pick")
        if st.button(f"Unflag {len(picked)}", key="unflag", disabled=not picked, icon=":material/flag_check:"):
            rows = [labels.index(p) for p in picked]
            removed = sum(flags.remove([table["id"].iloc[r]], reason=table["reason"].iloc[r]) for r in rows)
            notify(f"Removed {plural(removed, 'flag')}")
            st.rerun()
        old = st.selectbox("Reason to rename", sorted(table["reason"].unique()), key="rename_from")
        new = st.text_input("New reason", key="rename_to")
        if st.button("Rename", key="rename", disabled=not new.strip()):
            ids = table.loc[table["reason"] == old, "id"].tolist()
            notify(f"Renamed {plural(flags.rename(ids, reason=old, to=new), 'flag')}")
            st.rerun()
        download_buttons(lambda: flagged_export(flags, choice.dataset.items), label="", stem="flagged",
                         key="download", help="Flagged items")


def flagged_export(flags: FlagStore, items) -> pd.DataFrame:
    """The flagged items with their reasons, as the flags stand when the download is asked for."""
    reasons = flags.reasons()
    return export_table(items[items["id"].isin(reasons)], reasons=reasons)
