"""The error that means "the input is wrong", as opposed to a bug.

``vendiscope`` exits 2 with one line for it (and for any ValueError or OSError), and 3 for every
other exception, so a bug never passes for bad input. It subclasses ValueError so the library's
many ``raise ValueError(...)`` about bad data keep their meaning.
"""
from __future__ import annotations


class InputError(ValueError):
    """Bad input or an unusable setting given by the user: a file, a model, an option's value.

    >>> isinstance(InputError("no such model"), ValueError)
    True
    """
