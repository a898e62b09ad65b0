"""Shared by the pages: the sidebar's dataset, embedder and set choices, and the heavy results
(embeddings, map, spectrum) shared by every session of the process (explorer.store.work) on top
of the library's disk caches."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from explorer.data.datasets import Dataset
from explorer.embed.models.base import Embedder
from explorer.embed.pipeline import EmbeddingResult, embed_dataset
from explorer.embed.registry import resolve_embedder
from explorer.maps.clusters import kmeans_labels
from explorer.maps.projection import QUALITIES, UmapParams, map_quality, umap_project
from explorer.metrics.kernel_rows import KernelInfo, kernel_rows
from explorer.metrics.vendi import cached_analysis
from explorer.store.thumbnails import thumbnail_files
from explorer.store.work import JobProgress, SharedWork
from pages._flags import STORE_ERRORS, problem_line
from pages._grid import image_grid
from pages._notices import flagged_message, notify, plural
from pages._sidebar import Choice


@st.cache_resource(show_spinner=False)
def cached_embedder(name: str, modality: str):
    return resolve_embedder(name, modality=modality)


def _default_memo_bytes() -> int:
    """A quarter of the machine's memory, at least 1.5 GiB: a million 512-d embeddings (2 GB)
    must stay in memory between reruns."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        physical = 0
    return max(1536 << 20, physical // 4)


MEMO_BYTES = int(os.environ.get("VENDISCOPE_MEMO_BYTES", 0)) or _default_memo_bytes()  # per server process


@st.cache_resource(show_spinner=False)
def shared_work() -> SharedWork:
    """Heavy results of this server process, shared by every session: one computation per key
    (a second session waits for the first), cancelled when nobody waits, kept within MEMO_BYTES.
    Not st.cache_data: a computation reports progress to every session that waits for it."""
    return SharedWork(max_bytes=MEMO_BYTES, workers=2)


def memoized(key: tuple, compute):
    """``compute()``, shared under ``key`` and run in this session's thread (cheap work, which
    must not queue behind heavy jobs). Keys must be cheap to build: names, tuples, short hashes of
    small arrays, never the embeddings themselves."""
    return shared_work().run(key, lambda job: compute(), inline=True)


def memoized_aside(key: tuple, compute) -> Callable[[], object]:
    """:func:`memoized` started on a thread of its own; returns a function that waits for the
    result. The page renders meanwhile: numpy's linear algebra releases the GIL, so a lasso's
    eigendecomposition runs on one core while the grid and charts are laid out on the other.
    Not the shared pool, where it could queue behind a map being refined. ``compute`` must not
    call Streamlit (its thread has no script context)."""
    work = shared_work()
    if (value := work.get(key)) is not None:
        return lambda: value
    result: Future = Future()

    def run() -> None:
        try:
            result.set_result(work.run(key, lambda job: compute(), inline=True))
        except BaseException as err:  # handed to the page, which raises it where it waits
            result.set_exception(err)

    threading.Thread(target=run, name="vendiscope-aside", daemon=True).start()
    return result.result


def bar_chart(parts: pd.Series, *, where=st, height: int = 160) -> None:
    """Horizontal bars of a named count per category (index), in the index's order. A Vega-Lite
    spec, not st.bar_chart: that builds and validates an Altair chart, measured 21 ms a chart
    against 3 ms, inside the fragment a lasso reruns."""
    frame = pd.DataFrame({"name": parts.index.astype(str), "count": parts.to_numpy()})
    where.vega_lite_chart(frame, {
        "mark": {"type": "bar"}, "height": height,
        "encoding": {"y": {"field": "name", "type": "nominal", "sort": None, "title": parts.index.name},
                     "x": {"field": "count", "type": "quantitative", "title": parts.name}},
    }, width="stretch")


def with_progress(key: tuple, compute, *, label: str):
    """``compute(job)``, shared under ``key`` and run in the worker pool, while this page shows
    its progress (stage, count, rate, time left) and stays responsive; a session that leaves
    stops waiting, and the work is cancelled once nobody waits for it."""
    work = shared_work()
    value = work.get(key)
    if value is not None:
        return value
    bar = st.empty()

    def tick(progress: JobProgress) -> None:
        bar.progress(progress.fraction, text=f"{label} · {progress.describe()}")

    value = work.run(key, compute, on_tick=tick)
    bar.empty()
    return value


def in_stage(stage: str, compute):
    """``compute()`` as a :func:`with_progress` job that names its stage, for library work that
    reports no progress of its own: the page then shows what it waits for, not a blank."""
    def run(job):
        job.report(0, 0, stage)
        return compute()

    return run


def memo_get(key: tuple):
    """The shared result under ``key``, or None (nothing is computed)."""
    return shared_work().get(key)


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
    map_note: str  # how the map was made (draft or full, and how)
    kernel: str = "centred"  # of every Vendi number (the sidebar's choice)

    @property
    def key(self) -> tuple:
        """What every shared result of the chosen sets depends on, the kernel included."""
        return (self.source, self.embedder.cache_key(), tuple(self.chosen), self.kernel)


def prepare() -> PageState:
    """The sidebar's dataset embedded and mapped; stops the page with a message when something
    is missing."""
    choice: Choice | None = st.session_state.get("_choice")
    if choice is None:
        st.info("Choose a dataset in the sidebar.")
        st.stop()
    dataset, source = choice.dataset, choice.source
    modality = dataset.modality
    embedder, notice = cached_embedder(choice.embedder_name, modality)
    if notice and dataset.vectors is None:  # one compact line; the reason on demand
        st.caption(f":material/cloud_off: Offline: using {embedder.name}", help=notice)

    embed_key = ("embed", source, embedder.cache_key())
    draft_key, full_key = (("umap", source, embedder.cache_key(), q) for q in QUALITIES)
    result, (refined, full) = memo_get(embed_key), shared_work().background(full_key)
    coords = full if refined == "done" else memo_get(draft_key)
    if result is None or coords is None or not len(result.items):
        result, coords = _embed_and_project(dataset, embedder, embed_key, draft_key)
    map_note = _refine_map(result, full_key, refined)
    items = result.items
    st.caption(f"**{dataset.name}** · {plural(len(items), 'item')} embedded with {result.embedder}"
               + (f" · {plural(len(result.skipped), 'item')} skipped" if len(result.skipped) else ""))
    if len(result.skipped):
        with st.expander(f"{plural(len(result.skipped), 'item')} skipped, with the reasons", icon=":material/warning:"):
            st.dataframe(readable(result.skipped), hide_index=True)
    def choose() -> tuple[list[str], np.ndarray]:  # two passes over every item's set: once per choice
        names = items["set"].astype(str)
        there = set(names.unique())
        present = [s for s in choice.sets if s in there]
        mask = names.isin(present).to_numpy()
        mask.setflags(write=False)  # shared by every page and session
        return present, mask

    chosen, mask = memoized(("chosen-sets", source, embedder.cache_key(), tuple(choice.sets)), choose)
    if not chosen:
        st.info("Choose at least one set in the sidebar.")
        st.stop()
    return PageState(source, dataset, embedder, result, coords, items, chosen, mask, map_note, choice.kernel)


def _embed_and_project(dataset: Dataset, embedder: Embedder, embed_key: tuple, draft_key: tuple):
    """Embeddings and the first map (the draft; for small data the full map), made or read from
    the disk caches with their progress on the page."""
    result = with_progress(embed_key, lambda job: embed_dataset(dataset, embedder, progress=job.report),
                           label=f"Embedding {dataset.name} ({plural(len(dataset), 'item')})")
    if len(result.items) == 0:
        st.error(f"No item of {dataset.name} could be embedded; the reasons:", icon=":material/error:")
        st.dataframe(readable(result.skipped), hide_index=True)
        st.stop()
    coords = with_progress(draft_key, lambda job: umap_project(result.embeddings, quality="draft",
                                                               progress=job.report),
                           label=f"Mapping {plural(len(result.items), 'item')}")
    return result, coords


def _refine_map(result: EmbeddingResult, full_key: tuple, refined: str) -> str:
    """Start the full map in the background when the shown one is a draft; while it runs, a
    small fragment polls it and reruns the page once it is ready. Returns how the map was made."""
    params, n = UmapParams(), len(result.items)
    if map_quality(n, params, "draft") == "full":
        return f"UMAP of all {n:,} items"
    if refined == "done":
        return f"UMAP of all {n:,} items, refined from the draft"
    if refined == "none":
        shared_work().start(full_key, lambda job: umap_project(result.embeddings, quality="full",
                                                                progress=job.report))
    if refined == "failed":
        st.warning(f"The full map could not be made ({shared_work().background(full_key)[1]}); showing the draft.",
                   icon=":material/warning:")
    else:
        _map_progress(full_key)
    return (f"draft: UMAP of {params.landmarks:,} landmark items, the other {n - params.landmarks:,} placed at "
            f"their {params.place_k} nearest landmarks; the full map is being made")


@st.fragment(run_every=2.0)
def _map_progress(full_key: tuple) -> None:
    state, value = shared_work().background(full_key)
    if state == "done":
        st.rerun(scope="app")
    if state == "running":
        st.progress(value.fraction, text=f"Refining the map in the background · {value.describe()}")


def kernel_of(state: PageState) -> tuple[np.ndarray, KernelInfo]:
    """The chosen sets' rows under the sidebar's kernel (their cosine is the kernel; the centre and
    bandwidth are the chosen sets' pooled ones), with how they were made. Plain cosine: the
    embeddings themselves when every set is chosen, else their chosen rows, copied once and kept."""
    if state.kernel == "cosine":
        if state.mask.all():
            return state.result.embeddings, KernelInfo("cosine")
        return memoized(("cosine-rows", *state.key), lambda: state.result.embeddings[state.mask]), KernelInfo("cosine")
    return with_progress(("kernel-rows", *state.key),
                         in_stage(f"{state.kernel} kernel rows",
                                  lambda: kernel_rows(state.result.embeddings[state.mask], kernel=state.kernel)),
                         label=f"Preparing the {state.kernel} kernel of {plural(int(state.mask.sum()), 'item')}")


def kernel_note(info: KernelInfo) -> str:
    """How a number was made, for captions: the kernel, its centre or bandwidth, and what an
    approximation means for the orders below 1."""
    if info.kernel == "rbf":
        return (f"{info.describe()}; the features cap the rank at {2 * (info.n_features or 0):,}, so orders below 1 "
                "are unreliable on more items than that")
    return info.describe()


def analysis_of(state: PageState) -> dict:
    """Spectrum, modes and per-item contributions of the chosen sets under the sidebar's kernel
    (disk-cached); ``"kernel_note"`` says how they were made."""
    if (done := memo_get(("analysis", *state.key))) is not None:
        return done  # without asking for the kernel's rows, which may have left the memo
    n = int(state.mask.sum())
    rows, info = kernel_of(state)  # made here, in the page's thread: it may show its own progress

    def compute() -> dict:  # the rows are the kernel: their plain cosine analysis is the kernel's
        return {**cached_analysis(rows), "kernel_note": kernel_note(info)}

    return with_progress(("analysis", *state.key), in_stage("spectrum, modes and per-item contributions", compute),
                         label=f"Analysing {plural(n, 'item')}")


def clusters_of(state: PageState, *, k: int) -> np.ndarray:
    """k-means cluster ids (``"c0"``...) of the chosen sets' items, one per item, made once per k."""
    k = max(1, min(k, int(state.mask.sum())))
    return with_progress(("clusters", state.source, state.embedder.cache_key(), tuple(state.chosen), k),
                         in_stage(f"k-means, k = {k}", lambda: kmeans_labels(state.result.embeddings[state.mask], k=k)),
                         label=f"Clustering {plural(int(state.mask.sum()), 'item')}")


def thumbnails(rows: pd.DataFrame, *, width: int) -> list[str]:
    """Cached thumbnail files of the image items in ``rows``, made ``width`` pixels wide at most:
    grids send the small files as they are instead of re-encoding the originals every rerun. The
    items' content digests find the cached files without reading the originals."""
    digests = rows["digest"].tolist() if "digest" in rows.columns else None
    return [str(p) for p in thumbnail_files(rows["path"].tolist(), size=width, digests=digests)]


def item_grid(view: pd.DataFrame, *, width: int = 72, extra: list[str] | None = None) -> None:
    """Thumbnails (images) or a table (texts, vectors) of the items in ``view``."""
    if "path" in view.columns:
        captions = [f"{s} · {lab}" + "".join(f" · {view[c].iloc[i]:.2f}" for c in (extra or []))
                    for i, (s, lab) in enumerate(zip(view["set"], view["label"].fillna("—")))]
        image_grid(thumbnails(view, width=width), captions, width=width)
    else:
        st.dataframe(readable(view[[c for c in ("id", "set", "label", "text", *(extra or [])) if c in view.columns]]),
                     hide_index=True)


PAGE_SIZE = 24  # items a grid shows at once


def page_slice(n: int, *, key: str, size: int = PAGE_SIZE) -> slice:
    """The part of ``n`` ordered items that the grid shows: a page chooser (``key``) appears when
    they fill more than one page. The chooser is keyed by ``n`` too, so a shorter list never
    keeps a page number beyond its end."""
    pages = max(1, -(-n // size))
    page = int(st.number_input(f"Page (of {pages:,})", 1, pages, 1, key=f"{key}:{n}")) if pages > 1 else 1
    return slice((page - 1) * size, page * size)


def flag_form(ids: list[str], flags, *, key: str = "flag_selection") -> None:
    """Flag ``ids`` with a reason typed by the user. Called inside a map's fragment: a new flag
    reruns the whole page, so that the sidebar's flags and the "only flagged" filter show it."""
    with st.form(key, clear_on_submit=True):
        reason = st.text_input("Reason", placeholder="e.g. off-topic, duplicate, blurry")
        if st.form_submit_button(f"Flag {plural(len(ids), 'selected item')}", icon=":material/flag:"):
            try:
                added = flags.add(ids, reason=reason.strip() or "flagged in the app", source="selection")
            except STORE_ERRORS as err:  # disk full, a locked or damaged database: said, nothing claimed saved
                st.error(f"The flags were not saved: {problem_line(err)}", icon=":material/error:")
            else:
                notify(flagged_message(added, len(ids)))
                st.rerun(scope="app")


NEUTRAL = "#9aa5b1"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")


def set_colours(names, *, reference: str | None = None) -> dict[str, str]:
    """A distinct colour per set, always the same for the same name; the reference (the real
    data) in a neutral grey."""
    import zlib

    out, used = {}, set()
    for name in sorted(map(str, names)):
        if name == reference:
            out[name] = NEUTRAL
            continue
        slot = zlib.crc32(name.encode()) % len(PALETTE)
        while PALETTE[slot] in used and len(used) < len(PALETTE):
            slot = (slot + 1) % len(PALETTE)
        used.add(PALETTE[slot])
        out[name] = PALETTE[slot]
    return out


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """A table for people: missing text shows as an empty cell, not "None" or "nan"."""
    text = [c for c in table.columns if table[c].dtype == object or pd.api.types.is_string_dtype(table[c])]
    return table.assign(**{c: table[c].fillna("").astype(str).replace({"None": "", "nan": ""}) for c in text})
