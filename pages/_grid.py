"""Grids of thumbnails as one HTML element with the small JPEGs inline."""
from __future__ import annotations

import base64
import html
from pathlib import Path

import streamlit as st

GRID_CLASS = "vs-grid"
_STYLE = (f"<style>.{GRID_CLASS}{{display:flex;flex-wrap:wrap;gap:8px 10px;align-items:flex-start}}"
          f".{GRID_CLASS} figure{{margin:0}}.{GRID_CLASS} img{{display:block;margin:auto}}"
          f".{GRID_CLASS} figcaption{{font-size:0.72rem;line-height:1.2;opacity:0.7;text-align:center;"
          f"overflow-wrap:anywhere;margin-top:2px}}</style>")


def image_grid(files: list[str | Path], captions: list[str], *, width: int) -> None:
    """Thumbnail files (JPEGs at most ``width`` wide) with a caption under each, in rows; each is
    shown fitted into a ``width`` square (a small original is enlarged, as st.image did).

    One element with the images inline (data URIs) rather than st.image: st.image makes every
    thumbnail a media file that the browser fetches with its own HTTP request, and under load
    (benchmarks/load.py, py-spy) serving those through the server's middleware took a third of
    its CPU on the pages with grids. Inline, a grid is one WebSocket message (which the browser's
    message cache keeps for two reruns). Captions are escaped: labels and set names come from the
    user's data.

    Example (in a page): ``image_grid(thumbnails(rows, width=72), ["real · 3", "gmm · 7"], width=72)``.
    """
    cells = "".join(
        f'<figure style="width:{width}px"><img style="width:{width}px;height:{width}px;object-fit:contain" '
        f'alt="{html.escape(c)}" src="data:image/jpeg;base64,'
        f'{base64.b64encode(Path(f).read_bytes()).decode()}"><figcaption>{html.escape(c)}</figcaption></figure>'
        for f, c in zip(files, captions))
    st.html(f'{_STYLE}<div class="{GRID_CLASS}">{cells}</div>')
