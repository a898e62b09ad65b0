"""Representation by attribute (the FACET and "equitable datasets" line of work): for each value
of an attribute, and each intersection of two attributes, how many items it has against a target
share, and how diverse its items are at equal n.

Rules, stated with every report:

- *under-represented*: the group's share is below ``under`` (default ½) × its target share. A
  target value with no item at all is under-represented too (share 0).
- *low diversity*: the group's VS₁ at the family's common size n is both at least ``margin``
  (default 25%) below the median VS₁ of the other groups of its family, and so far below that
  the whole interval lies under the median of the others' lower bounds. The margin keeps tiny but
  "significant" gaps (tight intervals on large groups) from being flagged; the interval keeps
  noise (wide intervals on small groups) from being flagged. A median, not a mean, so one other
  odd group does not move the bar.

A family is an attribute (``label``) or an intersection (``label × region``). Its groups are
scored on random subsets of one common size, the smallest scored group's (capped at ``max_n``);
groups under ``min_size`` items are counted but not scored. The target of an intersection is the
product of its attributes' targets (independence); ``uniform`` gives each value 1/k.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from explorer.data.errors import InputError
from explorer.maps.clusters import kmeans_labels
from explorer.metrics.equal_n import bootstrap_scores
from explorer.metrics.kernel_rows import kernel_rows
from explorer.store.cache import cached, hash_key

CROSS = " × "  # joins the attributes (and the values) of an intersection
NONE = "(none)"  # a missing value is a value of its own
UNDER, MARGIN, MIN_SIZE, MAX_N = 0.5, 0.25, 10, 2000
Target = Mapping[str, Mapping[str, float]]  # attribute -> value -> share


def attribute_labels(x: np.ndarray, items: pd.DataFrame, attribute: str, *, seed: int = 0) -> np.ndarray:
    """Each item's value of ``attribute``: a column of ``items`` (missing values as ``(none)``),
    or ``kmeans:K``, the k-means region (as the app's map colours them: cosine k-means on the
    embeddings, the same seed).

    >>> items = pd.DataFrame({"label": ["a", None, "b"]})
    >>> attribute_labels(np.eye(3), items, "label").tolist()
    ['a', '(none)', 'b']
    """
    if attribute.startswith("kmeans:"):
        try:
            k = int(attribute.split(":", 1)[1])
        except ValueError:
            raise InputError(f"{attribute!r}: write kmeans:K with K a whole number, e.g. kmeans:8") from None
        if not 1 <= k <= len(x):
            raise InputError(f"{attribute!r}: K must be between 1 and the number of items ({len(x)})")
        return kmeans_labels(np.asarray(x), k=k, seed=seed).astype(object)
    if attribute not in items.columns:
        shown = [c for c in items.columns if c not in ("id", "kind", "path", "text", "digest")]
        raise InputError(f"no column {attribute!r} to group by; the items have {shown} (or use kmeans:K)")
    values = items[attribute].astype(object).where(items[attribute].notna(), NONE)
    return values.map(str).to_numpy(dtype=object)


def read_target(path: str | os.PathLike | IO[bytes]) -> dict[str, dict[str, float]]:
    """Target shares from a CSV with columns ``value`` and ``share`` (and ``attribute`` when it
    covers more than one); a value's shares need not sum to 1 and are normalised per attribute.
    An attribute column left out means the file applies to every attribute asked for (key ``*``).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("value,share\\na,3\\nb,1\\n")
    >>> read_target(p)
    {'*': {'a': 0.75, 'b': 0.25}}
    """
    name = Path(path).name if isinstance(path, (str, os.PathLike)) else "the upload"
    try:
        table = pd.read_csv(path, dtype={"attribute": str, "value": str})
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read the target file {name}: {err}") from None
    if not {"value", "share"} <= set(table.columns):
        raise InputError(f"the target file {name} needs columns value and share; it has {list(table.columns)}")
    shares = pd.to_numeric(table["share"], errors="coerce")
    if shares.isna().any() or (shares < 0).any():
        raise InputError(f"the target file {name} has a share that is not a number ≥ 0")
    attributes = table["attribute"].fillna("*") if "attribute" in table else pd.Series("*", index=table.index)
    out: dict[str, dict[str, float]] = {}
    for attribute, rows in table.assign(share=shares, attribute=attributes).groupby("attribute"):
        total = float(rows["share"].sum())
        if total <= 0:
            raise InputError(f"the target shares for {attribute!r} in {name} sum to 0")
        out[str(attribute)] = {str(v): float(s) / total for v, s in zip(rows["value"], rows["share"])}
    return out


def _targets(attribute: str, values: Sequence[str], target: Target | None) -> dict[str, float]:
    """The target share of each value of ``attribute``: uniform, or from ``target`` (which must
    give every value the data holds a share)."""
    given = _given(target, attribute)
    if given is None:
        return {v: 1 / len(values) for v in values}
    missing = sorted(set(values) - set(given))
    if missing:
        raise InputError(f"the target gives no share to {attribute} value(s) {missing[:5]}; give every value one")
    return dict(given)


def _given(target: Target | None, attribute: str) -> Mapping[str, float] | None:
    """The target's shares for ``attribute``, or those it gives every attribute (``*``), or None."""
    return None if target is None else target.get(attribute, target.get("*"))


