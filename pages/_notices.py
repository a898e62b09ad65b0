"""Short messages for people: counted nouns, and toasts that survive the rerun that follows
the action they report."""
from __future__ import annotations

import streamlit as st


def plural(n: int, noun: str) -> str:
    """``1 item``, ``2 items``, ``1,024 items``.

    >>> plural(1, "item"), plural(1024, "flag")
    ('1 item', '1,024 flags')
    """
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def flagged_message(added: int, asked: int) -> str:
    """What flagging ``asked`` items did, when ``added`` of them were not flagged so before.

    >>> flagged_message(3, 3), flagged_message(1, 4), flagged_message(0, 2)
    ('Flagged 3 items', 'Flagged 1 item (3 were already flagged for this reason)', 'Already flagged: 2 items')
    """
    if added == 0:
        return f"Already flagged: {plural(asked, 'item')}"
    if added >= asked:
        return f"Flagged {plural(added, 'item')}"
    left = asked - added
    already = f"{left:,} {'was' if left == 1 else 'were'} already flagged for this reason"
    return f"Flagged {plural(added, 'item')} ({already})"


def notify(message: str) -> None:
    """A toast shown at the start of the next run: one raised just before ``st.rerun()`` can be
    lost with the page it was sent to."""
    st.session_state.setdefault("_notices", []).append(message)


def show_notices() -> None:
    """The toasts :func:`notify` kept for this run (app.py calls it once per run)."""
    for message in st.session_state.pop("_notices", []):
        st.toast(message, icon=":material/check_circle:")
