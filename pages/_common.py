"""Shared by the pages: the sidebar's dataset, embedder and set choices, and the heavy results
(embeddings, map, spectrum) memoised per process on top of the library's disk caches."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from explorer.analysis import cached_analysis
from explorer.datasets import Dataset, load_dataset, sample_data_dir
from explorer.embedders import CHOICES, Embedder, resolve_embedder
from explorer.embedding import EmbeddingResult, embed_dataset
from explorer.images import load_image
from explorer.projection import umap_project
from explorer.sources import is_virtual

SAMPLE = "Sample: handwritten digits + model samples"
OTHER = "Another path…"


@st.cache_resource(show_spinner=False)
def cached_dataset(source: str):
    return load_dataset(source)


@st.cache_resource(show_spinner=False)
def cached_embedder(name: str, modality: str):
    return resolve_embedder(name, modality=modality)


@st.cache_resource(show_spinner=False)
def results_memo() -> dict:
    """Per-process memo of heavy results. A plain dict rather than st.cache_data, because the
    computations report progress into page elements, which Streamlit's caches cannot replay."""
    return {}


def memoized(key: tuple, compute):
    memo = results_memo()
    if key not in memo:
        if len(memo) >= 16:
            memo.pop(next(iter(memo)))
        memo[key] = compute()
    return memo[key]


def pick_source() -> str | None:
    options = [SAMPLE, *st.session_state.get("cli_sources", []), OTHER]
    choice = st.sidebar.selectbox("Dataset", options, key="source_choice")
    if choice == SAMPLE:
        return str(sample_data_dir())
    if choice == OTHER:
        path = st.sidebar.text_input("Image folder, manifest, text file or embeddings", key="source_path")
        return path.strip() or None
    return choice


@dataclass
class PageState:
    source: str
    dataset: Dataset
    embedder: Embedder
    result: EmbeddingResult
    coords: np.ndarray
    items: pd.DataFrame
    chosen: list[str]
    mask: np.ndarray


def prepare() -> PageState:
    """Sidebar + dataset + embeddings + map; stops the page with a message when something is missing."""
    source = pick_source()
    embedder_name = st.sidebar.selectbox(
        "Embedder", CHOICES, key="embedder",
        help="auto: open_clip ViT-B-32 when its weights can be had, else efficientnet-lite0")
    if not source:
        st.info("Enter the path of an image folder or a manifest in the sidebar.")
        st.stop()

    try:
        dataset = cached_dataset(source)
    except (FileNotFoundError, ValueError) as err:
        st.error(f"Cannot open {source}: {err}")
        st.stop()

    modality = "text" if (dataset.items["kind"] == "text").any() else "image"
    embedder, notice = cached_embedder(embedder_name, modality)
    if notice and dataset.vectors is None:
        st.warning(notice, icon=":material/cloud_off:")

    with st.status(f"Preparing {dataset.name} ({len(dataset):,} items)…", expanded=False) as status:
        bar = st.progress(0.0, text="embedding")

        def on_embed(done: int, total: int, message: str) -> None:
            bar.progress(done / total if total else 1.0, text=f"{message}: {done:,}/{total:,}")

        result = memoized(("embed", source, embedder.cache_key()),
                          lambda: embed_dataset(dataset, embedder, progress=on_embed))
        bar.progress(1.0, text=f"embedded {len(result.items):,} items with {result.embedder}")
        if len(result.items) == 0:
            status.update(label="No item could be embedded", state="error")
            st.dataframe(result.skipped)
            st.stop()
        status.write("Projecting with UMAP (cached after the first time)…")
        coords = memoized(("umap", source, embedder.cache_key()),
                          lambda: umap_project(result.embeddings, progress=status.write))
        status.update(label=f"{dataset.name}: {len(result.items):,} items embedded with {result.embedder}",
                      state="complete")

    if len(result.skipped):
        with st.expander(f"{len(result.skipped)} item(s) skipped", icon=":material/warning:"):
            st.dataframe(result.skipped, hide_index=True)

    items = result.items
    sets = sorted(items["set"].astype(str).unique())
    chosen = st.sidebar.multiselect("Sets", sets, default=sets, key=f"sets:{source}")  # per dataset
    if not chosen:
        st.info("Choose at least one set.")
        st.stop()
    mask = items["set"].astype(str).isin(chosen).to_numpy()
    return PageState(source, dataset, embedder, result, coords, items, chosen, mask)


def analysis_of(state: PageState) -> dict:
    """Spectrum, modes and per-item contributions of the chosen sets (disk-cached)."""
    x = state.result.embeddings[state.mask]
    return memoized(("analysis", state.source, state.embedder.cache_key(), tuple(state.chosen)),
                    lambda: cached_analysis(x))


def thumbnails(paths) -> list:
    """Images for st.image: files as they are, items inside containers decoded."""
    return [load_image(p) if is_virtual(p) else p for p in paths]


def item_grid(view: pd.DataFrame, *, width: int = 72, extra: list[str] | None = None) -> None:
    """Thumbnails (images) or a table (texts, vectors) of the items in ``view``."""
    if "path" in view.columns:
        captions = [f"{s} · {lab}" + "".join(f" · {view[c].iloc[i]:.2f}" for c in (extra or []))
                    for i, (s, lab) in enumerate(zip(view["set"], view["label"].fillna("—")))]
        st.image(thumbnails(view["path"]), caption=captions, width=width)
    else:
        st.dataframe(view[[c for c in ("id", "set", "label", "text", *(extra or [])) if c in view.columns]],
                     hide_index=True)


def flag_form(ids: list[str], flags, *, key: str = "flag_selection") -> None:
    """Flag ``ids`` with a reason typed by the user."""
    with st.form(key, clear_on_submit=True):
        reason = st.text_input("Reason", placeholder="e.g. off-topic, duplicate, blurry")
        if st.form_submit_button(f"Flag {len(ids):,} selected items", icon=":material/flag:"):
            added = flags.add(ids, reason=reason.strip() or "flagged in the app", source="selection")
            st.toast(f"{added:,} new flag(s) saved")
