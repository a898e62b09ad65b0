"""The commands' progress bar: one tqdm bar on stderr fed by the library's
``progress(done, total, stage)`` callbacks."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(*, quiet: bool = False, unit: str = "item") -> Iterator[Callable[[int, int, str], None]]:
    """A ``progress(done, total, stage)`` callback drawing a bar on stderr (none when ``quiet``),
    closed on leaving the block.

    >>> with progress_bar(quiet=True) as progress:
    ...     progress(1, 2, "halfway")
    """
    from tqdm import tqdm

    bar = tqdm(total=0, unit=unit, file=sys.stderr, disable=quiet)

    def progress(done: int, total: int, stage: str) -> None:
        bar.total, bar.n = total, done
        bar.set_description(stage)
        bar.refresh()

    try:
        yield progress
    finally:
        bar.close()
