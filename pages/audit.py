"""Audit: one dataset on its own: exact copies, near-duplicate groups, outliers and rare items,
each with its items, a button that flags them with their reasons, and downloads."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer.compare.audit import cached_audit
from explorer.diagnostics import describe, flag_masks, flag_with_reasons
from explorer.store.export import export_table
from explorer.store.flags import FlagStore
from pages._common import item_grid, page_slice, plural, prepare, with_progress
from pages._downloads import download_buttons
from pages._notices import flagged_message

GROUPS_PER_PAGE = 6

st.title("Audit")
state = prepare()
items = state.items[state.mask].reset_index(drop=True)
name = state.chosen[0] if len(state.chosen) == 1 else "all items"
summary, table = with_progress(
    ("audit", state.source, state.embedder.cache_key(), tuple(state.chosen)),
    lambda job: cached_audit(state.result.embeddings[state.mask], items, progress=job.report, name=name),
    label=f"Auditing {plural(len(items), 'item')}")
exact, near = summary["exact_duplicates"], summary["near_duplicates"]
# the audit's own parameters, as it reports them, so the words follow a changed default
scale = ("a fixed cosine" if near["alpha"] is None else
         f"{near['alpha']:g} × the median distance to the nearest neighbour, as cleanlab does")
st.caption(f"{plural(summary['n'], 'item')} of {', '.join(state.chosen)}, as one pool, with {state.embedder.name} "
           f"embeddings. Exact copies share their bytes (or text); near duplicates are joined at cosine ≥ "
           f"{near['threshold']:.4f} ({scale}); "
           f"outliers lie beyond Tukey's far-out fence of the mean distance to their {summary['k']} nearest "
           f"neighbours; rare items are the 1% with the widest {summary['k']}-NN radius. All of these use the "
           "plain cosine geometry of the embeddings; the sidebar's kernel applies to Vendi scores, not here.")
cards = st.columns(4)
cards[0].metric("Exact copies", f"{exact['items']:,}", help=f"in {plural(exact['groups'], 'group')}")
cards[1].metric("Near duplicates", f"{near['items']:,}", help=f"in {plural(near['groups'], 'group')}")
cards[2].metric("Outliers", f"{summary['outliers']:,}")
cards[3].metric("Rare items", f"{summary['rare']:,}")

by_id = items.set_index("id")


def groups_section(title: str, groups: list[list[str]], total: int, key: str) -> None:
    st.subheader(title)
    if not groups:
        st.caption("None found.")
        return
    pages = max(1, -(-len(groups) // GROUPS_PER_PAGE))
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key=key) if pages > 1 else 1
    shown = groups[(page - 1) * GROUPS_PER_PAGE: page * GROUPS_PER_PAGE]
    st.caption(f"{plural(total, 'group')}, largest first; showing {len(shown)}")
    for group in shown:
        st.markdown(f"**{plural(len(group), 'item')}**: {', '.join(group[:4])}" + (" …" if len(group) > 4 else ""))
        item_grid(by_id.loc[[g for g in group if g in by_id.index][:12]].reset_index(), width=56)


groups_section("Exact copies", exact["largest"], exact["groups"], "audit_exact_page")
groups_section("Near-duplicate groups", near["largest"], near["groups"], "audit_near_page")

masks = flag_masks(table)
for diagnostic, title in (("outlier", "Outliers"), ("rarity", "Rare items")):
    st.subheader(title)
    hit = masks.get(diagnostic)
    if hit is None:
        st.caption("None found.")
        continue
    order = table.loc[hit, diagnostic].sort_values(ascending=False).index
    st.caption(f"{plural(len(order), 'item')}, most extreme first. {describe(diagnostic)}.")
    part = order[page_slice(len(order), key=f"audit_{diagnostic}_page")]
    item_grid(items.loc[part].assign(score=table.loc[part, diagnostic].to_numpy()), extra=["score"])

st.subheader("Flag and export")
flags = FlagStore.for_dataset(state.dataset.source)
rows = [{"diagnostic": d, "what": describe(d), "flagged": int(m.sum())} for d, m in masks.items()]
st.dataframe(pd.DataFrame(rows), hide_index=True)
for column, d in zip(st.columns(max(1, len(masks))), masks):
    if column.button(f"Flag {plural(int(masks[d].sum()), 'item')}: {d}", key=f"audit_flag_{d}",
                     icon=":material/flag:"):
        st.toast(flagged_message(flag_with_reasons(flags, table, d), int(masks[d].sum())),
                 icon=":material/flag:")
download_buttons(lambda: export_table(items, reasons=flags.reasons(), scores=table.drop(columns=["id"])),
                 label="Audit", stem="audit", key="audit_download")
