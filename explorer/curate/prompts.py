"""Diversity per prompt (conditional Vendi; Scendi) for generations that carry a ``prompt`` column:
a model can be diverse across prompts yet collapse within each.

Per set (a decoding setting, a checkpoint):

- *within-prompt* VS₁: the mean over prompts of each prompt's VS₁ at one common number of
  generations per prompt (the smallest prompt's, over every set compared, so the sets compare);
  a prompt with more is scored on random subsets of that size.
- *across-prompt* VS₁: the VS₁ of all the set's generations, at the smallest set's size.
- *collapsed* prompts: VS₁ of all of a prompt's generations below 1.5 with at least 4 of them.
- for texts, distinct-n (n = 1, 2): distinct n-grams over all n-grams (lower-cased word tokens),
  over the whole set and as the mean over prompts.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from explorer.metrics.equal_n import bootstrap_scores, interval_text, subset_scores
from explorer.metrics.kernel_rows import kernel_rows
from explorer.store.cache import cached, hash_key

COLLAPSE_BELOW, COLLAPSE_MIN_N = 1.5, 4
SEP = "\x1f"  # joins set and prompt into one group key


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Distinct n-grams over all n-grams of ``texts`` (lower-cased word tokens; n-grams never cross
    two texts); None when there is no n-gram.

    >>> distinct_n(["the cat sat", "the cat ran"], 1), distinct_n(["the cat sat", "the cat ran"], 2)
    (0.6666666666666666, 0.75)
    """
    grams: list[tuple[str, ...]] = []
    for text in texts:
        tokens = re.findall(r"\w+", str(text).lower())
        grams += [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def prompt_diversity(
    x: np.ndarray, items: pd.DataFrame, *, kernel: str = "centred", centre: np.ndarray | None = None,
    centre_origin: str | None = None, n_per_prompt: int | None = None, n_boot: int = 10,
    collapse_below: float = COLLAPSE_BELOW, collapse_min_n: int = COLLAPSE_MIN_N, seed: int = 0,
) -> dict:
    """Within- and across-prompt VS₁, collapsed prompts and (texts) distinct-n of each set of
    ``items`` (a ``set`` column; one set when there is none), as a JSON-ready dict.

    >>> x = np.vstack([np.eye(8)[:4], np.eye(8)[4:5].repeat(4, axis=0)])
    >>> items = pd.DataFrame({"prompt": ["p"] * 4 + ["q"] * 4})
    >>> s = prompt_diversity(x, items, kernel="cosine")["sets"]["all"]
    >>> s["within"], s["collapsed"], [p["vs1"] for p in s["per_prompt"]]
    (2.5, ['q'], [4.0, 1.0])
    """
    if "prompt" not in items.columns:
        raise ValueError("diversity per prompt needs a 'prompt' column")
    if len(x) != len(items):
        raise ValueError(f"{len(items)} items for {len(x)} embeddings")
    sets = items["set"].astype(str).to_numpy() if "set" in items else np.full(len(items), "all", dtype=object)
    prompts = items["prompt"].fillna("").astype(str).to_numpy()
    rows, info = kernel_rows(x, kernel=kernel, centre=centre, centre_origin=centre_origin)
    keys = pd.Series([f"{s}{SEP}{p}" for s, p in zip(sets, prompts)])
    sizes = keys.value_counts()
    scored = sizes[sizes >= 2]
    if scored.empty:
        raise ValueError("no prompt has 2 generations or more: nothing to score within prompts")
    size = min(n_per_prompt or int(scored.min()), int(scored.min()))
    keep = keys.isin(scored.index).to_numpy()
    within = bootstrap_scores(rows[keep], keys[keep].tolist(), q=[1.0], n=size, n_boot=n_boot, seed=seed)
    within = within.set_index("group")["VS_1"]
    set_sizes = pd.Series(sets).value_counts()
    across_n = int(set_sizes.min())
    across = bootstrap_scores(rows, list(sets), q=[1.0], n=across_n, n_boot=n_boot, seed=seed).set_index("group") \
        if across_n >= 2 else None
    texts = items["text"].fillna("").astype(str).to_numpy() if "text" in items else None
    out: dict = {"kernel": info.describe(), "order": 1, "n_per_prompt": size, "across_n": across_n,
                 "collapse_rule": f"VS₁ of a prompt's generations < {collapse_below:g} with n ≥ {collapse_min_n}",
                 "sets": {}}
    for name in sorted(set_sizes.index):
        per_prompt = []
        for key in sorted(k for k in sizes.index if k.startswith(name + SEP)):
            index = np.flatnonzero((keys == key).to_numpy())
            vs1 = float(subset_scores(rows, [index], q=[1.0])[0, 0])
            per_prompt.append({"prompt": key.split(SEP, 1)[1], "n": int(len(index)), "vs1": vs1,
                               "vs1_equal_n": float(within[key]) if key in within.index else None,
                               "collapsed": bool(len(index) >= collapse_min_n and vs1 < collapse_below)})
        equal = [p["vs1_equal_n"] for p in per_prompt if p["vs1_equal_n"] is not None]
        collapsed = [p["prompt"] for p in per_prompt if p["collapsed"]]
        entry: dict = {"n": int(set_sizes[name]), "prompts": len(per_prompt), "scored_prompts": len(equal),
                 "within": float(np.mean(equal)) if equal else None,
                 "across": None if across is None else float(across.loc[name, "VS_1"]),
                 "across_ci": None if across is None else [float(across.loc[name, "VS_1_lo"]),
                                                           float(across.loc[name, "VS_1_hi"])],
                 "across_draws": 0 if across is None else int(across.loc[name, "draws"]),
                 "collapsed": collapsed, "collapsed_share": len(collapsed) / len(per_prompt),
                 "per_prompt": per_prompt}
        if texts is not None:
            mine = sets == name
            for n in (1, 2):
                entry[f"distinct_{n}"] = distinct_n(list(texts[mine]), n)
                each = [distinct_n(list(texts[mine & (prompts == p["prompt"])]), n) for p in per_prompt]
                known = [v for v in each if v is not None]
                entry[f"distinct_{n}_within"] = float(np.mean(known)) if known else None
        out["sets"][name] = entry
    return out


def cached_prompt_diversity(x: np.ndarray, items: pd.DataFrame, *, cache_dir=None, **params) -> dict:
    """:func:`prompt_diversity`, stored on disk by a hash of the embeddings, the sets, prompts and
    texts, and every parameter."""
    x = np.ascontiguousarray(x)
    columns = {c: items[c].fillna("").astype(str).tolist() for c in ("set", "prompt", "text") if c in items}
    centre = params.get("centre")
    plain = {k: v for k, v in params.items() if k != "centre"}
    key = hash_key("prompt_diversity", 1, plain, None if centre is None else np.asarray(centre, np.float64),
                   columns, x)
    return cached("prompts", key, lambda: prompt_diversity(x, items, **params), root=cache_dir)


def prompt_table(report: dict) -> pd.DataFrame:
    """One row per set, the columns people compare side by side.

    >>> prompt_table({"sets": {"a": {"n": 8, "prompts": 2, "within": 2.5, "across": 5.0, "collapsed": ["q"],
    ...                               "collapsed_share": 0.5}}}).to_dict("records")[0]["within-prompt VS₁"]
    2.5
    """
    rows = []
    for name, s in report["sets"].items():
        row = {"set": name, "n": s["n"], "prompts": s["prompts"], "within-prompt VS₁": s["within"],
               "across-prompt VS₁": s["across"], "collapsed prompts": len(s["collapsed"]),
               "collapsed share": s["collapsed_share"]}
        row.update({f"distinct-{n}": s[f"distinct_{n}"] for n in (1, 2) if f"distinct_{n}" in s})
        row.update({f"distinct-{n} within": s[f"distinct_{n}_within"] for n in (1, 2)
                    if f"distinct_{n}_within" in s})
        rows.append(row)
    return pd.DataFrame(rows)


def prompt_report(report: dict) -> str:
    """The per-prompt figures as text lines, one block per set."""
    lines = [f"diversity per prompt ({report['kernel']}; within-prompt VS_1 at n = {report['n_per_prompt']} per "
             f"prompt, across-prompt at n = {report['across_n']}; collapsed: {report['collapse_rule']})"]
    for name, s in report["sets"].items():
        within = "n/a" if s["within"] is None else f"{s['within']:.2f}"
        across = "n/a" if s["across"] is None else interval_text(s["across"], *s["across_ci"], draws=s["across_draws"])
        line = f"  {name}: {s['prompts']} prompts; within-prompt VS_1 {within}; across-prompt VS_1 {across}"
        if "distinct_1" in s:
            line += "; " + "  ".join(f"distinct-{n} {s[f'distinct_{n}']:.3f} (within {s[f'distinct_{n}_within']:.3f})"
                                     for n in (1, 2) if s[f"distinct_{n}"] is not None)
        lines.append(line)
        lines.append(f"    collapsed prompts: {len(s['collapsed'])} of {s['prompts']}"
                     + (": " + "; ".join(s["collapsed"][:5]) + (" …" if len(s["collapsed"]) > 5 else "")
                        if s["collapsed"] else ""))
    return "\n".join(lines)


def per_prompt_of_sets(x: np.ndarray, items: pd.DataFrame, *, reference: str, kernel: str = "centred",
                       seed: int = 0, cache_dir=None) -> dict:
    """:func:`cached_prompt_diversity` for sets compared with ``reference``: under centred cosine
    the centre is the reference's mean, as for every number of a comparison. A kernel that is not
    a row kernel (RBF) falls back to centred cosine here, and the report says which was used."""
    from explorer.metrics.kernel_rows import ALIASES, ROW_KERNELS, mean_row, parse_kernel

    name = ALIASES.get(kernel.strip().lower(), kernel.strip().lower())
    kernel = parse_kernel(name) if name in ROW_KERNELS else "centred"
    params: dict = {"kernel": kernel, "seed": seed}
    mine = (items["set"].astype(str) == reference).to_numpy() if "set" in items else None
    if kernel == "centred" and mine is not None and mine.any():
        params.update(centre=mean_row(x, rows=mine), centre_origin=f"mean of the reference '{reference}'")
    return cached_prompt_diversity(x, items, cache_dir=cache_dir, **params)
