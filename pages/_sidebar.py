"""The choices every page shares (dataset, embedder, sets, colour), drawn once per run by app.py
so they stay put across pages, and mirrored in the URL (st.query_params) so a link or a reload
reopens the same view. A URL can only pick what the app may open (explorer.data.access)."""
from __future__ import annotations

import tarfile
from dataclasses import dataclass

import streamlit as st

from explorer.cli.app import AppSettings
from explorer.data.access import PathRefused
from explorer.data.datasets import Dataset, load_dataset, sample_data_dir
from explorer.embed.registry import embedder_choices

SAMPLE = "Sample: handwritten digits + model samples"
OTHER = "Another path…"
URL_KEYS = ("data", "model", "sets", "colour", "ref", "kernel")
# the kernel of every Vendi number the pages show (explorer.metrics.kernel_rows); centred first: the default
KERNEL_NAMES = {"centred": "Centred cosine", "cosine": "Cosine (plain Vendi score)", "rbf": "RBF, median bandwidth"}


@dataclass
class Choice:
    """What the sidebar chose this run."""

    source: str
    dataset: Dataset
    embedder_name: str
    sets: list[str]
    kernel: str = "centred"


@st.cache_resource(show_spinner=False)
def cached_dataset(source: str, allow_outside: bool = False) -> Dataset:
    return load_dataset(source, allow_outside=allow_outside)


def settings() -> AppSettings:
    """What this app may open (set by app.py from ``vendiscope app``'s arguments)."""
    return st.session_state.get("app_settings") or AppSettings()


def source_options() -> list[str]:
    """The datasets given at launch first, then the sample, then (with the path box) a typed path."""
    allowed = settings()
    return [*allowed.sources, SAMPLE, *([OTHER] if allowed.path_box else [])]


def _from_url() -> None:
    """Once per session: the URL's choices become the widgets' starting values, when allowed."""
    if st.session_state.get("_url_read"):
        return
    st.session_state["_url_read"] = True
    params = st.query_params
    data = params.get("data")
    if data:
        label = SAMPLE if data == "sample" else data
        if label in source_options():
            st.session_state["source_choice"] = label
        elif settings().path_box:
            st.session_state["source_choice"], st.session_state["source_path"] = OTHER, data
    if params.get("model") in embedder_choices():
        st.session_state["embedder"] = params["model"]
    if params.get("kernel") in KERNEL_NAMES:
        st.session_state["kernel"] = params["kernel"]
    for key in ("colour", "ref"):
        if params.get(key):
            st.session_state[f"keep:{key}"] = params[key]
    if "sets" in params:
        st.session_state["_url_sets"] = [s for s in params["sets"].split(",") if s]


def _to_url(choice: Choice) -> None:
    params = {"data": "sample" if choice.source == str(sample_data_dir()) else choice.source,
              "model": choice.embedder_name}
    if choice.kernel != "centred":
        params["kernel"] = choice.kernel
    if set(choice.sets) != set(choice.dataset.sets):
        params["sets"] = ",".join(choice.sets)
    for key in ("colour", "ref"):
        if st.session_state.get(f"keep:{key}"):
            params[key] = str(st.session_state[f"keep:{key}"])
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)


def pick_source() -> str | None:
    """The dataset: one given at launch, the sample, or (with the path box) a typed path that the
    path policy allows; any other path gets one answer, whether it exists or not."""
    allowed = settings()
    choice = st.sidebar.selectbox("Dataset", source_options(), key="source_choice")
    if choice == SAMPLE:
        return str(sample_data_dir())
    if choice == OTHER:
        path = st.sidebar.text_input("Image folder, manifest, text file or embeddings", key="source_path",
                                     help=f"Under {', '.join(allowed.allow_dirs) or 'no folder yet (--allow-dir)'}")
        if not path.strip():
            return None
        try:
            return str(allowed.policy().check(path.strip()))
        except PathRefused as err:
            st.error(str(err), icon=":material/block:")
            return None
    return choice


def sidebar() -> Choice | None:
    """Draw the shared choices; None (with a message on the page) when no dataset is open."""
    _from_url()
    source = pick_source()
    embedder_name = st.sidebar.selectbox(
        "Embedder", embedder_choices(), key="embedder",
        help="auto: open_clip ViT-B-32 when its weights can be had, else efficientnet-lite0")
    kernel = st.sidebar.selectbox(
        "Kernel", list(KERNEL_NAMES), key="kernel", format_func=KERNEL_NAMES.__getitem__,
        help="Centred cosine: cosine of the items minus a common centre (the pooled mean; on Compare the "
             "reference's mean); shows differences that the features' shared direction hides. Cosine: the "
             "Vendi paper's score, comparable with published numbers. RBF: exp(-|x-y|²/2σ²), σ = median distance")
    if not source:
        return None
    try:
        dataset = cached_dataset(source, settings().allow_outside)
    except (OSError, ValueError, tarfile.TarError) as err:  # unreadable, damaged or refused: one line
        st.error(f"Cannot open {source}: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
        return None
    sets = dataset.sets
    key = f"sets:{source}"  # per dataset
    if key not in st.session_state:
        wanted = st.session_state.pop("_url_sets", None)
        st.session_state[key] = [s for s in wanted if s in sets] if wanted else sets
    chosen = st.sidebar.multiselect("Sets", sets, key=key)
    choice = Choice(source, dataset, embedder_name, chosen, kernel)
    _to_url(choice)
    return choice


def remembered_selectbox(label: str, options: list, *, name: str, key: str, default=None, where=st.sidebar,
                         **kwargs):
    """A select box (widget ``key``, one per page) whose choice is kept across pages and in the
    URL under ``name``, even where one page offers options another does not: a page without the
    kept choice shows its default and keeps the choice for the pages that have it, until the
    user picks another."""
    kept = st.session_state.get(f"keep:{name}")
    pick = kept if kept in options else (default if default in options else options[0])
    if st.session_state.get(key) not in options:
        st.session_state.pop(key, None)
    value = where.selectbox(label, options, index=options.index(pick), key=key, **kwargs)
    if kept in options or value != pick:
        st.session_state[f"keep:{name}"] = value
    # written here, not only by the sidebar: a change inside a fragment reruns the fragment alone
    kept = st.session_state.get(f"keep:{name}")
    if kept is not None and st.query_params.get(name) != str(kept):
        st.query_params[name] = str(kept)
    return value


def kept_choice(name: str, options: list, *, default=None):
    """The choice ``remembered_selectbox`` keeps under ``name`` when it is one of ``options``,
    else ``default``; draws nothing."""
    kept = st.session_state.get(f"keep:{name}")
    return kept if kept in options else default
