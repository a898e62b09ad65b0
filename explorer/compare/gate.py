"""Conditions on comparison metrics, for ``vendiscope compare --fail-if``: a training pipeline
can stop when diversity drops (``coverage<0.8``, ``vs1_ratio<0.9``, ``gmm.memorized_share>0``).
Parsed by a small grammar, never ``eval``.
"""
from __future__ import annotations

import operator
import re

OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq,
       "!=": operator.ne}
CONDITION = re.compile(r"^\s*(?:(?P<set>[^.<>=!\s]+)\.)?(?P<metric>[A-Za-z_][\w.]*?)\s*"
                       r"(?P<op><=|>=|==|!=|<|>)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def parse_conditions(texts) -> list[tuple[str | None, str, str, float]]:
    """``(set or None, metric, operator, value)`` for each condition; several may be given
    comma-separated in one text.

    >>> parse_conditions(["coverage<0.8, gmm.vs1_ratio<=0.9"])
    [(None, 'coverage', '<', 0.8), ('gmm', 'vs1_ratio', '<=', 0.9)]
    """
    out = []
    for text in texts:
        for part in filter(str.strip, str(text).split(",")):
            m = CONDITION.match(part)
            if not m:
                raise ValueError(f"cannot read condition {part.strip()!r}: expected METRIC<NUMBER "
                                 "(or <=, >, >=, ==, !=), optionally SET.METRIC")
            out.append((m["set"], m["metric"], m["op"], float(m["value"])))
    return out


def failing(metrics: dict[str, dict], conditions) -> list[str]:
    """The conditions that hold, as readable lines; ``metrics`` maps each set to its numbers.
    A condition without a set applies to every set. An unknown metric or set is an error.

    >>> failing({"a": {"coverage": 0.7}, "b": {"coverage": 0.9}}, parse_conditions(["coverage<0.8"]))
    ['a: coverage = 0.7 < 0.8']
    """
    hits = []
    for name, metric, op, value in conditions:
        if name is not None and name not in metrics:
            raise ValueError(f"--fail-if names set {name!r}; the compared sets are {sorted(metrics)}")
        for set_name in [name] if name else list(metrics):
            numbers = metrics[set_name]
            if metric not in numbers or not isinstance(numbers[metric], (int, float)):
                known = sorted(k for k, v in numbers.items() if isinstance(v, (int, float)))
                raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(known)}")
            if OPS[op](numbers[metric], value):
                hits.append(f"{set_name}: {metric} = {numbers[metric]:.4g} {op} {value:g}")
    return hits