@dataclass
class Representation:
    """A representation report: ``groups`` (one row per group), ``labels`` (each item's id and
    value of each attribute) and ``summary`` (the kernel, the rules, the common sizes, the flags)."""

    groups: pd.DataFrame
    labels: pd.DataFrame
    summary: dict

    def members(self, row: Mapping) -> np.ndarray:
        """Which items (a mask over ``labels``) belong to the group of ``row``."""
        mask = np.ones(len(self.labels), dtype=bool)
        for attribute, value in zip(row["attribute"].split(CROSS), row["parts"]):
            mask &= (self.labels[attribute] == value).to_numpy()
        return mask

    def flagged(self) -> dict[str, list[str]]:
        """The items of every flagged group, each with its reasons ("label=3: under-represented ...")."""
        out: dict[str, list[str]] = {}
        ids = self.labels["id"].to_numpy()
        for row in self.groups[self.groups["reason"] != ""].to_dict("records"):
            for item in ids[self.members(row)]:
                out.setdefault(str(item), []).append(f"{row['attribute']}={row['group']}: {row['reason']}")
        return out

    def to_dict(self) -> dict:
        return {"groups": self.groups.to_dict("records"), "labels": self.labels.to_dict("list"),
                "summary": self.summary}

    @classmethod
    def from_dict(cls, data: dict) -> Representation:
        return cls(pd.DataFrame(data["groups"]), pd.DataFrame(data["labels"]), data["summary"])


def represent(
    x: np.ndarray, items: pd.DataFrame, *, by: Sequence[str], target: Target | None = None, kernel: str = "centred",
    centre: np.ndarray | None = None, centre_origin: str | None = None, n_boot: int = 30, level: float = 0.95,
    min_size: int = MIN_SIZE, max_n: int = MAX_N, under: float = UNDER, margin: float = MARGIN, seed: int = 0,
) -> Representation:
    """Share against target and VS₁ at equal n of every value of each attribute in ``by`` (one or
    two) and of every intersection of two; see the module's docstring for the flags.

    >>> x = np.vstack([np.eye(12)[:10], np.eye(12)[:10], np.eye(12)[10:11].repeat(10, axis=0)])
    >>> items = pd.DataFrame({"id": range(30), "g": ["a"] * 10 + ["b"] * 10 + ["c"] * 10})
    >>> r = represent(x, items, by=["g"], kernel="cosine", n_boot=5)
    >>> r.groups[["group", "n", "vs1", "reason"]].round(2).values.tolist()[2]
    ['c', 10, 1.0, "low diversity: VS₁ 1.00 at n = 10, the others' median 10.00"]
    """
    by = list(dict.fromkeys(by))
    if not 1 <= len(by) <= 2:
        raise InputError(f"group by one attribute or two (their intersections too), not {len(by)}")
    if len(x) != len(items):
        raise ValueError(f"{len(items)} items for {len(x)} embeddings")
    if len(x) < 2:
        raise InputError("a representation report needs at least 2 items")
    ids = items["id"].astype(str).to_numpy() if "id" in items else np.arange(len(x)).astype(str)
    labels = pd.DataFrame({"id": ids})
    for attribute in by:
        labels[attribute] = attribute_labels(x, items, attribute, seed=seed)
    rows, info = kernel_rows(x, kernel=kernel, centre=centre, centre_origin=centre_origin)
    families = [[a] for a in by] + ([by] if len(by) == 2 else [])
    tables, equal_n = [], {}
    for family in families:
        table, size = _family(rows, labels, family, target, n_boot=n_boot, level=level, min_size=min_size,
                              max_n=max_n, under=under, margin=margin, seed=seed)
        tables.append(table)
        equal_n[CROSS.join(family)] = size
    groups = pd.concat(tables, ignore_index=True)
    summary = {
        "n": int(len(x)), "by": by, "kernel": info.describe(), "order": 1, "equal_n": equal_n,
        "target": "uniform" if target is None else "given", "n_boot": n_boot, "level": level,
        "rules": {"under_represented": f"share < {under:g} × target share",
                  "low_diversity": f"VS₁ at equal n ≥ {margin:.0%} below the others' median, and its interval "
                                   "entirely below the median of their lower bounds",
                  "scored": f"groups of ≥ {min_size} items, at the family's smallest scored size (≤ {max_n})"},
        "under_represented": [f"{r['attribute']}={r['group']}" for r in groups[groups["under_represented"]]
                              .to_dict("records")],
        "low_diversity": [f"{r['attribute']}={r['group']}" for r in groups[groups["low_diversity"]]
                          .to_dict("records")],
    }
    return Representation(groups, labels, summary)


