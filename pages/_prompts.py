"""The Compare page's section on diversity per prompt: shown when the items carry a ``prompt``
column (generations), one row per set so that two decoding settings or checkpoints sit side by
side. The numbers are explorer.curate.prompts'."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer.curate.prompts import per_prompt_of_sets, prompt_table
from pages._common import in_stage, plural, readable, with_progress


def prompt_section(state, reference: str) -> None:
    """Within- and across-prompt VS₁, collapsed prompts and distinct-n of each chosen set; nothing
    when the items have no prompts."""
    items = state.items[state.mask].reset_index(drop=True)
    if "prompt" not in items.columns:
        return
    kernel = state.kernel
    report = with_progress(("per-prompt", state.source, state.embedder.cache_key(), tuple(state.chosen), reference,
                            kernel),
                           in_stage("diversity per prompt", lambda: per_prompt_of_sets(
                               state.result.embeddings[state.mask], items, reference=reference, kernel=kernel)),
                           label=f"Scoring {plural(len(items), 'item')} per prompt")
    st.subheader("Diversity per prompt")
    st.caption(f"{report['kernel']}. Within-prompt VS₁: the mean over prompts of each prompt's VS₁ at "
               f"n = {report['n_per_prompt']} generations; across-prompt VS₁: all of a set's generations at "
               f"n = {report['across_n']}. A model can be diverse across prompts and collapse within each. "
               f"Collapsed: {report['collapse_rule']}. Distinct-n: distinct word n-grams over all n-grams.")
    st.dataframe(readable(prompt_table(report).round(3)), hide_index=True, width="stretch", key="prompt_sets")
    picked = st.selectbox("Prompts of", list(report["sets"]), key="prompt_set")
    rows = pd.DataFrame(report["sets"][picked]["per_prompt"])
    st.dataframe(readable(rows.sort_values("vs1").round(3)), hide_index=True, width="stretch", key="prompt_rows")
