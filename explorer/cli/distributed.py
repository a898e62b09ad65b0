"""The ``--ray`` branches of the commands: the same options, run by :mod:`explorer.distributed`."""
from __future__ import annotations

import logging


def quiet_ray(ray, *, quiet: bool) -> None:
    """Ray Data's progress bars only when asked for, and none of its INFO lines on the terminal."""
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = not quiet
    context.print_on_execution_start = False
