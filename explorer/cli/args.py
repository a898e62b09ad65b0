"""Argument types shared by the commands: a bad number is a usage error (exit 2) naming the flag."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer of at least 1.

    >>> positive_int("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (e.g. worker processes: 0 decodes in the main process)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def add_neighbors_option(parser: argparse.ArgumentParser) -> None:
    """``--neighbors auto|exact|hnsw|cuda``: how nearest neighbours are searched."""
    parser.add_argument("--neighbors", choices=("auto", "exact", "hnsw", "cuda"), default="auto",
                        help="nearest-neighbour search: exact, HNSW (faiss, approximate, its recall measured and "
                             "reported), cuda (exact on the GPU); auto picks by size (default; also "
                             "$VENDISCOPE_NEIGHBORS)")


def add_ray_option(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]``: run on a Ray cluster (the optional extra ``vendiscope[ray]``)."""
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="run on Ray: alone, the cluster in $RAY_ADDRESS or else a local Ray started for this "
                             "run; 'auto' (the cluster this machine is part of), ray://HOST:PORT or HOST:PORT. "
                             "Put it after the positional arguments. Needs: pip install 'vendiscope[ray]'")
