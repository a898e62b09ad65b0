"""Overview: per-set Vendi scores and a UMAP map of the chosen dataset."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from explorer.analysis import cached_group_scores, score_columns
from explorer.datasets import load_dataset, sample_data_dir
from explorer.embedders import CHOICES, resolve_embedder
from explorer.embedding import embed_dataset
from explorer.export import FORMATS, export_table, to_bytes
from explorer.flags import FlagStore
from explorer.images import load_image
from explorer.projection import umap_project
from explorer.sources import is_virtual
from explorer.vendi import DEFAULT_ORDERS, order_label

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


st.title("Overview")
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

st.subheader("Vendi scores per set")
st.caption("Cosine kernel on the embeddings, through the d×d covariance; eigenvalues below the "
           "stated tolerance are dropped. Scores grow with n: compare sets of equal size.")
table = memoized(("scores", source, embedder.cache_key(), tuple(chosen)),
                 lambda: cached_group_scores(result.embeddings[mask], items.loc[mask, "set"]))
cols = score_columns(DEFAULT_ORDERS)
for row in table.to_dict("records"):
    st.markdown(f"**{row['group']}** · {row['n']:,} items · rank {row['rank']}")
    for card, q, col in zip(st.columns(len(cols)), DEFAULT_ORDERS, cols):
        card.metric(f"VS q={order_label(q)}", f"{row[col]:.2f}")

st.subheader("Map")
color_by = st.sidebar.selectbox("Colour by", ["label", "set"], key="color_by")
shown = items[mask]
xy = coords[mask]
fig = go.Figure()
for name, index in sorted(shown.groupby(shown[color_by].astype(str)).indices.items()):
    fig.add_trace(go.Scattergl(
        x=xy[index, 0], y=xy[index, 1], mode="markers", name=name, marker={"size": 5, "opacity": 0.75},
        customdata=shown["id"].to_numpy()[index], hovertemplate="%{customdata}<extra>" + name + "</extra>"))
fig.update_layout(height=560, margin={"l": 0, "r": 0, "t": 10, "b": 0}, dragmode="lasso",
                  legend={"title": color_by}, xaxis={"visible": False}, yaxis={"visible": False})
event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"),
                        key="overview_map", width="stretch")

picked = [p["customdata"] for p in (event.selection.points if event else []) if "customdata" in p]
flags = FlagStore.for_dataset(dataset.source)
if picked:
    st.markdown(f"**{len(picked):,} selected** — showing up to 24")
    view = shown.set_index("id").loc[picked[:24]].reset_index()
    if "path" in view.columns:
        # items inside tar shards or tables are decoded here; files are served as they are
        images = [load_image(p) if is_virtual(p) else p for p in view["path"]]
        st.image(images, caption=[f"{s} · {lab}" for s, lab in zip(view["set"], view["label"])], width=72)
    else:
        st.dataframe(view[[c for c in ("id", "set", "label", "text") if c in view.columns]], hide_index=True)
    with st.form("flag_selection", clear_on_submit=True):
        reason = st.text_input("Reason", placeholder="e.g. off-topic, duplicate, blurry")
        if st.form_submit_button(f"Flag {len(picked):,} selected items", icon=":material/flag:"):
            added = flags.add(picked, reason=reason.strip() or "flagged in the app", source="selection")
            st.toast(f"{added:,} new flag(s) saved")
else:
    st.caption("Select points on the map (box or lasso) to see those items here and flag them.")

flagged = flags.reasons()
with st.expander(f"Flagged items: {len(flagged):,}", icon=":material/flag:", expanded=bool(flagged)):
    if flagged:
        table = export_table(items[items["id"].isin(flagged)], reasons=flagged)
        st.dataframe(table, hide_index=True, height=min(400, 40 + 35 * len(table)))
        for column, fmt in zip(st.columns(len(FORMATS)), FORMATS):
            column.download_button(f"Download {fmt.upper()}", to_bytes(table, fmt), file_name=f"flagged.{fmt}",
                                   key=f"download_{fmt}", icon=":material/download:")
    else:
        st.caption("Nothing flagged yet. Flags are saved with the dataset's cache and survive restarts.")