def _family(rows: np.ndarray, labels: pd.DataFrame, family: list[str], target: Target | None, *, n_boot: int,
            level: float, min_size: int, max_n: int, under: float, margin: float,
            seed: int) -> tuple[pd.DataFrame, int]:
    """The groups of one attribute or intersection, counted, scored and flagged."""
    values = {a: sorted(set(labels[a]) | set(_given(target, a) or ())) for a in family}
    shares = {a: _targets(a, values[a], target) for a in family}
    keys = labels[family].astype(str).agg(CROSS.join, axis=1) if len(family) > 1 else labels[family[0]]
    counts = keys.value_counts()
    cells = [(v,) for v in values[family[0]]] if len(family) == 1 else \
        [(a, b) for a in values[family[0]] for b in values[family[1]]]
    out = []
    for parts in cells:
        name = CROSS.join(parts)
        goal = float(np.prod([shares[a][v] for a, v in zip(family, parts)]))
        n = int(counts.get(name, 0))
        if n == 0 and goal == 0:
            continue  # neither in the data nor wanted: nothing to say
        share = n / len(labels)
        out.append({"attribute": CROSS.join(family), "group": name, "parts": list(parts), "n": n, "share": share,
                    "target_share": goal, "ratio": share / goal if goal > 0 else float("nan"),
                    "under_represented": bool(share < under * goal)})
    table = pd.DataFrame(out)
    scored = table[table["n"] >= min_size]
    size = int(min(scored["n"].min(), max_n)) if len(scored) else 0
    for col in ("vs1", "vs1_lo", "vs1_hi"):
        table[col] = np.nan
    table["draws"], table["equal_n"] = 0, size
    if len(scored):
        keep = keys.isin(scored["group"]).to_numpy()
        scores = bootstrap_scores(rows[keep], keys[keep].tolist(), q=[1.0], n=size, n_boot=n_boot, level=level,
                                  seed=seed).set_index("group")
        at = table["group"].isin(scores.index)
        for col, src in (("vs1", "VS_1"), ("vs1_lo", "VS_1_lo"), ("vs1_hi", "VS_1_hi"), ("draws", "draws")):
            table.loc[at, col] = table.loc[at, "group"].map(scores[src]).to_numpy()
    table["others_vs1"], table["low_diversity"] = _low_diversity(table, margin=margin)
    table["reason"] = [_reason(r, under=under) for r in table.to_dict("records")]
    table["draws"] = table["draws"].astype(int)
    return table, size


def _low_diversity(table: pd.DataFrame, *, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """The module's low-diversity rule, group by group against the others of its family: the
    others' median VS₁ and the flag."""
    vs, lo, hi = (table[c].to_numpy(dtype=float) for c in ("vs1", "vs1_lo", "vs1_hi"))
    scored = ~np.isnan(vs)
    median, flag = np.full(len(table), np.nan), np.zeros(len(table), dtype=bool)
    for i in np.flatnonzero(scored):
        others = scored.copy()
        others[i] = False
        if not others.any():
            continue
        median[i] = np.median(vs[others])
        flag[i] = vs[i] <= (1 - margin) * median[i] and hi[i] < np.median(lo[others])
    return median, flag


def _reason(row: dict, *, under: float) -> str:
    reasons = []
    if row["under_represented"]:
        reasons.append(f"under-represented: share {row['share']:.1%} < {under:g} × target {row['target_share']:.1%}")
    if row["low_diversity"]:
        reasons.append(f"low diversity: VS₁ {row['vs1']:.2f} at n = {row['equal_n']}, the others' median "
                       f"{row['others_vs1']:.2f}")
    return "; ".join(reasons)


def cached_represent(x: np.ndarray, items: pd.DataFrame, *, by: Sequence[str], cache_dir=None,
                     **params) -> Representation:
    """:func:`represent`, stored on disk by a hash of the embeddings, the items' ids and grouping
    columns, and every parameter."""
    by = list(dict.fromkeys(by))
    x = np.ascontiguousarray(x)
    columns = {c: items[c].astype(str).tolist() for c in by if c in items.columns}
    ids = items["id"].astype(str).tolist() if "id" in items else None
    centre = params.get("centre")
    plain = {k: v for k, v in params.items() if k != "centre"}
    key = hash_key("represent", 1, by, plain, None if centre is None else np.asarray(centre, np.float64), ids,
                   columns, x)
    return Representation.from_dict(cached("represent", key, lambda: represent(x, items, by=by, **params).to_dict(),
                                           root=cache_dir))
